"""Folders written by `wenlm pretrain` and `wenlm finetune` agree with themselves (issue 13): the config keeps the KV
cache on, generation stops at <|eos|> and <|end|>, the tokenizer's length limit is the model's context, and loading
the tokenizer raises no model-type warning."""

import json
import logging
import textwrap

import pytest
from helpers import cli_flags, run_without_wenlm
from test_pretrain import tiny_args
from transformers import AutoTokenizer

from wenlm.tokenization import END_OF_TURN_TOKEN, SPECIAL_TOKEN_IDS, stop_token_ids
from wenlm.training.commands.finetune import main as finetune_main
from wenlm.training.commands.pretrain import main as pretrain_main
from wenlm.training.corpus.grammar import write_jsonl
from wenlm.training.hub.validate import HIDE_WENLM

STOP_IDS = [SPECIAL_TOKEN_IDS["eos"], SPECIAL_TOKEN_IDS["end"]]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("saved") / "pretrained"
    # block_size 64 < the context 512 of the tiny nano model: the two lengths must not be confused.
    pretrain_main(tiny_args(output_dir, docs=200, steps=2))
    return output_dir


@pytest.fixture(scope="module")
def finetuned(pretrained):
    rows = pretrained.parent / "qa.jsonl"
    write_jsonl("qa", 24, 0, rows)
    output_dir = pretrained.parent / "sft"
    finetune_main(
        cli_flags(
            model=pretrained,
            task="sft",
            train_files=rows,
            output_dir=output_dir,
            block_size=256,
            max_steps=2,
            per_device_train_batch_size=4,
            save_strategy="no",
            disable_tqdm="true",
        )
    )
    return output_dir


def read(folder, name):
    return json.loads((folder / name).read_text())


FOLDERS = ["pretrained", "finetuned"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", FOLDERS)
def test_config_keeps_the_kv_cache_on(kind, request):
    folder = request.getfixturevalue(kind)
    assert read(folder, "config.json")["use_cache"] is True
    assert read(folder, "generation_config.json").get("use_cache", True) is True


@pytest.mark.slow
@pytest.mark.parametrize("kind", FOLDERS)
def test_generation_stops_at_end_of_text_and_end_of_turn(kind, request):
    folder = request.getfixturevalue(kind)
    generation = read(folder, "generation_config.json")
    assert generation["eos_token_id"] == STOP_IDS
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.convert_ids_to_tokens(generation["eos_token_id"]) == [
        tokenizer.eos_token,
        END_OF_TURN_TOKEN,
    ]
    assert (
        generation["bos_token_id"] == tokenizer.bos_token_id
        and generation["pad_token_id"] == tokenizer.pad_token_id
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", FOLDERS)
def test_tokenizer_length_limit_is_the_model_context(kind, request):
    folder = request.getfixturevalue(kind)
    context = read(folder, "config.json")["max_position_embeddings"]
    assert context == 512  # the nano preset's, not the 64-token training blocks
    assert read(folder, "tokenizer_config.json")["model_max_length"] == context
    assert AutoTokenizer.from_pretrained(folder).model_max_length == context


def test_stop_token_ids_add_end_of_turn_only_when_the_tokenizer_has_it():
    class Vocabulary:
        eos_token_id = 2

        def __init__(self, vocab):
            self.vocab = vocab

        def get_vocab(self):
            return self.vocab

    wenlm_like = Vocabulary({"<|eos|>": 2, END_OF_TURN_TOKEN: 6})
    assert stop_token_ids(wenlm_like) == [2, 6]
    assert stop_token_ids(wenlm_like, [2, 6]) == [2, 6]  # no duplicates on a folder that has both already
    assert stop_token_ids(wenlm_like, 9) == [9, 6]
    assert stop_token_ids(Vocabulary({"</s>": 2})) == [2]  # a foreign tokenizer without a chat turn marker


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.slow
def test_tokenizer_loads_without_a_model_type_warning_with_wenlm(pretrained):
    records = Records()
    transformers_logger = logging.getLogger("transformers")
    transformers_logger.addHandler(records)
    try:
        AutoTokenizer.from_pretrained(pretrained, trust_remote_code=False)
    finally:
        transformers_logger.removeHandler(records)
    assert not [message for message in records.messages if "model of type" in message], records.messages


# Without wenlm, transformers can build a wenlm config only from the folder's code; trust_remote_code=False makes it
# fall back to a bare config, which is what warns about a model type "" (transformers' own behaviour).
CLEAN_TOKENIZER_LOAD = HIDE_WENLM + textwrap.dedent(
    """
    import sys
    sys.path.append(sys.argv[1])
    from transformers import AutoTokenizer
    from transformers.utils import logging
    logging.set_verbosity_warning()
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[2], trust_remote_code=True)
    print(tokenizer.model_max_length)
    """
)


@pytest.mark.slow
def test_tokenizer_loads_without_a_model_type_warning_without_wenlm(pretrained, tmp_path):
    result = run_without_wenlm(CLEAN_TOKENIZER_LOAD, pretrained, cwd=tmp_path)
    assert result.stdout.split() == ["512"]
    assert "model of type" not in result.stderr and "custom code" not in result.stderr, result.stderr
