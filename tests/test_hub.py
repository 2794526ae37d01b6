"""Publishing to the Hub, end to end against the local stand-in in tests/hub_server.py.

huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE once, at import, and this test session runs offline; so every
Hub client call (pushing and loading) runs in a subprocess pointed at the local server, each with its own empty
HF_HOME cache. The subprocess scripts batch many operations so the whole file needs only a few interpreters.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import textwrap
import traceback
import types
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from helpers import tiny_config_fields
from huggingface_hub.errors import HfHubHTTPError
from safetensors.torch import load_file, save_file
from test_finetune import tiny_base  # noqa: F401  (session fixture shared with it)
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, TrainingArguments

from wenlm.modeling import WenLMForCausalLM
from wenlm.training.hub.publish import (
    push_failure,
    push_folder,
    redact_secrets,
    take_hub_push_from_args,
    take_hub_token_from_args,
    validate_folder,
)
from wenlm.training.hub.validate import HIDE_WENLM

# Fresh per session, so a hit in a leak check can only come from this run.
TOKEN = "hf_" + secrets.token_hex(16)
PROMPT = "hello 你好 world"
NEW_TOKENS = 6
# The tiny shape of both test models (a stock Llama and wenlm's own class); token ids come from the tokenizer.
TINY_CONFIG = tiny_config_fields(300)
CARD = textwrap.dedent(
    """\
    ---
    library_name: transformers
    pipeline_tag: text-generation
    license: apache-2.0
    language: [en, zh]
    ---
    # tiny test model

    Random weights, for tests only.
    """
)

PUSH_SCRIPT = """
import json, logging, os, sys
from pathlib import Path

# Everything the libraries log goes to stderr, which the test searches for the token.
logging.basicConfig(level=logging.DEBUG)
from huggingface_hub.utils import logging as hub_logging
hub_logging.set_verbosity_debug()
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as transformers_logging
transformers_logging.set_verbosity_debug()
from wenlm.training.hub.publish import push_folder

spec = json.loads(Path(sys.argv[1]).read_text())
results = {}
for op in spec["ops"]:
    try:
        if op["kind"] == "push_folder":
            results[op["name"]] = push_folder(op["folder"], op["repo_id"], **op.get("kwargs", {}))
        elif op["kind"] == "push_to_hub":
            model = AutoModelForCausalLM.from_pretrained(op["folder"])
            tokenizer = AutoTokenizer.from_pretrained(op["folder"])
            results[op["name"]] = str(model.push_to_hub(op["repo_id"]))
            tokenizer.push_to_hub(op["repo_id"])
        elif op["kind"] == "push_folder_without_token":
            token = os.environ.pop("HF_TOKEN")
            try:
                results[op["name"]] = push_folder(op["folder"], op["repo_id"], validate=False)
            finally:
                os.environ["HF_TOKEN"] = token
    except Exception as error:
        results[op["name"]] = {"error": type(error).__name__, "message": str(error)}
Path(sys.argv[2]).write_text(json.dumps(results))
"""

LOAD_SCRIPT = """
import json, sys, traceback
from pathlib import Path
spec = json.loads(Path(sys.argv[1]).read_text())
if spec["hide_wenlm"]:
    exec(spec["hide_wenlm_code"])  # exits if wenlm is still importable afterwards

import torch
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

results, tensors = {}, {}
def load_and_run(load):
    kwargs = {"revision": load.get("revision"), "trust_remote_code": load.get("trust_remote_code", False)}
    tokenizer = AutoTokenizer.from_pretrained(load["repo_id"], **kwargs)
    model = AutoModelForCausalLM.from_pretrained(load["repo_id"], **kwargs).eval()
    input_ids = tokenizer(spec["prompt"], return_tensors="pt").input_ids
    with torch.no_grad():
        tensors[load["name"]] = model(input_ids).logits.contiguous()
    result = {"input_ids": input_ids[0].tolist(), "model_module": type(model).__module__}
    if load.get("pipeline"):
        generator = pipeline("text-generation", model=load["repo_id"], **kwargs)
        output = generator(spec["prompt"], max_new_tokens=spec["new_tokens"], do_sample=False, return_tensors=True)
        result["generated_ids"] = [int(i) for i in output[0]["generated_token_ids"]]
    return result

for load in spec["loads"]:
    # One failing load (say, wenlm's remote code) must not hide the results of the others.
    try:
        results[load["name"]] = load_and_run(load)
    except Exception:
        results[load["name"]] = {"error": traceback.format_exc()}

def error_of(call):
    try:
        call()
    except Exception as error:
        return {
            "type": type(error).__name__,
            "repository_not_found": isinstance(error, RepositoryNotFoundError),
            "revision_not_found": isinstance(error, RevisionNotFoundError),
            "entry_not_found": isinstance(error, EntryNotFoundError),
            "message": str(error),
        }
    return None

if spec.get("error_repo"):
    repo = spec["error_repo"]
    results["errors"] = {
        "missing_repo": error_of(lambda: hf_hub_download("user/no-such-model", "config.json")),
        "missing_file": error_of(lambda: hf_hub_download(repo, "no_such_file.json")),
        "missing_revision": error_of(lambda: hf_hub_download(repo, "config.json", revision="no-such-branch")),
        "transformers_missing_repo": error_of(lambda: AutoModelForCausalLM.from_pretrained("user/no-such-model")),
        "private_without_token": error_of(lambda: HfApi().model_info(spec["private_repo"], token=False)),
    }
    results["private_with_token"] = HfApi().model_info(spec["private_repo"]).private
save_file(tensors, sys.argv[3])
Path(sys.argv[2]).write_text(json.dumps(results))
"""


def run_client(script: str, spec: dict, hub, workdir: Path, timeout: float = 300) -> tuple[dict, dict, str]:
    """Runs a Hub client script in a fresh interpreter and cache; returns (results, tensors, stdout+stderr)."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path, results_path, tensors_path = (
        workdir / "spec.json",
        workdir / "results.json",
        workdir / "out.st",
    )
    spec_path.write_text(json.dumps({**spec, "hide_wenlm_code": HIDE_WENLM}))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_XET="1",  # the stand-in has no Xet storage: content travels inline in commits
        HF_HOME=str(workdir / "hf_home"),
        HF_TOKEN=TOKEN,
        HF_DEBUG="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
    )
    command = [sys.executable, "-c", script, str(spec_path), str(results_path), str(tensors_path)]
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"client script failed:\n{output[-6000:]}"
    tensors = load_file(tensors_path) if tensors_path.exists() else {}
    return json.loads(results_path.read_text()), tensors, output


def byte_level_tokenizer():
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(["hello world 你好世界 tiny model"] * 20, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def reference_outputs(model, tokenizer) -> dict:
    input_ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(input_ids).logits
        generated = model.generate(input_ids, max_new_tokens=NEW_TOKENS, do_sample=False)
    return {"input_ids": input_ids[0].tolist(), "logits": logits, "generated_ids": generated[0].tolist()}


def save_llama(folder: Path, seed: int, tokenizer) -> dict:
    torch.manual_seed(seed)
    config = LlamaConfig(
        **TINY_CONFIG, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text(CARD, encoding="utf-8")
    return reference_outputs(model, tokenizer)


# --------------------------------------------------------------------------------------------------------------
# Fixtures: one push run and one load run for the whole module (the stand-in Hub, `hub`, is in conftest.py)
# --------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    root = tmp_path_factory.mktemp("llama")
    tokenizer = byte_level_tokenizer()
    folders = {"main": root / "main", "dev": root / "dev"}
    references = {
        name: save_llama(folder, seed, tokenizer) for seed, (name, folder) in enumerate(folders.items())
    }
    # Training leftovers that must never be published.
    (folders["main"] / "checkpoints" / "step-10").mkdir(parents=True)
    (folders["main"] / "checkpoints" / "step-10" / "model.safetensors").write_bytes(b"old")
    (folders["main"] / "optimizer.pt").write_bytes(b"optimizer state")
    (folders["main"] / "runs").mkdir()
    (folders["main"] / "runs" / "events.out").write_bytes(b"tensorboard")
    (folders["main"] / ".wenlm.lock").write_text(
        "12345\n"
    )  # a run's folder lock, still held during --push_to_hub
    bad_card = root / "bad_card"
    bad_card.mkdir()
    (bad_card / "README.md").write_text("---\nlibrary_name: [unclosed\n---\nbroken card\n", encoding="utf-8")
    return {"folders": folders, "references": references, "bad_card": bad_card}


@pytest.fixture(scope="module")
def wenlm(tmp_path_factory):
    """A saved tiny wenlm folder with its reference outputs, or why there is none.

    Failures are recorded instead of raised so that a broken wenlm.modeling fails only the wenlm test.
    """
    folder = tmp_path_factory.mktemp("wenlm") / "tiny-wenlm"
    try:
        return {"folder": folder, "reference": save_wenlm_folder(folder, byte_level_tokenizer())}
    except Exception:
        return {"error": traceback.format_exc()}


@pytest.fixture(scope="module")
def published(hub, llama, wenlm, tmp_path_factory):
    folders = llama["folders"]
    ops = [
        {
            "name": "main",
            "kind": "push_folder",
            "folder": str(folders["main"]),
            "repo_id": "user/tiny-llama",
            "kwargs": {"validate": False, "commit_message": f"first upload (token {TOKEN})"},
        },
        {
            "name": "dev",
            "kind": "push_folder",
            "folder": str(folders["dev"]),
            "repo_id": "user/tiny-llama",
            "kwargs": {"validate": False, "revision": "dev"},
        },
        {
            "name": "private",
            "kind": "push_folder",
            "folder": str(folders["main"]),
            "repo_id": "user/private-llama",
            "kwargs": {"validate": False, "private": True},
        },
        {
            "name": "push_to_hub",
            "kind": "push_to_hub",
            "folder": str(folders["main"]),
            "repo_id": "user/pushed-llama",
        },
        {
            "name": "bad_card",
            "kind": "push_folder",
            "folder": str(llama["bad_card"]),
            "repo_id": "user/bad-card",
            "kwargs": {"validate": False},
        },
        {
            "name": "no_token",
            "kind": "push_folder_without_token",
            "folder": str(folders["main"]),
            "repo_id": "user/no-token",
        },
    ]
    if "folder" in wenlm:  # validate=True (the default): the push itself runs the clean-load check
        ops.append(
            {
                "name": "wenlm",
                "kind": "push_folder",
                "folder": str(wenlm["folder"]),
                "repo_id": "user/tiny-wenlm",
            }
        )
    results, _, output = run_client(PUSH_SCRIPT, {"ops": ops}, hub, tmp_path_factory.mktemp("push"))
    return {
        "results": results,
        "output": output,
        "main_head_after_push": hub.repos["user/tiny-llama"].branches["main"],
    }


@pytest.fixture(scope="module")
def downloaded(hub, published, wenlm, tmp_path_factory):
    spec = {
        # Every load runs where wenlm is not importable, as for a user who only installed transformers.
        "hide_wenlm": True,
        "prompt": PROMPT,
        "new_tokens": NEW_TOKENS,
        "loads": [
            {"name": "main", "repo_id": "user/tiny-llama", "pipeline": True},
            {"name": "dev", "repo_id": "user/tiny-llama", "revision": "dev"},
            {"name": "push_to_hub", "repo_id": "user/pushed-llama"},
        ],
        "error_repo": "user/tiny-llama",
        "private_repo": "user/private-llama",
    }
    if "folder" in wenlm:
        spec["loads"].append(
            {"name": "wenlm", "repo_id": "user/tiny-wenlm", "trust_remote_code": True, "pipeline": True}
        )
    results, tensors, output = run_client(LOAD_SCRIPT, spec, hub, tmp_path_factory.mktemp("load"))
    return {"results": results, "tensors": tensors, "output": output}


# --------------------------------------------------------------------------------------------------------------
# Round trip with a stock transformers model
# --------------------------------------------------------------------------------------------------------------
def test_validate_folder_names_missing_auto_map_for_a_stock_llama_folder(llama):
    problems = validate_folder(llama["folders"]["main"])
    assert len(problems) == 1, problems
    assert "auto_map" in problems[0] and "register_for_auto_class" in problems[0]


def test_push_folder_refuses_an_invalid_folder_before_touching_the_network(llama):
    with pytest.raises(
        ValueError, match=r"(?s)not ready to publish to user/x:\n- config.json has no auto_map"
    ):
        push_folder(llama["folders"]["main"], "user/x")


@pytest.mark.slow
def test_push_folder_uploads_the_model_but_not_training_leftovers(hub, published):
    main_commit = published["results"]["main"]
    repo = hub.repos["user/tiny-llama"]
    assert isinstance(main_commit, str), main_commit
    assert main_commit.endswith(f"/user/tiny-llama/commit/{published['main_head_after_push']}")
    files = set(repo.resolve("main").files)
    expected = {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    assert expected | {"README.md", ".gitattributes"} == files
    assert repo.resolve("main").message.startswith("first upload (token hf_***)")


@pytest.mark.slow
def test_loading_from_the_hub_reproduces_the_original_logits(llama, downloaded):
    references, results, tensors = llama["references"], downloaded["results"], downloaded["tensors"]
    for name, reference_name in [("main", "main"), ("dev", "dev"), ("push_to_hub", "main")]:
        assert "error" not in results[name], results[name].get("error")
        assert results[name]["input_ids"] == references[reference_name]["input_ids"]
        difference = (tensors[name] - references[reference_name]["logits"]).abs().max().item()
        assert difference <= 1e-5, f"{name}: max |logit difference| {difference}"


def test_pipeline_generates_like_the_original_model(llama, downloaded):
    assert downloaded["results"]["main"]["generated_ids"] == llama["references"]["main"]["generated_ids"]


def test_branch_revision_gets_its_own_commit_and_main_is_unaffected(hub, llama, published, downloaded):
    repo = hub.repos["user/tiny-llama"]
    dev_commit = published["results"]["dev"]
    assert dev_commit.endswith(f"/commit/{repo.branches['dev']}")
    assert repo.branches["main"] == published["main_head_after_push"]
    main_weights, dev_weights = (repo.resolve(rev).files["model.safetensors"] for rev in ("main", "dev"))
    assert main_weights == (llama["folders"]["main"] / "model.safetensors").read_bytes()
    assert dev_weights == (llama["folders"]["dev"] / "model.safetensors").read_bytes() != main_weights
    # The two seeds give different models, so matching logits above really tell the branches apart.
    assert (downloaded["tensors"]["main"] - downloaded["tensors"]["dev"]).abs().max().item() > 1e-3


def test_model_push_to_hub_creates_a_loadable_repo_with_a_card(hub, published):
    assert "/user/pushed-llama/commit/" in published["results"]["push_to_hub"]
    files = hub.repos["user/pushed-llama"].resolve("main").files
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= set(files)


def test_private_flag_reaches_the_hub(hub, downloaded):
    assert hub.repos["user/private-llama"].private is True
    assert hub.repos["user/tiny-llama"].private is False
    errors = downloaded["results"]["errors"]
    assert errors["private_without_token"]["repository_not_found"], errors["private_without_token"]
    assert downloaded["results"]["private_with_token"] is True


def test_client_errors_for_missing_repo_file_and_revision(downloaded):
    errors = downloaded["results"]["errors"]
    assert errors["missing_repo"]["repository_not_found"], errors["missing_repo"]
    assert errors["missing_file"]["entry_not_found"], errors["missing_file"]
    assert not errors["missing_file"]["repository_not_found"]
    assert errors["missing_revision"]["revision_not_found"], errors["missing_revision"]
    assert errors["transformers_missing_repo"]["type"] == "OSError"
    assert "not a valid model identifier" in errors["transformers_missing_repo"]["message"]


def test_readme_metadata_is_validated_by_the_hub_on_commit(hub, published):
    validations = hub.requests_to(r"^/api/validate-yaml$", "POST")
    contents = [json.loads(request.body)["content"] for request in validations]
    assert CARD in contents
    bad_card = published["results"]["bad_card"]
    assert bad_card["error"] == "ValueError" and "Invalid metadata in README.md" in bad_card["message"]
    # The refused card never reached a commit: the repo still holds only its initial commit.
    assert set(hub.repos["user/bad-card"].resolve("main").files) == {".gitattributes"}


def test_push_without_any_token_says_how_to_log_in(hub, published):
    result = published["results"]["no_token"]
    assert result["error"] == "ValueError" and "HF_TOKEN" in result["message"]
    assert "user/no-token" not in hub.repos


def test_token_only_travels_in_the_authorization_header(hub, published):
    writes = [request for request in hub.requests if request.method == "POST"]
    assert writes and all(request.headers.get("authorization") == f"Bearer {TOKEN}" for request in writes)
    for request in hub.requests:
        assert TOKEN.encode() not in request.body, request.path
        assert TOKEN not in request.path
        other_headers = {key: value for key, value in request.headers.items() if key != "authorization"}
        assert TOKEN not in json.dumps(other_headers), request.path
    for repo in hub.repos.values():
        for commit in repo.commits.values():
            assert TOKEN not in commit.message
            assert not any(TOKEN.encode() in content for content in commit.files.values())
    # The push ran with debug logging (HF_DEBUG curl lines included), so the traffic was logged and still no token.
    assert "/preupload/main" in published["output"] and "curl" in published["output"]
    assert TOKEN not in published["output"]


def test_fake_hub_rejects_writes_without_a_token(hub):
    request = urllib.request.Request(
        f"{hub.url}/api/repos/create", data=json.dumps({"name": "anonymous"}).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 401
    assert "user/anonymous" not in hub.repos


# --------------------------------------------------------------------------------------------------------------
# validate_folder and redact_secrets without a server
# --------------------------------------------------------------------------------------------------------------
REMOTE_CONFIG = """
from transformers import PretrainedConfig

class TinyConfig(PretrainedConfig):
    model_type = "tiny-remote"
"""


def write_remote_code_folder(folder: Path, modeling_source: str, tokenizer_source: Path) -> None:
    folder.mkdir()
    config = {
        "model_type": "tiny-remote",
        "auto_map": {
            "AutoConfig": "configuration_tiny.TinyConfig",
            "AutoModelForCausalLM": "modeling_tiny.TinyForCausalLM",
        },
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "configuration_tiny.py").write_text(REMOTE_CONFIG)
    (folder / "modeling_tiny.py").write_text(modeling_source)
    save_file({"weight": torch.zeros(2)}, folder / "model.safetensors")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tokenizer_source / name).read_bytes())
    (folder / "README.md").write_text(CARD, encoding="utf-8")


def test_validate_folder_lists_static_problems(tmp_path, llama):
    folder = tmp_path / "broken"
    modeling = "from .configuration_tiny import TinyConfig\nfrom .layers import Block\nfrom wenlm.modeling import X\n"
    write_remote_code_folder(folder, modeling, llama["folders"]["main"])
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    (folder / "README.md").write_text(f"---\nlibrary_name: transformers\n---\nupload with {TOKEN}\n")
    problems = validate_folder(folder)
    expected = [
        r"^layers\.py is missing",
        r"^modeling_tiny\.py line 3: imports the wenlm package",
        r"^pickled weights pytorch_model\.bin",
        r"^README\.md metadata has no pipeline_tag",
        r"^README\.md line 4 contains what looks like a Hugging Face access token",
    ]
    for pattern in expected:
        assert any(re.search(pattern, problem) for problem in problems), (pattern, problems)
    assert len(problems) == len(expected), problems
    assert all(TOKEN not in problem for problem in problems)


def test_validate_folder_requires_config_weights_tokenizer_and_card(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    problems = validate_folder(tmp_path)
    assert [problem.split(" ")[0] for problem in problems] == ["config.json", "no", "no", "README.md"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        validate_folder(tmp_path / "missing")


def test_validate_folder_loads_in_a_python_without_wenlm(tmp_path, llama):
    # wenlm is importable here (editable install), but the clean load must not see it. The import is spelled so that
    # only running the code can find it.
    assert importlib.util.find_spec("wenlm.training") is not None
    modeling = textwrap.dedent(
        """\
        import importlib
        from .configuration_tiny import TinyConfig
        importlib.import_module("wenlm" + ".modeling")
        """
    )
    write_remote_code_folder(tmp_path / "needs_wenlm", modeling, llama["folders"]["main"])
    problems = validate_folder(tmp_path / "needs_wenlm")
    assert len(problems) == 1, problems
    assert "does not load for people without wenlm installed" in problems[0]
    assert "No module named 'wenlm" in problems[0] and "hidden by the wenlm publish check" in problems[0]


def test_redact_secrets_masks_token_shapes_and_the_configured_token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "plainsecretvalue42")
    text = f"args: hub_token={TOKEN} other=plainsecretvalue42 short=hf_abc name=hf_model"
    redacted = redact_secrets(text)
    assert TOKEN not in redacted and "plainsecretvalue42" not in redacted
    assert redacted == "args: hub_token=hf_*** other=hf_*** short=hf_abc name=hf_model"
    assert redact_secrets("pass=letmein99", extra_secrets=["letmein99"]) == "pass=hf_***"
    assert redact_secrets("no secrets here") == "no secrets here"
    with pytest.raises(TypeError):
        redact_secrets(b"bytes")


# --------------------------------------------------------------------------------------------------------------
# Round trip with wenlm's own model class through trust_remote_code
# --------------------------------------------------------------------------------------------------------------
def save_wenlm_folder(folder: Path, tokenizer) -> dict:
    config_class = WenLMForCausalLM.config_class
    tiny = {**TINY_CONFIG, "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    parameters = inspect.signature(config_class.__init__).parameters
    takes_any = any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values())
    config = config_class(**{key: value for key, value in tiny.items() if takes_any or key in parameters})
    torch.manual_seed(0)
    model = WenLMForCausalLM(config).eval()
    # register_for_auto_class changes class attributes; restore them so other tests see the classes untouched.
    saved = (config_class._auto_class, WenLMForCausalLM._auto_class)
    try:
        config_class.register_for_auto_class()
        WenLMForCausalLM.register_for_auto_class("AutoModelForCausalLM")
        model.save_pretrained(folder)
    finally:
        config_class._auto_class, WenLMForCausalLM._auto_class = saved
    tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text(CARD, encoding="utf-8")
    return reference_outputs(model, tokenizer)


def test_wenlm_model_round_trips_through_remote_code(wenlm, published, downloaded):
    assert "error" not in wenlm, f"building the tiny wenlm folder failed:\n{wenlm.get('error')}"
    pushed = published["results"]["wenlm"]
    # A commit URL means push_folder validated the folder (including its clean load) and pushed it.
    assert isinstance(pushed, str), pushed
    result = downloaded["results"]["wenlm"]
    assert "error" not in result, result.get("error")
    logits = downloaded["tensors"]["wenlm"]
    assert result["model_module"].startswith("transformers_modules")
    assert result["input_ids"] == wenlm["reference"]["input_ids"]
    assert (logits - wenlm["reference"]["logits"]).abs().max().item() <= 1e-5
    assert result["generated_ids"] == wenlm["reference"]["generated_ids"]


def test_hub_token_is_moved_out_of_training_arguments(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        push_to_hub=True,
        hub_token=TOKEN,
        hub_model_id="user/run",
        hub_revision="dev",
        report_to="none",
        use_cpu=True,
    )
    plan = take_hub_push_from_args(args)
    # The Trainer would pickle `args` into training_args.bin: neither the token nor its own hub sync stays there.
    assert args.hub_token is None and args.push_to_hub is False
    assert os.environ["HF_TOKEN"] == TOKEN
    assert (plan.repo_id, plan.revision, plan.private) == ("user/run", "dev", False)
    assert TOKEN not in args.to_json_string()
    plain = TrainingArguments(output_dir=str(tmp_path / "plain"), report_to="none", use_cpu=True)
    assert take_hub_push_from_args(plain) is None
    take_hub_token_from_args(plain)  # no token given: HF_TOKEN is left as it was
    assert os.environ["HF_TOKEN"] == TOKEN


# Issue 14: a Hub that cannot be reached loses nothing and says how to push later.


def closed_port_endpoint() -> str:
    with socket.socket() as probe:  # bound and closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run_wenlm_offline_hub(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(
        HF_ENDPOINT=closed_port_endpoint(),
        HF_HUB_OFFLINE="0",
        HF_TOKEN=TOKEN,
        HF_HOME=str(cwd / "hf_home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return subprocess.run(
        [sys.executable, "-m", "wenlm.training.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_push_to_an_unreachable_hub_names_the_folder_and_the_command_to_retry(tmp_path):
    folder = tmp_path / "my model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    result = run_wenlm_offline_hub(
        ["push", "--model", str(folder), "--repo_id", "user/m", "--validate", "false", "--private", "true"],
        tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and TOKEN not in result.stderr
    assert "ConnectError" in result.stderr and f"kept in {folder}" in result.stderr
    assert f"wenlm push --model '{folder}' --repo_id user/m --private true" in result.stderr
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def test_push_to_hub_after_training_keeps_the_model_when_the_hub_is_down(tmp_path, tiny_base):  # noqa: F811
    data = tmp_path / "rows.jsonl"
    data.write_text('{"prompt": "hi", "response": "hello"}\n' * 4, encoding="utf-8")
    output = tmp_path / "tuned"
    result = run_wenlm_offline_hub(
        [
            "finetune",
            "--model",
            str(tiny_base),
            "--task",
            "sft",
            "--train_files",
            str(data),
            "--output_dir",
            str(output),
            "--max_steps",
            "1",
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
            "--push_to_hub",
            "true",
            "--hub_model_id",
            "user/tuned",
        ],
        tmp_path,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert f"kept in {output}" in result.stderr
    assert f"wenlm push --model {output} --repo_id user/tuned" in result.stderr
    assert (output / "model.safetensors").is_file() and (output / "training_report.json").is_file()


def test_push_failure_message_gives_the_http_status_without_the_token():
    response = types.SimpleNamespace(status_code=503, headers={}, request=None)
    error = HfHubHTTPError(f"503 Server Error: unavailable (token {TOKEN})", response=response)
    message = str(push_failure(error, Path("out/run"), "user/run", private=False, revision="dev"))
    assert "HTTP 503" in message and TOKEN not in message
    assert message.endswith("wenlm push --model out/run --repo_id user/run --revision dev")
