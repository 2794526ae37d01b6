"""Bad input to `wenlm pretrain` (issue 14, parts B and C) and to every command that reads files (issue 29: damaged
archives, text fields that are not strings): each case is refused with exit status 2, a message that names the
option or file and says what to do, no traceback, and nothing written or prepared."""

import bz2
import errno
import gzip
import io
import json
import logging
import lzma
import os
import shutil
import subprocess
import sys
import types

import huggingface_hub
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import zstandard
from helpers import cli_flags
from safetensors.torch import save_file
from test_finetune import tiny_base  # noqa: F401  (session fixture shared with it)
from transformers import TrainingArguments

from wenlm.tokenization import train_tokenizer
from wenlm.training import finetuning as finetune_module
from wenlm.training import pretraining as pretrain_module
from wenlm.training import run_folder
from wenlm.training.args import DEFAULT_VOCAB_SIZE, DataArguments, ModelArguments
from wenlm.training.cli import main as cli_main
from wenlm.training.data.reading import COMPRESSIONS, iter_byte_chunks
from wenlm.training.data.sources import check_text_file
from wenlm.training.data.tasks import read_rows
from wenlm.training.pretraining import check_settings
from wenlm.training.run_folder import LOCK_NAME, FolderLock, check_output_dir, last_complete_checkpoint

TINY_MODEL = (
    "hidden_size=32,intermediate_size=64,num_hidden_layers=2,num_attention_heads=2,num_key_value_heads=1"
)


def pretrain_args(tmp_path, *extra, train_files="builtin:200"):
    return [
        "pretrain",
        "--train_files",
        str(train_files),
        "--output_dir",
        str(tmp_path / "out"),
        "--cache_dir",
        str(tmp_path / "cache"),
        "--preset",
        "nano",
        "--config_overrides",
        TINY_MODEL,
        "--block_size",
        "32",
        "--max_steps",
        "2",
        "--disable_tqdm",
        "true",
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
    (
        "--config_overrides",
        "hidden_size=abc",
        ["--config_overrides", "hidden_size='abc'", "must be an integer"],
    ),
    ("--config_overrides", "dropout=high", ["dropout='high'", "must be a number"]),
    ("--config_overrides", "tie_word_embeddings=1", ["tie_word_embeddings=1", "true or false"]),
    (
        "--block_size",
        "4096",
        [
            "--block_size 4096",
            "preset 'nano'",
            "max_position_embeddings=512",
            "lower --block_size",
            "--config_overrides max_position_embeddings=4096",
        ],
    ),
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
    error = refused(
        tmp_path, capsys, pretrain_args(tmp_path, train_files=image), str(image), "--allow_binary_files true"
    )
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


# ---------------------------------------------------------------------- A: output folders and checkpoints


def fake_checkpoint(folder, step=None, *, state=True, weights=True, truncated=False):
    """A checkpoint folder as the Trainer writes it (the files a resume reads), optionally damaged."""
    folder.mkdir(parents=True)
    if state:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if weights:
        save_file({"weight": torch.zeros(64)}, str(folder / "model.safetensors"))
        if truncated:
            data = (folder / "model.safetensors").read_bytes()
            (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    return folder


def fake_finished_model(folder):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "wenlm", "note": "the micro model"}')
    (folder / "model.safetensors").write_bytes(b"finished weights")
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def folder_contents(folder):
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_resuming_another_runs_checkpoint_into_a_finished_model_is_refused(tmp_path, capsys):
    finished = fake_finished_model(tmp_path / "out")
    checkpoint = fake_checkpoint(tmp_path / "other-run" / "checkpoint-10", 10)
    args = pretrain_args(tmp_path, "--resume_from_checkpoint", str(checkpoint))
    assert cli_main(args) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert str(tmp_path / "out") in error and "finished model" in error and "another --output_dir" in error
    assert folder_contents(tmp_path / "out") == finished  # nothing replaced, no lock file left
    assert not (tmp_path / "cache").exists()


def test_resuming_into_a_folder_of_another_run_is_refused(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "tokenizer.json").write_text("{}")
    checkpoint = fake_checkpoint(tmp_path / "other-run" / "checkpoint-10", 10)
    assert cli_main(pretrain_args(tmp_path, "--resume_from_checkpoint", str(checkpoint))) == 2
    error = capsys.readouterr().err
    assert "does not belong" in error and f"--output_dir {checkpoint.parent}" in error
    assert sorted(os.listdir(tmp_path / "out")) == ["tokenizer.json"]


def test_resuming_into_the_checkpoints_own_folder_or_an_empty_one_is_allowed(tmp_path):
    run = tmp_path / "run"
    checkpoint = fake_checkpoint(run / "checkpoint-10", 10)
    (run / "tokenizer.json").write_text("{}")
    for output_dir in (run, tmp_path / "empty", tmp_path / "new"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        args = TrainingArguments(output_dir=str(output_dir), resume_from_checkpoint=str(checkpoint))
        assert check_output_dir(args) == str(checkpoint)
    # The run's own folder, once it holds the finished model, is not retrained over either.
    (run / "config.json").write_text("{}")
    (run / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(FileExistsError, match="finished model"):
        check_output_dir(TrainingArguments(output_dir=str(run), resume_from_checkpoint="last"))


def test_a_second_run_into_a_locked_folder_fails_at_once_naming_the_holder(tmp_path, capsys):
    lock = FolderLock(tmp_path / "out")
    lock.acquire()
    try:
        assert cli_main(pretrain_args(tmp_path)) == 2
        error = capsys.readouterr().err
        assert "Traceback" not in error
        assert f"PID {os.getpid()}" in error and "in use by another wenlm run" in error
        assert os.listdir(tmp_path / "out") == [LOCK_NAME]  # the holder's folder is left as it was
        assert not (tmp_path / "cache").exists()
    finally:
        lock.release()
    assert not (tmp_path / "out" / LOCK_NAME).exists()


def test_a_lock_held_by_another_process_is_refused_and_freed_when_it_is_killed(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from wenlm.training.run_folder import FolderLock; "
            f"FolderLock({str(tmp_path / 'out')!r}).acquire(); print('locked', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FileExistsError, match=f"PID {holder.pid}"):
            FolderLock(tmp_path / "out").acquire()
    finally:
        holder.kill()
        holder.wait()
    lock = FolderLock(tmp_path / "out")
    lock.acquire()  # the kernel dropped the dead process's lock: no manual clean-up needed
    lock.release()


def test_a_stale_lock_file_from_a_killed_run_is_cleared(tmp_path, caplog):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = dead.stdout.strip()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / LOCK_NAME).write_text(f"{dead_pid}\n")
    lock = FolderLock(tmp_path / "out")
    with caplog.at_level(logging.WARNING):
        lock.acquire()
    assert f"PID {dead_pid}" in caplog.text and "no longer running" in caplog.text
    assert (tmp_path / "out" / LOCK_NAME).read_text().strip() == str(os.getpid())
    # The lock file alone is not "another run's files".
    assert check_output_dir(TrainingArguments(output_dir=str(tmp_path / "out"))) is None
    lock.release()
    assert os.listdir(tmp_path / "out") == []


def test_a_run_that_fails_after_writing_files_can_simply_be_retried(tmp_path, capsys, tokenizer_dir):
    # The tokenizer (300 tokens) exceeds the model's vocabulary: found only after the data and tokenizer are
    # prepared and saved into the output folder.
    failing = pretrain_args(tmp_path, "--tokenizer", str(tokenizer_dir))
    failing[failing.index("--config_overrides") + 1] += ",vocab_size=100"
    assert cli_main(failing) == 2
    assert "vocab_size is 100" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # what the failed run wrote is gone, and so is the folder it made
    assert cli_main(pretrain_args(tmp_path, "--tokenizer", str(tokenizer_dir))) == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert not (tmp_path / "out" / LOCK_NAME).exists()


def test_last_is_the_highest_numbered_complete_checkpoint(tmp_path, caplog):
    # Numbered so that neither the first, nor the lexicographically last ("checkpoint-5"), nor the newest
    # folder is the right answer.
    for step in (5, 10, 100):
        fake_checkpoint(tmp_path / f"checkpoint-{step}", step)
    fake_checkpoint(tmp_path / "checkpoint-120", 120, state=False)  # killed before trainer_state.json
    fake_checkpoint(tmp_path / "checkpoint-130", 130, weights=False)
    fake_checkpoint(tmp_path / "checkpoint-140", 140, truncated=True)
    (tmp_path / "checkpoint-150").write_text("a file, not a checkpoint folder")
    with caplog.at_level(logging.WARNING):
        assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-100")
    for skipped in ("checkpoint-120", "checkpoint-130", "checkpoint-140"):
        assert f"Skipping incomplete checkpoint {tmp_path / skipped}" in caplog.text
    assert "trainer_state.json is missing" in caplog.text and "model.safetensors is damaged" in caplog.text


def test_resume_last_with_only_incomplete_checkpoints_is_refused(tmp_path, capsys, caplog):
    fake_checkpoint(tmp_path / "out" / "checkpoint-10", 10, state=False)
    with caplog.at_level(logging.WARNING):
        assert cli_main(pretrain_args(tmp_path, "--resume_from_checkpoint", "last")) == 2
    error = capsys.readouterr().err
    assert (
        "no complete checkpoint" in error
        and str(tmp_path / "out") in error
        and "another --output_dir" in error
    )
    assert "Skipping incomplete checkpoint" in caplog.text and "checkpoint-10" in caplog.text


def test_a_truncated_checkpoint_given_explicitly_is_named_with_what_to_do(tmp_path, capsys):
    checkpoint = fake_checkpoint(tmp_path / "out" / "checkpoint-20", 20, truncated=True)
    before = folder_contents(tmp_path / "out")
    assert cli_main(pretrain_args(tmp_path, "--resume_from_checkpoint", str(checkpoint))) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert str(checkpoint / "model.safetensors") in error and "damaged" in error
    assert "--resume_from_checkpoint last" in error and "earlier checkpoint" in error
    assert folder_contents(tmp_path / "out") == before


# ---------------------------------------------------------------------- D: --model folders, generate's context


def one_step_sft(model, data, output_dir) -> list[str]:
    return [
        "finetune",
        *cli_flags(model=model, task="sft", train_files=data, output_dir=output_dir, max_steps=1),
    ]


def model_command(command, model, tmp_path):
    """The shortest command line of ``command`` that loads ``model`` first."""
    data = tmp_path / "rows.jsonl"
    data.write_text('{"prompt": "hi", "response": "hello"}\n', encoding="utf-8")
    return {
        "generate": ["generate", "--model", str(model), "--prompts", "hello"],
        "evaluate": ["evaluate", "--model", str(model), "--task", "lm", "--validation_files", str(data)],
        "finetune": one_step_sft(model, data, tmp_path / "out"),
        "chat": ["chat", "--model", str(model)],
    }[command]


def refused_model(tmp_path, capsys, command, model, *expected):
    before = folder_contents(model) if model.is_dir() else None
    assert cli_main(model_command(command, model, tmp_path)) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    for text in expected:
        assert text in error, error
    assert not (tmp_path / "out").exists()
    if before is not None:
        assert folder_contents(model) == before
    return error


MODEL_COMMANDS = ["generate", "evaluate", "finetune", "chat"]


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_a_model_folder_with_broken_config_json_is_named_as_damaged(tmp_path, capsys, command):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "wenlm",\n "hidden_size": 64,,\n}')
    (model / "model.safetensors").write_bytes(b"weights")
    refused_model(
        tmp_path,
        capsys,
        command,
        model,
        str(model / "config.json"),
        "not valid JSON",
        "line 2",
        "damaged",
        "re-run the training",
    )


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_a_local_model_folder_that_does_not_exist_is_not_a_hub_error(tmp_path, capsys, command):
    error = refused_model(
        tmp_path,
        capsys,
        command,
        tmp_path / "no-such-model",
        str(tmp_path / "no-such-model"),
        "no such folder",
    )
    assert "huggingface.co" not in error and "connect" not in error.lower()


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_a_folder_that_is_not_a_model_is_named_as_such(tmp_path, capsys, command):
    model = tmp_path / "notes"
    model.mkdir()
    (model / "todo.txt").write_text("not a model")
    error = refused_model(
        tmp_path, capsys, command, model, str(model), "not a model folder", "no config.json"
    )
    assert "tokenizer" not in error.lower()


def test_a_run_folder_with_only_checkpoints_points_at_one(tmp_path, capsys):
    model = tmp_path / "run"
    fake_checkpoint(model / "checkpoint-10", 10)
    refused_model(tmp_path, capsys, "generate", model, "no config.json", str(model / "checkpoint-10"))


def test_finetune_of_a_llama_folder_is_refused_before_training(tmp_path, capsys):
    model = tmp_path / "llama"
    model.mkdir()
    (model / "config.json").write_text(
        json.dumps(
            {"model_type": "llama", "hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1}
        )
    )
    refused_model(
        tmp_path,
        capsys,
        "finetune",
        model,
        str(model),
        "'llama' model",
        "trains wenlm models",
        "model_type 'wenlm'",
    )


def test_generate_refuses_a_prompt_that_does_not_fit_the_context(tmp_path, capsys, tiny_base):  # noqa: F811
    max_context = json.loads((tiny_base / "config.json").read_text())["max_position_embeddings"]
    args = [
        "generate",
        "--model",
        str(tiny_base),
        "--prompts",
        "a short prompt",
        "--max_new_tokens",
        str(max_context),
    ]
    assert cli_main(args) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert f"--max_new_tokens is {max_context}" in error and f"context of {max_context}" in error
    assert "Lower --max_new_tokens or shorten the prompt" in error
    # Chat-formatted prompts are measured with the template around them.
    assert cli_main([*args, "--chat", "true"]) == 2
    assert "Prompt 1 is" in capsys.readouterr().err


def test_a_jsonl_row_that_is_not_json_is_named_by_its_line(tmp_path, capsys):
    data = tmp_path / "corpus.jsonl"
    data.write_text('{"text": "one"}\n\n{"text": "two"\n{"text": "three"}\n', encoding="utf-8")
    before = data.read_bytes()
    refused(
        tmp_path,
        capsys,
        pretrain_args(tmp_path, train_files=data),
        f"{data}:3: invalid JSON",
        "Expecting ',' delimiter",
        "Fix or remove that line",
    )
    assert data.read_bytes() == before
    # A line that parses but is not an object is named too.
    data.write_text('{"text": "one"}\n["a", "list"]\n', encoding="utf-8")
    refused(
        tmp_path, capsys, pretrain_args(tmp_path, train_files=data), f"{data}:2: an array, not a JSON object"
    )


def test_chat_input_that_is_not_utf8_is_named_not_a_traceback(tmp_path, capsys, monkeypatch, tiny_base):  # noqa: F811
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("你好\n".encode("gbk")), encoding="utf-8"))
    before = folder_contents(tiny_base)
    assert cli_main(["chat", "--model", str(tiny_base), "--max_new_tokens", "2"]) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert "not UTF-8" in error and "0xc4" in error and "iconv" in error
    assert folder_contents(tiny_base) == before


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_a_relative_name_that_is_neither_a_folder_nor_on_the_hub_says_both(
    tmp_path, capsys, monkeypatch, command
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network in tests
    assert cli_main(model_command(command, "runs/no-such-model", tmp_path)) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert "--model runs/no-such-model: there is no such folder here" in error and "check its path" in error
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------- E: the output disk (read-only, full)


def finetune_command(model, tmp_path, *extra):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"prompt": "hi", "response": "hello"}\n' * 4, encoding="utf-8")
    return [
        *one_step_sft(model, data, tmp_path / "out"),
        "--disable_tqdm",
        "true",
        "--save_strategy",
        "no",
        *extra,
    ]


def refuse_writes(monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(run_folder, "tempfile", types.SimpleNamespace(TemporaryFile=read_only))


def test_a_read_only_output_folder_is_refused_before_the_first_file(tmp_path, capsys, monkeypatch, tiny_base):  # noqa: F811
    refuse_writes(monkeypatch)
    refused(
        tmp_path,
        capsys,
        finetune_command(tiny_base, tmp_path),
        f"--output_dir {tmp_path / 'out'}",
        "cannot write in",
        "Read-only file system",
        "choose another --output_dir",
    )


def test_the_write_probe_leaves_nothing_behind(tmp_path):
    (tmp_path / "run").mkdir()
    run_folder.check_writable(tmp_path / "run" / "deeper" / "still")
    run_folder.check_writable(tmp_path / "run")
    assert list(tmp_path.rglob("*")) == [tmp_path / "run"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(run_folder.OutputDiskError, match="is a file, not a folder"):
        run_folder.check_writable(tmp_path / "file" / "out")


def test_a_disk_without_room_for_one_checkpoint_is_refused_with_sizes(
    tmp_path,
    capsys,
    monkeypatch,
    tiny_base,  # noqa: F811
):
    real_usage = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real_usage(path)._replace(free=1_000_000))
    error = refused(
        tmp_path,
        capsys,
        finetune_command(tiny_base, tmp_path),
        "one checkpoint needs about",
        "has only 1.0 MB free",
        "choose another --output_dir",
    )
    assert "MB" in error.split("needs about")[1].split("(")[0]


def test_pretrain_on_a_disk_without_room_for_one_checkpoint_is_refused(tmp_path, capsys, monkeypatch):
    real_usage = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real_usage(path)._replace(free=1000))
    refused(tmp_path, capsys, pretrain_args(tmp_path), "one checkpoint needs about", "--output_dir")


def test_pretrain_that_runs_out_of_disk_names_its_last_checkpoint(tmp_path, capsys, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "model.safetensors"))

    monkeypatch.setattr(pretrain_module, "save_model_folder", full_disk)
    assert cli_main(pretrain_args(tmp_path)) == 2
    error = capsys.readouterr().err
    assert (
        "Traceback" not in error and "the disk is full" in error and "--resume_from_checkpoint last" in error
    )


def test_checkpoint_size_counts_weights_optimizer_and_tokenizer(monkeypatch, tmp_path):
    assert run_folder.checkpoint_bytes(1000) == 16_000
    assert run_folder.checkpoint_bytes(1000, trained_parameters=10, tokenizer_bytes=500) == 4_620
    monkeypatch.setattr(shutil, "disk_usage", lambda path: types.SimpleNamespace(free=16_000))
    run_folder.check_free_space(tmp_path / "new", 16_000)
    with pytest.raises(run_folder.OutputDiskError, match="16.0 KB free"):
        run_folder.check_free_space(tmp_path / "new", 16_001)


def test_a_full_disk_during_saving_names_the_last_complete_checkpoint(tmp_path):
    fake_checkpoint(tmp_path / "checkpoint-4", 4)
    fake_checkpoint(tmp_path / "checkpoint-8", 8, truncated=True)  # cut short when the disk filled up
    with pytest.raises(run_folder.OutputDiskError) as refusal:
        with run_folder.disk_errors_named(tmp_path):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "checkpoint-8"))
    message = str(refusal.value)
    assert "the disk is full" in message and str(tmp_path / "checkpoint-4") in message
    assert "--resume_from_checkpoint last" in message and (tmp_path / "checkpoint-8").is_dir()
    with pytest.raises(run_folder.OutputDiskError, match="No checkpoint was complete"):
        with run_folder.disk_errors_named(tmp_path / "empty"):
            raise PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(OSError, match="unrelated"):  # other OS errors are not disk problems: left as they are
        with run_folder.disk_errors_named(tmp_path):
            raise OSError(errno.EIO, "unrelated")


def test_finetune_that_runs_out_of_disk_while_saving_says_so(tmp_path, capsys, monkeypatch, tiny_base):  # noqa: F811
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "model.safetensors"))

    monkeypatch.setattr(finetune_module, "save_model_folder", full_disk)
    assert cli_main(finetune_command(tiny_base, tmp_path)) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and "the disk is full" in error and "model.safetensors" in error


def test_a_run_that_fails_after_saving_its_model_keeps_it(tmp_path):
    with pytest.raises(ValueError, match="push failed"):
        with run_folder.claim_output_folder(tmp_path / "out"):
            (tmp_path / "out" / "config.json").write_text("{}")
            (tmp_path / "out" / "model.safetensors").write_bytes(b"finished weights")
            raise ValueError("push failed")
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == b"finished weights"


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_a_bad_jsonl_line_deep_in_a_streamed_file_is_named_by_its_line(tmp_path, capsys, compressed):
    lines = [json.dumps({"text": f"story {i} about a fox and a cat"}) for i in range(300)]
    lines.insert(250, '{"text": "cut short')
    data = tmp_path / ("corpus.jsonl.gz" if compressed else "corpus.jsonl")
    payload = ("\n".join(lines) + "\n").encode()
    data.write_bytes(gzip.compress(payload) if compressed else payload)
    before = data.read_bytes()
    refused(
        tmp_path,
        capsys,
        pretrain_args(tmp_path, "--streaming", "true", train_files=data),
        f"{data}:251: invalid JSON",
        "Unterminated string",
        "Fix or remove that line",
    )
    assert data.read_bytes() == before


def test_pretrain_into_a_read_only_folder_is_refused_before_the_lock(tmp_path, capsys, monkeypatch):
    refuse_writes(monkeypatch)
    refused(
        tmp_path,
        capsys,
        pretrain_args(tmp_path),
        f"--output_dir {tmp_path / 'out'}",
        "cannot write in",
        "Read-only file system",
    )


# ---------------------------------------------------------------------- F: damaged archives, values that are not text

SMALL_CORPUS = "".join(
    json.dumps({"text": f"story {i} about a fox and a cat"}) + "\n" for i in range(40)
).encode()
COMPRESSORS = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    # With the content checksum the zstd tool writes by default: without one, damage inside a block can decode
    # to other bytes with no error at all, which no reader can tell from the file as it was.
    ".zst": zstandard.ZstdCompressor(write_checksum=True).compress,
}
TOOLS = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd"}
DAMAGES = ("truncated", "corrupted", "not compressed")


def damaged_archive(folder, compression, damage, payload=SMALL_CORPUS, name="corpus.jsonl"):
    """``name + compression`` in ``folder``: the compressed payload cut in half, with 8 bytes flipped in its
    middle, or the payload not compressed at all."""
    data = COMPRESSORS[compression](payload)
    middle = len(data) // 2
    flipped = bytes(byte ^ 0xFF for byte in data[middle : middle + 8])
    blob = {
        "truncated": data[:middle],
        "corrupted": data[:middle] + flipped + data[middle + 8 :],
        "not compressed": payload,
    }[damage]
    path = folder / f"{name}{compression}"
    path.write_bytes(blob)
    return path


def refused_file(capsys, args, place, *expected):
    """Run the CLI; assert that it ends with one line `wenlm COMMAND: error: PLACE: ...` holding every
    ``expected`` text, and that no traceback was printed."""
    assert cli_main(args) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    last = error.rstrip("\n").splitlines()[-1]
    assert last.startswith(f"wenlm {args[0]}: error: {place}: "), error
    for text in expected:
        assert text in last, error
    return last


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_a_damaged_compressed_file_is_named_with_the_tool_that_checks_it(
    tmp_path, capsys, compression, damage
):
    # The cases among them: a .gz whose body fails with zlib's "invalid distance too far back" and a
    # .txt.zst that is not zstd ("Unknown frame descriptor").
    name = "corpus.txt" if damage == "not compressed" else "corpus.jsonl"
    data = damaged_archive(tmp_path, compression, damage, name=name)
    before = data.read_bytes()
    tool = TOOLS[compression]
    refused_file(
        capsys,
        pretrain_args(
            tmp_path, "--streaming", "true" if damage == "corrupted" else "false", train_files=data
        ),
        data,
        f"could not be decompressed as {tool}",
        "truncated or damaged",
        f"`{tool} -t {data}`",
    )
    assert not (tmp_path / "out").exists() and data.read_bytes() == before


def test_zstd_frames_are_all_read_and_a_cut_last_frame_is_named(tmp_path):
    compressor = zstandard.ZstdCompressor()
    path = tmp_path / "frames.txt.zst"
    path.write_bytes(compressor.compress(b"first frame\n") + compressor.compress(b"second frame\n"))
    assert b"".join(chunk for _, chunk in iter_byte_chunks(path)) == b"first frame\nsecond frame\n"
    path.write_bytes(compressor.compress(b"first frame\n") + compressor.compress(b"second frame\n" * 50)[:-6])
    with pytest.raises(ValueError, match="ends inside a zstd frame"):
        list(iter_byte_chunks(path))


NOT_TEXT = {
    "array": ('["a", "b"]', "'text' is an array, not a string"),
    "number": ("42", "'text' is the number 42, not a string"),
    "null": ("null", "'text' is null, not a string"),
    "boolean": ("true", "'text' is true (a boolean), not a string"),
    "object": ('{"zh": "故事"}', "'text' is an object, not a string"),
    "lone surrogate": ('"half \\ud800 a pair"', "the escape \\ud800, half of a surrogate pair"),
}


@pytest.mark.parametrize("streaming", ["false", "true"])
@pytest.mark.parametrize("kind", NOT_TEXT)
def test_a_jsonl_text_that_is_not_a_string_is_refused_by_its_line(tmp_path, capsys, kind, streaming):
    # Before: a number trained as "42", an array made every text of the file its JSON ('"story 0 ..."'), a null
    # was dropped as an empty document, and an array in Parquet was a TypeError from deep inside datasets.
    value, problem = NOT_TEXT[kind]
    data = tmp_path / "corpus.jsonl"
    data.write_bytes(SMALL_CORPUS + f'{{"text": {value}}}\n'.encode() + SMALL_CORPUS)
    refused_file(
        capsys,
        pretrain_args(tmp_path, "--streaming", streaming, train_files=data),
        f"{data}:41",
        problem,
        "Fix or remove that line",
        "--text_column",
    )
    assert not (tmp_path / "out").exists()


def test_a_record_without_the_text_or_a_json_array_record_that_is_not_text_is_named(tmp_path, capsys):
    data = tmp_path / "corpus.jsonl"
    data.write_bytes(SMALL_CORPUS + b'{"title": "no text here"}\n')
    refused_file(
        capsys, pretrain_args(tmp_path, train_files=data), f"{data}:41", "no 'text' field (fields: title)"
    )
    array = tmp_path / "corpus.json"
    array.write_text('[\n  {"text": "one story"},\n  {"text":\n    7}\n]\n', encoding="utf-8")
    refused_file(
        capsys, pretrain_args(tmp_path, train_files=array), f"{array}:3: record 2", "'text' is the number 7"
    )
    assert not (tmp_path / "out").exists()


PARQUET_COLUMNS = {
    "integers": (pa.array([1, 2, 3]), None, "column 'text' holds int64 values, not strings"),
    "lists of strings": (
        pa.array([["a"], ["b"], ["c"]]),
        None,
        "holds list<element: string> values, not strings",
    ),
    "bytes": (pa.array([b"a", b"b", b"c"]), None, "holds binary values, not strings"),
    "strings and a null": (pa.array(["a story", None, "c"]), "row 2", "'text' is null, not a string"),
}


@pytest.mark.parametrize("kind", PARQUET_COLUMNS)
def test_a_parquet_text_column_that_is_not_strings_is_refused(tmp_path, capsys, kind):
    values, row, problem = PARQUET_COLUMNS[kind]
    data = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"text": values}), data)
    refused_file(
        capsys, pretrain_args(tmp_path, train_files=data), f"{data}: {row}" if row else data, problem
    )
    assert not (tmp_path / "out").exists()


def test_a_truncated_parquet_file_is_named(tmp_path, capsys):
    data = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"text": [f"story {i} about a fox" for i in range(40)]}), data)
    data.write_bytes(data.read_bytes()[:-100])
    refused_file(capsys, pretrain_args(tmp_path, train_files=data), data, "not a readable Parquet file")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("streaming", ["false", "true"])
def test_a_csv_file_that_does_not_parse_is_named_before_training(tmp_path, capsys, streaming):
    data = tmp_path / "corpus.csv"
    data.write_text(
        "text,id\n" + "".join(f"story {i} about a fox,{i}\n" for i in range(40)) + "a story,1,2,3\n",
        encoding="utf-8",
    )
    refused_file(
        capsys,
        pretrain_args(tmp_path, "--streaming", streaming, train_files=data),
        data,
        "could not be read as .csv",
        "Expected 2 fields in line 42, saw 4",
    )
    assert not (tmp_path / "out").exists()


def test_scaling_refuses_a_bad_file_before_making_its_study_folder(tmp_path, capsys):
    data = tmp_path / "corpus.jsonl"
    data.write_bytes(SMALL_CORPUS + b'{"text": ["a", "list"]}\n')
    study = tmp_path / "out"
    args = [
        "scaling",
        "--train_files",
        str(data),
        "--output_dir",
        str(study),
        "--cache_dir",
        str(tmp_path / "c"),
    ]
    refused_file(capsys, args, f"{data}:41", "'text' is an array, not a string")
    assert not study.exists()


def test_finetune_names_a_damaged_training_file(tmp_path, capsys, tiny_base):  # noqa: F811
    rows = "".join(json.dumps({"prompt": f"hi {i}", "response": "hello"}) + "\n" for i in range(8)).encode()
    data = damaged_archive(tmp_path, ".gz", "corrupted", rows, name="rows.jsonl")
    args = with_option(finetune_command(tiny_base, tmp_path), "--train_files", str(data))
    refused_file(capsys, args, data, "could not be decompressed as gzip", "`gzip -t")
    assert not (tmp_path / "out").exists()
    # Undamaged, every compression reads as the plain file (before: .jsonl.gz only, and .bz2 was "unsupported").
    for compression in COMPRESSIONS:
        (tmp_path / f"rows.jsonl{compression}").write_bytes(COMPRESSORS[compression](rows))
        assert read_rows(tmp_path / f"rows.jsonl{compression}").rows[7] == {
            "prompt": "hi 7",
            "response": "hello",
        }


def test_embed_names_a_damaged_input_file(tmp_path, capsys, tiny_base):  # noqa: F811
    texts = "".join(f"text number {i}\n" for i in range(20)).encode()
    data = damaged_archive(tmp_path, ".xz", "truncated", texts, name="texts.txt")
    output = tmp_path / "out" / "vectors.parquet"
    args = ["embed", "--model", str(tiny_base), "--input", str(data), "--output", str(output)]
    refused_file(capsys, args, data, "could not be decompressed as xz", "`xz -t")
    assert not (tmp_path / "out").exists()


def test_evaluate_names_a_damaged_file_and_a_text_that_is_not_a_string(tmp_path, capsys, tiny_base):  # noqa: F811
    before = folder_contents(tiny_base)
    data = damaged_archive(
        tmp_path, ".bz2", "corrupted", b"a story about a fox.\n\nanother story.\n" * 20, "v.txt"
    )
    args = ["evaluate", "--model", str(tiny_base), "--task", "lm", "--validation_files", str(data)]
    refused_file(capsys, args, data, "could not be decompressed as bzip2", "`bzip2 -t")
    rows = tmp_path / "v.jsonl"
    rows.write_text('{"text": "a story"}\n{"text": null}\n', encoding="utf-8")
    assert cli_main(with_option(args, "--validation_files", str(rows))) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and f"{rows} row/line 2: 'text' is null, not a string" in error
    assert folder_contents(tiny_base) == before  # no eval_results.json
