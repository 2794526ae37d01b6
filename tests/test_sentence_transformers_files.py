"""The sentence-transformers files: SentenceTransformer loads a wenlm folder and gives `embed_texts`' vectors."""

import json
import shutil

import numpy as np
import pytest
from transformers import AutoModel, AutoTokenizer

from wenlm.training.cli import main as cli_main
from wenlm.training.retrieval import embed_texts, write_sentence_transformers_config
from wenlm.training.retrieval.sentence_transformers_files import MODULES_FILE

sentence_transformers = pytest.importorskip("sentence_transformers")

# Lengths from 1 token to past the tokenizer's 64 (the model's context is 128), so that batches are padded.
TEXTS = [
    "Hi",
    "小明在公园玩。",
    "One sunny morning, Tom and Anna went to the park and found a red ball under a tree.",
    "一个下雨的下午，乐乐和杰克去了村子。" * 4,
    "The end.",
]


@pytest.fixture
def folder(tmp_path, wenlm_folder):
    return shutil.copytree(wenlm_folder, tmp_path / "model")


def expected_vectors(folder, pooling, normalize=True):
    model, tokenizer = AutoModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    return embed_texts(model, tokenizer, TEXTS, pooling=pooling, normalize=normalize)


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_sentence_transformers_gives_the_vectors_of_embed_texts(folder, pooling):
    write_sentence_transformers_config(folder, pooling)
    model = sentence_transformers.SentenceTransformer(str(folder), trust_remote_code=True, device="cpu")
    vectors = model.encode(TEXTS, batch_size=3)
    np.testing.assert_allclose(vectors, expected_vectors(folder, pooling), atol=1e-5, rtol=0)
    assert model.similarity_fn_name == "cosine" and model.max_seq_length == 128


def test_without_normalize_the_lengths_are_kept(folder):
    write_sentence_transformers_config(folder, "mean", normalize=False)
    assert not (folder / "2_Normalize").exists()
    vectors = sentence_transformers.SentenceTransformer(str(folder), trust_remote_code=True).encode(TEXTS)
    expected = expected_vectors(folder, "mean", normalize=False)
    assert not np.allclose(np.linalg.norm(expected, axis=1), 1.0)
    np.testing.assert_allclose(vectors, expected, atol=1e-5, rtol=0)


def test_different_files_are_kept_unless_overwrite(folder):
    write_sentence_transformers_config(folder, "mean")
    write_sentence_transformers_config(folder, "mean")  # the same files again: nothing to refuse
    with pytest.raises(FileExistsError, match="1_Pooling/config.json"):
        write_sentence_transformers_config(folder, "last")
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"]
    (folder / MODULES_FILE).write_text('[{"idx": 0, "name": "mine", "path": "", "type": "x"}]')
    with pytest.raises(FileExistsError, match="modules.json"):
        write_sentence_transformers_config(folder, "mean")
    written = write_sentence_transformers_config(folder, "last", overwrite=True)
    assert folder / MODULES_FILE in written
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode_lasttoken"]


def test_left_padding_and_non_model_folders_are_refused(tmp_path, folder):
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "padding_side": "left"}))
    with pytest.raises(ValueError, match="padding_side='right'"):
        write_sentence_transformers_config(folder)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        write_sentence_transformers_config(tmp_path)
    assert not (folder / MODULES_FILE).exists()


def test_embed_command_writes_the_files_on_request(tmp_path, folder, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS), encoding="utf-8")
    output = tmp_path / "vectors.parquet"
    command = ["embed", "--model", str(folder)]
    argv = [*command, "--pooling", "last", "--sentence_transformers", "true"]
    assert cli_main([*argv, "--input", str(texts), "--output", str(output)]) == 0
    assert output.is_file() and (folder / MODULES_FILE).is_file()
    vectors = sentence_transformers.SentenceTransformer(str(folder), trust_remote_code=True).encode(TEXTS)
    np.testing.assert_allclose(vectors, expected_vectors(folder, "last"), atol=1e-5, rtol=0)

    assert cli_main([*command, "--sentence_transformers", "true"]) == 2  # mean pooling: no overwrite
    assert "--overwrite true" in capsys.readouterr().err
    assert cli_main([*command, "--sentence_transformers", "true", "--overwrite", "true"]) == 0  # files only
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"]

    assert cli_main(["embed", "--model", "someone/model", "--sentence_transformers", "true"]) == 2
    assert "Hub id" in capsys.readouterr().err
    assert cli_main(command) == 2
    assert "--input" in capsys.readouterr().err
