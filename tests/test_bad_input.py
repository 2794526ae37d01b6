"""Bad input to `wenlm pretrain` (issue 14, parts B and C): each case is refused with exit status 2, a message
that names the option or file and says what to do, no traceback, and nothing written or prepared."""

import pytest
from transformers import TrainingArguments

from wenlm.tokenization import train_tokenizer
from wenlm.training.args import DEFAULT_VOCAB_SIZE, DataArguments, ModelArguments
from wenlm.training.cli import main as cli_main
from wenlm.training.data.sources import check_text_file
from wenlm.training.pretrain import check_settings

TINY_MODEL = "hidden_size=32,intermediate_size=64,num_hidden_layers=2,num_attention_heads=2,num_key_value_heads=1"


def pretrain_args(tmp_path, *extra, train_files="builtin:200"):
    return [
        "pretrain",
        "--train_files", str(train_files),
        "--output_dir", str(tmp_path / "out"),
        "--cache_dir", str(tmp_path / "cache"),
        "--preset", "nano",
        "--config_overrides", TINY_MODEL,
        "--block_size", "32",
        "--max_steps", "2",
        "--disable_tqdm", "true",
        *extra,
    ]


def with_option(args, name, value):
    """``args`` with option ``name`` set to ``value`` (replaced where present, appended otherwise)."""
    args = list(args)
    if name in args:
        args[args.index(name) + 1] = value
    else:
        args += [name, value]
    return args


def refused(tmp_path, capsys, args, *expected):
    """Run the CLI; assert a clean refusal mentioning every ``expected`` text, before any data or file."""
    assert cli_main(args) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    for text in expected:
        assert text in error, error
    assert not (tmp_path / "out").exists()
    return error


@pytest.fixture
def tokenizer_dir(tmp_path_factory):

    folder = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer([f"story {i} about a fox" for i in range(50)], vocab_size=300).save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------- C: degenerate settings, refused up front

DEGENERATE = [
    ("--learning_rate", "0", ["--learning_rate must be positive", "got 0"]),
    ("--learning_rate", "-0.001", ["--learning_rate must be positive"]),
    ("--max_steps", "-5", ["--max_steps must be a positive number", "-1", "got -5"]),
    ("--max_steps", "0", ["--max_steps must be a positive number", "got 0"]),
    ("--config_overrides", "hidden_size=abc", ["--config_overrides", "hidden_size='abc'", "must be an integer"]),
    ("--config_overrides", "dropout=high", ["dropout='high'", "must be a number"]),
    ("--config_overrides", "tie_word_embeddings=1", ["tie_word_embeddings=1", "true or false"]),
    ("--block_size", "4096", ["--block_size 4096", "preset 'nano'", "max_position_embeddings=512",
                              "lower --block_size", "--config_overrides max_position_embeddings=4096"]),
]


@pytest.mark.parametrize("option,value,expected", DEGENERATE, ids=[f"{o}={v}" for o, v, _ in DEGENERATE])
def test_degenerate_setting_is_refused_before_data_preparation(tmp_path, capsys, option, value, expected):
    refused(tmp_path, capsys, with_option(pretrain_args(tmp_path), option, value), *expected)
    assert not (tmp_path / "cache").exists()  # refused before reading or preparing any data


def test_zero_epochs_without_max_steps_is_refused(tmp_path, capsys):
    args = with_option(with_option(pretrain_args(tmp_path), "--max_steps", "-1"), "--num_train_epochs", "0")
    refused(tmp_path, capsys, args, "--num_train_epochs 0", "trains nothing", "--max_steps")
    assert not (tmp_path / "cache").exists()


def test_zero_epochs_with_positive_max_steps_is_accepted_by_the_check():
    training = TrainingArguments(output_dir="unused", num_train_epochs=0, max_steps=3, learning_rate=1e-3)
    check_settings(ModelArguments(preset="nano"), DataArguments(block_size=64), training)


def test_tokenizer_with_an_explicit_vocab_size_is_refused(tmp_path, capsys, tokenizer_dir):
    args = pretrain_args(tmp_path, "--tokenizer", str(tokenizer_dir), "--vocab_size", "500")
    refused(tmp_path, capsys, args, "--vocab_size 500", "--tokenizer", "drop one of the two")
    assert not (tmp_path / "cache").exists()


def test_vocab_size_defaults_to_unset_and_8192_when_training(tmp_path):

    assert ModelArguments().vocab_size is None and DEFAULT_VOCAB_SIZE == 8192


# ---------------------------------------------------------------------- B: files that are not text


def test_binary_file_renamed_txt_is_refused_with_how_to_force(tmp_path, capsys):
    image = tmp_path / "picture.txt"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40)
    error = refused(tmp_path, capsys, pretrain_args(tmp_path, train_files=image), str(image), "--allow_binary_files true")
    assert "NUL bytes" in error


def test_mostly_invalid_utf8_file_is_refused_and_can_be_forced(tmp_path, capsys):

    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("春眠不觉晓，处处闻啼鸟。\n\n".encode("gbk") * 50)
    error = refused(tmp_path, capsys, pretrain_args(tmp_path, train_files=gbk), str(gbk), "not valid UTF-8")
    assert "--allow_binary_files true" in error and "iconv" in error
    assert check_text_file(str(gbk), allow_binary=True) > 0  # forced: read, invalid bytes counted
    # A few stray bytes in real text are repaired, not refused.
    mostly_text = tmp_path / "latin.txt"
    mostly_text.write_bytes(("the quick brown fox " * 20).encode() + b"caf\xe9\n")
    assert check_text_file(str(mostly_text)) == 1
