"""`wenlm export --to llama`: a stock LlamaForCausalLM folder with the wenlm model's exact logits, loaded with no
remote code; refusals of what Llama cannot express or what would overwrite files."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from helpers import run_without_wenlm, save_wenlm_folder
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LlamaForCausalLM

from wenlm.modeling import WenLMForCausalLM
from wenlm.training.args import EXPORT_FORMATS
from wenlm.training.cli import main as cli_main
from wenlm.training.commands.export import WRITERS
from wenlm.training.commands.export import main as export_main
from wenlm.training.export import LLAMA_CARD_MARKER, export_llama
from wenlm.training.hub.validate import HIDE_WENLM

PROBE_TEXT = "小明在公园里看书。Tom reads a book in the park, 然后回家。"


@pytest.fixture(scope="module")
def llama_folder(wenlm_folder):
    return export_main(
        ["--model", str(wenlm_folder), "--to", "llama", "--output_dir", str(wenlm_folder.parent / "llama")]
    )


def test_export_is_a_stock_llama_folder(llama_folder, wenlm_folder):
    names = {path.name for path in llama_folder.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
    } <= names
    assert not [name for name in names if name.endswith(".py")], names  # no remote code travels along
    config = json.loads((llama_folder / "config.json").read_text())
    assert config["model_type"] == "llama" and config["architectures"] == ["LlamaForCausalLM"]
    assert "auto_map" not in config and config["use_cache"] is True
    card = (llama_folder / "README.md").read_text()
    assert LLAMA_CARD_MARKER in card and str(wenlm_folder.resolve()) in card and "losslessly" in card
    assert f"wenlm export --model {wenlm_folder} --to llama --output_dir {llama_folder}" in card


def test_export_loads_without_remote_code_and_gives_identical_logits(llama_folder, wenlm_folder):
    llama, info = AutoModelForCausalLM.from_pretrained(llama_folder, output_loading_info=True)
    assert type(llama) is LlamaForCausalLM
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    wenlm = WenLMForCausalLM.from_pretrained(wenlm_folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(llama_folder)
    ids = tokenizer(PROBE_TEXT, return_tensors="pt").input_ids
    assert (
        ids[0].tolist()
        == AutoTokenizer.from_pretrained(wenlm_folder, trust_remote_code=False)(PROBE_TEXT).input_ids
    )
    with torch.no_grad():
        difference = (llama.eval()(ids).logits - wenlm(ids).logits).abs().max().item()
    assert difference <= 1e-5
    # The weights carry real signal: a different model would not pass the comparison above.
    assert wenlm(ids).logits.std() > 0.1


def test_export_generation_and_tokenizer_settings(llama_folder):
    generation = GenerationConfig.from_pretrained(llama_folder)
    assert generation.eos_token_id == [
        2,
        6,
    ]  # <|eos|> and <|end|>, even from a folder that stopped only at <|eos|>
    assert generation.bos_token_id == 1 and generation.pad_token_id == 0
    tokenizer = AutoTokenizer.from_pretrained(llama_folder)
    assert (
        tokenizer.model_max_length
        == 128
        == json.loads((llama_folder / "config.json").read_text())["max_position_embeddings"]
    )
    assert tokenizer.chat_template  # chat models keep their template


@pytest.mark.slow
def test_export_loads_in_a_python_without_wenlm(llama_folder, wenlm_folder, tmp_path):
    with torch.no_grad():
        expected = (
            WenLMForCausalLM.from_pretrained(wenlm_folder)
            .eval()(
                AutoTokenizer.from_pretrained(wenlm_folder, trust_remote_code=False)(
                    PROBE_TEXT, return_tensors="pt"
                ).input_ids
            )
            .logits[0]
        )
    (tmp_path / "expected.json").write_text(json.dumps(expected.tolist()))
    script = HIDE_WENLM + textwrap.dedent(
        """
        import json, logging, sys
        sys.path.append(sys.argv[1])
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_warning()
        tokenizer = AutoTokenizer.from_pretrained(sys.argv[2])
        model = AutoModelForCausalLM.from_pretrained(sys.argv[2]).eval()
        with torch.no_grad():
            logits = model(tokenizer(sys.argv[4], return_tensors="pt").input_ids).logits[0]
        expected = torch.tensor(json.loads(open(sys.argv[3]).read()))
        print(json.dumps({"class": type(model).__module__ + "." + type(model).__name__,
                          "difference": (logits - expected).abs().max().item()}))
        """
    )
    result = run_without_wenlm(script, llama_folder, tmp_path / "expected.json", PROBE_TEXT, cwd=tmp_path)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["class"] == "transformers.models.llama.modeling_llama.LlamaForCausalLM"
    assert outcome["difference"] <= 1e-5
    # No question about remote code, no model-type warning: nothing in the folder asks for either.
    assert "custom code" not in result.stderr and "model of type" not in result.stderr, result.stderr


def test_export_refuses_a_non_empty_output_dir(wenlm_folder, tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--output_dir"):
        export_llama(str(wenlm_folder), target)
    assert [path.name for path in target.iterdir()] == ["notes.txt"]
    # An empty folder is fine, and no staging folder is left next to it.
    empty = tmp_path / "empty"
    empty.mkdir()
    export_llama(str(wenlm_folder), empty)
    assert (empty / "model.safetensors").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty", "taken"]


def test_export_refuses_settings_llama_lacks_naming_them(tmp_path):
    folder = save_wenlm_folder(tmp_path / "dropout", dropout=0.1)
    with pytest.raises(ValueError, match="dropout=0.1 has no Llama equivalent"):
        export_llama(str(folder), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [path.name for path in tmp_path.iterdir()] == ["dropout"]  # no partial folder left behind


def test_export_refuses_a_jieba_tokenizer(tmp_path):
    folder = save_wenlm_folder(tmp_path / "jieba", use_jieba=True)
    with pytest.raises(ValueError, match="use_jieba"):
        export_llama(str(folder), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_export_refuses_a_model_that_is_not_wenlm(llama_folder, tmp_path):
    with pytest.raises(ValueError, match="model_type 'llama', not 'wenlm'"):
        export_llama(str(llama_folder), tmp_path / "again")


def test_export_command_line(wenlm_folder, tmp_path, capsys):
    assert set(WRITERS) == set(EXPORT_FORMATS)  # every --to choice has a writer, and no writer is unreachable
    assert (
        cli_main(
            ["export", "--model", str(wenlm_folder), "--to", "onnx", "--output_dir", str(tmp_path / "g")]
        )
        == 2
    )
    assert "invalid choice: 'onnx' (choose from 'llama', 'gguf')" in capsys.readouterr().err
    # --outtype belongs to GGUF; the Llama folder keeps the model's dtype, so asking for one there is an error.
    args = ["export", "--model", str(wenlm_folder), "--outtype", "f16", "--output_dir", str(tmp_path / "o")]
    assert cli_main(args) == 2
    assert "--outtype f16 applies to --to gguf" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert (
        cli_main(["export", "--model", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "m")]) == 2
    )
    assert "wenlm export: error:" in capsys.readouterr().err
    # --to defaults to llama; the dashed spelling works like every other option.
    assert cli_main(["export", "--model", str(wenlm_folder), "--output-dir", str(tmp_path / "cli")]) == 0
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["model_type"] == "llama"


HUB_EXPORT_SCRIPT = """
import sys
from huggingface_hub import HfApi
from wenlm.training.cli import main

folder, output_dir = sys.argv[1], sys.argv[2]
api = HfApi()
api.create_repo("user/tiny-wenlm")
api.create_branch("user/tiny-wenlm", branch="dev")
api.upload_folder(repo_id="user/tiny-wenlm", folder_path=folder, revision="dev")  # main holds no model at all
assert main(["export", "--model", "user/tiny-wenlm", "--output_dir", output_dir + "-main"]) == 2
sys.exit(main(["export", "--model", "user/tiny-wenlm", "--revision", "dev", "--output_dir", output_dir]))
"""


@pytest.mark.slow
def test_export_from_a_hub_id_at_a_revision(hub, wenlm_folder, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(tmp_path / "hf"),
        HF_TOKEN="hf_" + "0" * 32,
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    output_dir = tmp_path / "from-hub"
    result = subprocess.run(
        [sys.executable, "-c", HUB_EXPORT_SCRIPT, str(wenlm_folder), str(output_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "wenlm export: error: --model user/tiny-wenlm: " in result.stderr  # main has no model to convert
    card = (output_dir / "README.md").read_text()
    assert (
        "the Hub model `user/tiny-wenlm` (revision `dev`)" in card and "base_model: user/tiny-wenlm" in card
    )
    llama = AutoModelForCausalLM.from_pretrained(output_dir).eval()
    wenlm = WenLMForCausalLM.from_pretrained(wenlm_folder).eval()
    ids = torch.tensor([[1, 20, 30, 40, 50, 60]])
    with torch.no_grad():
        assert (llama(ids).logits - wenlm(ids).logits).abs().max().item() <= 1e-5
