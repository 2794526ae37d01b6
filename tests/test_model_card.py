"""Model cards, `wenlm card` and `wenlm push`, with one real tiny pretraining run published to the fake Hub.

huggingface_hub reads HF_ENDPOINT at import and this test session runs offline, so everything that talks to the
Hub (pretrain --push_to_hub, wenlm push, loading back, wenlm generate) runs in subprocesses pointed at
tests/hub_server.py. Card rendering and the CLI refusals run in-process.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results
from safetensors.torch import load_file, save_file

from wenlm.modeling import WenLMForCausalLM, WenLMForSequenceClassification
from wenlm.training.cards.card import GENERATED_MARKER, render_model_card, write_model_card
from wenlm.training.cli import main as cli_main
from wenlm.training.commands import push
from wenlm.training.hub.validate import HIDE_WENLM, validate_folder
from wenlm.training.scaling.report.markdown import write_report

# 30 random characters after hf_, fresh per session: a hit in a leak check can only come from this run.
TOKEN = "hf_" + secrets.token_hex(15)
REPO_ID = "user/tiny"
PROBE_IDS = [[1, 40, 41, 42, 43, 44, 45, 46]]
PRETRAIN_ARGS = [
    "--train_files",
    "builtin:300",
    "--preset",
    "nano",
    "--vocab_size",
    "400",
    "--block_size",
    "64",
    "--per_device_train_batch_size",
    "4",
    "--max_steps",
    "2",
    "--eval_steps",
    "2",
    "--save_steps",
    "1",
    "--logging_steps",
    "1",
]

# Loads main and dev from the Hub the way a user without wenlm does and saves their logits on PROBE_IDS.
LOAD_BACK_SCRIPT = (
    HIDE_WENLM
    + """
import json, torch
from huggingface_hub import hf_hub_download
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM
logits = {}
for revision in ("main", "dev"):
    model = AutoModelForCausalLM.from_pretrained(sys.argv[1], revision=revision, trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    with torch.no_grad():
        logits[revision] = model(torch.tensor(PROBE_IDS)).logits.contiguous()
save_file(logits, sys.argv[2])
print(json.dumps({"card": open(hf_hub_download(sys.argv[1], "README.md"), encoding="utf-8").read()}))
"""
)


def hub_env(hub, home: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(home),
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
        **extra,
    )
    return env


def run(
    command: list[str], env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command[:3]} failed:\n{(result.stdout + result.stderr)[-6000:]}"
    return result


def model_logits(folder: Path) -> torch.Tensor:
    model = WenLMForCausalLM.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(torch.tensor(PROBE_IDS)).logits


def sections(card_text: str) -> dict[str, str]:
    """Body text under each `## ` heading (up to the next heading of level 1 or 2)."""
    found: dict[str, list[str]] = {}
    current, in_code = None, False
    for line in card_text.splitlines():
        in_code ^= line.startswith("```")  # a "# comment" inside a code block is not a heading
        if not in_code and re.match(r"#{1,2} ", line):
            current = line if line.startswith("## ") else None
            found.setdefault(line, [])
        elif current:
            found[current].append(line)
    return {heading: "\n".join(lines) for heading, lines in found.items() if heading.startswith("## ")}


def assert_complete_card(text: str) -> None:
    for heading, body in sections(text).items():
        assert body.strip(), f"section {heading!r} is empty"
    for leftover in ("{{", "}}", "{%", "%}"):
        assert leftover not in text
    assert not re.search(r"\b(None|nan|NaN|null|undefined)\b", text), re.search(
        r".{40}\b(None|nan|null)\b.{40}", text
    )


def usage_code(text: str) -> str:
    body = sections(text)["## How to use"]
    return re.search(r"```python\n(.*?)```", body, flags=re.DOTALL).group(1)


# --------------------------------------------------------------------------------------------------------------
# One published run shared by the module (the stand-in Hub, `hub`, is in conftest.py)
# --------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def published(hub, tmp_path_factory):
    """`wenlm pretrain ... --push_to_hub --hub_token`, then `wenlm push --revision dev` of changed weights."""
    root = tmp_path_factory.mktemp("published")
    output_dir = root / "pt"
    env = hub_env(hub, root / "hf_home_train")
    assert "HF_TOKEN" not in env  # the token reaches the run only through --hub_token
    wenlm = str(Path(sys.executable).with_name("wenlm"))
    pretrain = run(
        [
            wenlm,
            "pretrain",
            *PRETRAIN_ARGS,
            "--output_dir",
            str(output_dir),
            "--push_to_hub",
            "--hub_model_id",
            REPO_ID,
            "--hub_token",
            TOKEN,
        ],
        env,
        root,
    )

    # The dev branch gets different weights, so loading it can be told apart from loading main.
    dev_dir = root / "dev"
    shutil.copytree(output_dir, dev_dir, ignore=shutil.ignore_patterns("checkpoint-*", "training_args.bin"))
    weights = load_file(dev_dir / "model.safetensors")
    save_file(
        {name: tensor + 0.05 for name, tensor in weights.items()},
        dev_dir / "model.safetensors",
        metadata={"format": "pt"},
    )
    # This time the token comes from --hub_token, not from the environment.
    push = run(
        [
            wenlm,
            "push",
            "--model",
            str(dev_dir),
            "--repo_id",
            REPO_ID,
            "--revision",
            "dev",
            "--validate",
            "false",
            "--commit_message",
            "dev weights",
            "--hub_token",
            TOKEN,
        ],
        hub_env(hub, root / "hf_home_push"),
        root,
    )

    client = root / "client"
    client.mkdir()
    script = f"PROBE_IDS = {PROBE_IDS}\n" + LOAD_BACK_SCRIPT
    load = run(
        [sys.executable, "-c", script, REPO_ID, str(client / "logits.st")],
        hub_env(hub, client / "home"),
        client,
    )
    return {
        "output_dir": output_dir,
        "dev_dir": dev_dir,
        "pretrain": pretrain,
        "push": push,
        "loaded_logits": load_file(client / "logits.st"),
        "hub_card": json.loads(load.stdout.splitlines()[-1])["card"],
        "root": root,
    }


# --------------------------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_hub_token_is_in_no_file_log_or_request_body(hub, published):
    output_dir = published["output_dir"]
    pickles = sorted(output_dir.rglob("training_args.bin"))
    assert len(pickles) == 3  # output folder + checkpoint-1 + checkpoint-2: all of them are searched
    for path in output_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    saved_args = torch.load(pickles[0], weights_only=False)
    assert saved_args.hub_token is None and saved_args.hub_model_id == REPO_ID
    for process in (published["pretrain"], published["push"]):
        assert TOKEN not in process.stdout + process.stderr
    # The token was used: every write carried it, in the Authorization header and nowhere else.
    writes = [request for request in hub.requests if request.method == "POST"]
    assert writes and all(request.headers.get("authorization") == f"Bearer {TOKEN}" for request in writes)
    for request in hub.requests:
        assert TOKEN.encode() not in request.body and TOKEN not in request.path
        assert TOKEN not in json.dumps({k: v for k, v in request.headers.items() if k != "authorization"})
    for commit in hub.repos[REPO_ID].commits.values():
        assert not any(TOKEN.encode() in content for content in commit.files.values())


def test_pretrain_pushes_once_at_the_end_without_training_leftovers(hub, published):
    repo = hub.repos[REPO_ID]
    main_files = repo.resolve("main").files
    assert {
        "model.safetensors",
        "modeling_wenlm.py",
        "config.json",
        "README.md",
        "training_report.json",
    } <= set(main_files)
    assert not any(name.startswith("checkpoint-") or name == "training_args.bin" for name in main_files)
    # The Trainer's own hub sync is off: main has exactly one commit, the validated push after training.
    assert len(hub.requests_to(r"/commit/main$", "POST")) == 1
    assert f"{hub.url}/{REPO_ID}/commit/{repo.branches['main']}" in published["pretrain"].stdout
    # `wenlm push` prints the commit URL of the dev branch.
    assert (
        published["push"].stdout.strip().splitlines()[-1]
        == f"{hub.url}/{REPO_ID}/commit/{repo.branches['dev']}"
    )


def test_model_loads_back_from_the_hub_with_the_same_logits(published):
    loaded = published["loaded_logits"]
    torch.testing.assert_close(loaded["main"], model_logits(published["output_dir"]))
    torch.testing.assert_close(loaded["dev"], model_logits(published["dev_dir"]))
    assert not torch.allclose(loaded["main"], loaded["dev"])


def test_pushed_card_is_rendered_for_the_repo_id(published):
    card = published["hub_card"]
    assert GENERATED_MARKER in card
    assert f'model_id = "{REPO_ID}"' in usage_code(card)
    assert ModelCard(card).data.model_name == "tiny"


@pytest.mark.slow
def test_wenlm_generate_reads_the_dev_revision_from_the_hub(hub, published, tmp_path):
    generate_module = Path(__file__).resolve().parent.parent / "training" / "evaluation" / "generate.py"
    assert generate_module.is_file(), "training/evaluation/generate.py is missing"
    dev_sha = hub.repos[REPO_ID].branches["dev"]
    before = len(hub.requests)
    wenlm = str(Path(sys.executable).with_name("wenlm"))
    result = run(
        [
            wenlm,
            "generate",
            "--model",
            REPO_ID,
            "--revision",
            "dev",
            "--do_sample",
            "false",
            "--max_new_tokens",
            "5",
            "--json",
            "true",
            "--prompts",
            "Once upon a time",
        ],
        hub_env(hub, tmp_path / "home"),
        tmp_path,
    )
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["generated_text"].startswith("Once upon a time") and len(output["generated_text"]) > 16
    weight_downloads = [
        request.path for request in hub.requests[before:] if request.path.endswith("model.safetensors")
    ]
    assert weight_downloads and all(
        f"/resolve/{dev_sha}/" in path or "/resolve/dev/" in path for path in weight_downloads
    ), weight_downloads


def test_push_refuses_an_invalid_folder_with_the_list_of_problems(published, tmp_path, capsys):
    folder = tmp_path / "broken"
    shutil.copytree(published["output_dir"], folder, ignore=shutil.ignore_patterns("checkpoint-*"))
    (folder / "README.md").unlink()
    (folder / "modeling_wenlm.py").unlink()
    assert cli_main(["push", "--model", str(folder), "--repo_id", REPO_ID]) == 2
    error = capsys.readouterr().err
    assert "is not ready to publish" in error
    assert "- README.md model card is missing" in error and "- modeling_wenlm.py is missing" in error
    assert cli_main(["push", "--model", str(folder), "--repo_id", "a/b/c"]) == 2
    assert "expected NAME/MODEL" in capsys.readouterr().err
    assert cli_main(["push", "--model", str(tmp_path / "missing"), "--repo_id", REPO_ID]) == 2
    assert "--model" in capsys.readouterr().err


def test_push_old_spellings_still_work_with_a_warning(tmp_path):
    old = [
        str(tmp_path),
        "--repo-id",
        REPO_ID,
        "--no-validate",
        "--no-card-update",
        "--check-only",
        "--private",
        "--token",
        TOKEN,
        "--commit-message",
        "m",
    ]
    with pytest.warns(FutureWarning) as warned:
        args = push.parse_args(old)
    messages = " ".join(str(warning.message) for warning in warned)
    for new_spelling in (f"--model {tmp_path}", "--validate false", "--update_card false", "--hub_token"):
        assert new_spelling in messages
    assert TOKEN not in messages
    new = [
        "--model",
        str(tmp_path),
        "--repo_id",
        REPO_ID,
        "--validate",
        "false",
        "--update_card",
        "false",
        "--check_only",
        "--private",
        "true",
        "--hub_token",
        TOKEN,
        "--commit_message",
        "m",
    ]
    assert push.parse_args(new) == args
    assert (args.model, args.repo_id, args.validate, args.update_card, args.check_only, args.private) == (
        str(tmp_path),
        REPO_ID,
        False,
        False,
        True,
        True,
    )
    assert args.hub_token == TOKEN and TOKEN not in repr(args)  # options get printed; the token must not be


def test_push_options_file_with_later_flags_winning(tmp_path):
    options = tmp_path / "push.yaml"
    options.write_text(f"model: {tmp_path}\nrepo_id: {REPO_ID}\nvalidate: false\nrevision: main\n")
    args = push.parse_args([str(options), "--revision", "dev"])
    assert (args.model, args.repo_id, args.validate, args.revision, args.update_card) == (
        str(tmp_path),
        REPO_ID,
        False,
        "dev",
        True,
    )


# --------------------------------------------------------------------------------------------------------------
# Cards
# --------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def folders(published, tmp_path_factory):
    """The pretrained run plus a classification and an SFT folder whose reports look like `wenlm finetune`'s."""
    root = tmp_path_factory.mktemp("cards")
    pretrained = root / "pretrained"
    shutil.copytree(published["output_dir"], pretrained, ignore=shutil.ignore_patterns("checkpoint-*"))
    report = json.loads((pretrained / "training_report.json").read_text())

    classifier = root / "classifier"
    labels = {0: "sunny", 1: "rainy"}
    model = WenLMForSequenceClassification.from_pretrained(
        pretrained, num_labels=2, id2label=labels, label2id={v: k for k, v in labels.items()}
    )
    model.save_pretrained(classifier)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(pretrained / name, classifier / name)
    classification_report = finetune_report(report, "classification", model.config.to_dict())
    classification_report["results"].update(eval_accuracy=75.0, eval_macro_f1=70.5)
    classification_report["classification"]["labels"] = list(labels.values())
    (classifier / "training_report.json").write_text(json.dumps(classification_report))

    sft = root / "sft"
    shutil.copytree(pretrained, sft)
    (sft / "README.md").unlink()
    (sft / "training_report.json").write_text(
        json.dumps(finetune_report(report, "sft", report["model"]["config"]))
    )
    return {"pretrained": pretrained, "classifier": classifier, "sft": sft, "report": report}


def finetune_report(pretrain_report: dict, task: str, config: dict) -> dict:
    """The shape `wenlm finetune` writes: the pretraining keys plus base_model, task and the task's row counts."""
    report = copy.deepcopy(pretrain_report)
    report["model"]["config"] = {
        k: v for k, v in config.items() if k not in {"auto_map", "transformers_version"}
    }
    report.update(
        base_model=REPO_ID,
        base_revision="main",
        task=task,
        wenlm_command="wenlm finetune",
        entropy_floor_bpb=None,
        data={
            "sources": [{"spec": "rows.jsonl", "kind": "file", "files": ["rows.jsonl"]}],
            "block_size": 64,
            "scrub_pii": False,
            "rows": {"train": 90, "validation": 10},
        },
        results={"final_train_loss": 1.5, "eval_loss": 1.25, "eval_bpb": None, "eval_bytes": None},
    )
    report[task] = {
        "rows": 100,
        "bad_rows": 2,
        "truncated": 3,
        "skip_bad_rows": True,
        "block_size": 64,
        "train": {"rows": 90},
        "validation": {"rows": 10},
        "bad_row_details": {},
    }
    return report


def test_pretrained_card_is_complete_and_its_metadata_parses(folders):
    folder = folders["pretrained"]
    (folder / "eval_results.json").write_text(
        json.dumps(
            {
                "qa": {
                    "metrics": {"exact_match": 12.5, "f1": 30.25},
                    "data": "builtin:qa",
                    "task_type": "question-answering",
                }
            }
        )
    )
    path = write_model_card(folder, repo_id=REPO_ID)
    text = path.read_text(encoding="utf-8")
    assert_complete_card(text)
    assert GENERATED_MARKER in text
    expected = [
        "## Model",
        "## Tokenizer",
        "## Training data",
        "## Training procedure",
        "## Results",
        "## How to use",
        "## Use it elsewhere",
        "## Intended uses",
        "## Limitations",
    ]
    assert list(sections(text)) == expected
    assert f"wenlm export --model {REPO_ID} --to llama" in text and "trust_remote_code" in text
    report = folders["report"]
    assert (
        f"{report['model']['parameters']:,}" in text and f"{report['data']['documents']['train']:,}" in text
    )
    assert "bits per byte above that floor" in text and "![training curve](loss_curve.png)" in text
    assert "PII scrubbing" in text and "**off**" in text
    for limitation in ("Privacy of training data", "Interpretability", "Generalisation", "Languages"):
        assert limitation in sections(text)["## Limitations"]

    metadata = metadata_load(path)
    assert metadata["language"] == ["zh", "en"] and metadata["license"] == "apache-2.0"
    assert metadata["library_name"] == "transformers" and metadata["pipeline_tag"] == "text-generation"
    assert "base_model" not in metadata and "wenlm" in metadata["tags"]
    model_name, eval_results = model_index_to_eval_results(metadata["model-index"])
    assert model_name == "tiny"
    by_metric = {result.metric_type: result for result in eval_results}
    assert by_metric["loss"].metric_value == pytest.approx(report["results"]["eval_loss"], abs=1e-4)
    assert by_metric["bpb"].metric_value == pytest.approx(report["results"]["eval_bpb"], abs=1e-4)
    assert by_metric["f1"].metric_value == 30.25 and by_metric["f1"].task_type == "question-answering"
    assert "`wenlm evaluate --task qa` on `builtin:qa`: exact_match 12.5, f1 30.25." in text
    card = ModelCard.load(path)
    assert len(card.data.eval_results) == len(eval_results)


def test_lora_targets_the_card_names_are_the_models_modules(folders):
    peft = pytest.importorskip("peft")
    text = render_model_card(folders["pretrained"], repo_id=REPO_ID).content
    targets = json.loads(re.search(r"target_modules=(\[[^\]]*\])", text).group(1))
    model = WenLMForCausalLM.from_pretrained(folders["pretrained"])
    lora = peft.get_peft_model(model, peft.LoraConfig(task_type="CAUSAL_LM", target_modules=targets, r=2))
    adapted = {
        name.split(".lora_A")[0].split(".")[-1] for name, _ in lora.named_parameters() if "lora_A" in name
    }
    assert adapted == set(targets)  # every named module exists in every layer kind, none is missing


def test_hub_datasets_and_pii_counts_come_from_the_report(folders, tmp_path):
    folder = tmp_path / "hub-data"
    folder.mkdir()
    report = copy.deepcopy(folders["report"])
    report["data"].update(
        sources=[{"spec": "hub:someone/corpus:zh", "kind": "hub", "files": []}],
        scrub_pii=True,
        pii={"email": 3, "phone": 1},
    )
    report["entropy_floor_bpb"] = None
    report["tokenizer"]["stats_by_language"] = {"en": report["tokenizer"]["stats_by_language"]["en"]}
    (folder / "training_report.json").write_text(json.dumps(report))
    card = render_model_card(folder, repo_id=REPO_ID)
    assert card.data.datasets == ["someone/corpus"] and card.data.language == ["en"]
    assert "**on**" in card.text and "3 email, 1 phone" in card.text
    assert "entropy" not in card.text and "built-in" not in card.text
    assert_complete_card(str(card))


@pytest.mark.parametrize(
    "task, pipeline_tag", [("classification", "text-classification"), ("sft", "text-generation")]
)
def test_finetuned_card_names_its_base_model_and_pipeline(folders, task, pipeline_tag):
    folder = folders["classifier" if task == "classification" else "sft"]
    path = write_model_card(folder)
    text = path.read_text(encoding="utf-8")
    assert_complete_card(text)
    metadata = metadata_load(path)
    assert metadata["base_model"] == REPO_ID and metadata["pipeline_tag"] == pipeline_tag
    assert "## Fine-tuning data" in sections(text)
    assert (
        "| rows truncated to the context length | 3 |" in text and "| rows skipped as malformed | 2 |" in text
    )
    _, eval_results = model_index_to_eval_results(metadata["model-index"])
    assert {result.task_type for result in eval_results} == {pipeline_tag}
    code = usage_code(text)
    if task == "classification":
        assert "AutoModelForSequenceClassification" in code and 'pipeline("text-classification"' in code
        assert "Classes: sunny, rainy." in text and {"accuracy", "macro_f1"} <= {
            r.metric_type for r in eval_results
        }
    else:
        assert "apply_chat_template" in code and "model.generate(" in code and "sft" in metadata["tags"]


@pytest.mark.slow
def test_how_to_use_code_runs_as_written(folders, tmp_path):
    """Each card's code block, rendered for a local folder, runs in a Python where wenlm is not importable."""
    blocks = []
    for name in ("pretrained", "classifier", "sft"):
        text = render_model_card(folders[name], repo_id=str(folders[name])).text
        blocks.append(usage_code(text))
    runner = HIDE_WENLM + textwrap.dedent("""
        import json
        for block in json.loads(sys.argv[1]):
            exec(compile(block, "<card>", "exec"), {"__name__": "__main__"})
            print("BLOCK OK", flush=True)
    """)
    env = {**os.environ, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    result = run([sys.executable, "-c", runner, json.dumps(blocks)], env, tmp_path)
    assert result.stdout.count("BLOCK OK") == 3
    # The classifier block prints the pipeline's answer: one of the two labels with a score.
    assert re.search(r"'label': '(sunny|rainy)', 'score': 0\.\d+", result.stdout), result.stdout


def test_missing_required_fields_and_bad_task_are_named(folders, tmp_path):
    report = copy.deepcopy(folders["report"])
    del report["training"]["hyperparameters"]
    del report["data"]["sources"]
    (tmp_path / "training_report.json").write_text(json.dumps(report))
    with pytest.raises(ValueError, match=r"lacks training\.hyperparameters, data\.sources"):
        render_model_card(tmp_path)
    report = finetune_report(folders["report"], "sft", folders["report"]["model"]["config"])
    report["task"] = "translation"
    (tmp_path / "training_report.json").write_text(json.dumps(report))
    with pytest.raises(ValueError, match="task 'translation' is unknown"):
        render_model_card(tmp_path)
    (tmp_path / "training_report.json").unlink()
    with pytest.raises(FileNotFoundError, match="training_report.json is missing"):
        render_model_card(tmp_path)


def test_card_command_never_destroys_a_hand_written_card(folders, tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(folders["pretrained"], folder)
    generated = (folder / "README.md").read_text(encoding="utf-8")
    (folder / "eval_results.json").unlink(missing_ok=True)
    # A wenlm card is re-rendered in place (here: without the evaluation it had before).
    assert cli_main(["card", "--model", str(folder), "--repo_id", "someone/renamed"]) == 0
    rerendered = (folder / "README.md").read_text(encoding="utf-8")
    assert (
        rerendered != generated
        and 'model_id = "someone/renamed"' in rerendered
        and "wenlm evaluate" not in rerendered
    )

    hand_written = "---\nlicense: mit\n---\n# My model\n\nI wrote this myself.\n"
    (folder / "README.md").write_text(hand_written, encoding="utf-8")
    assert cli_main(["card", "--model", str(folder)]) == 2
    assert "was not generated by wenlm" in capsys.readouterr().err
    assert (folder / "README.md").read_text(encoding="utf-8") == hand_written

    assert cli_main(["card", "--model", str(folder), "--backup", "true"]) == 0
    assert (folder / "README.md.bak").read_text(encoding="utf-8") == hand_written
    assert GENERATED_MARKER in (folder / "README.md").read_text(encoding="utf-8")
    # A second hand-written card gets a backup of its own instead of replacing the first one.
    (folder / "README.md").write_text(hand_written + "v2\n", encoding="utf-8")
    # The old spelling: the folder as the first argument (and a bare --backup, which still means true).
    with pytest.warns(FutureWarning, match=f"use --model {re.escape(str(folder))}"):
        assert cli_main(["card", str(folder), "--repo-id", "someone/renamed", "--backup"]) == 0
    assert (folder / "README.md.bak").read_text(encoding="utf-8") == hand_written
    assert (folder / "README.md.bak1").read_text(encoding="utf-8") == hand_written + "v2\n"
    assert (
        yaml.safe_load((folder / "README.md").read_text(encoding="utf-8").split("---")[1])["license"]
        == "apache-2.0"
    )


@pytest.mark.slow
def test_classifier_folder_validates_through_its_own_auto_class(folders):
    """The publish check loads a classifier with AutoModelForSequenceClassification, in a Python without wenlm."""
    write_model_card(folders["classifier"], repo_id="user/tiny-classifier")
    assert validate_folder(folders["classifier"]) == []
    config_path = folders["classifier"] / "config.json"
    config = json.loads(config_path.read_text())
    broken = folders["classifier"].parent / "classifier-without-auto-class"
    shutil.copytree(folders["classifier"], broken)
    del config["auto_map"]["AutoModelForSequenceClassification"]
    (broken / "config.json").write_text(json.dumps(config))
    assert validate_folder(broken) == ["config.json auto_map has no AutoModelForSequenceClassification entry"]


def test_card_includes_a_scaling_study_table_and_plot(folders, tmp_path):
    study = tmp_path / "study"
    records = [
        {
            "model": "nano",
            "n_params": 1000,
            "n_params_total": 2000,
            "tokens": tokens,
            "flops": 6 * 1000 * tokens,
            "train_loss": 2.0 + 30 / tokens**0.3,
            "val_loss": 2.0 + 30 / tokens**0.3,
            "val_bpb": 0.5 + 8 / tokens**0.3,
            "wall_time_s": 1.0,
            "tokens_per_s": 1000.0,
        }
        for tokens in (1e4, 3e4, 1e5, 3e5)
    ]
    write_report(study, records, bootstrap=20)
    folder = tmp_path / "model"
    folder.mkdir()
    report = copy.deepcopy(folders["report"])
    report["scaling_study"] = str(study)
    (folder / "training_report.json").write_text(json.dumps(report))
    card = render_model_card(folder)
    section = next(body for heading, body in sections(card.text).items() if "Data-scale study" in heading)
    assert section.count("| nano | 1,000 |") == 4
    assert "![data-scale study](scaling.png)" in section
    assert (folder / "scaling.png").read_bytes()[:4] == b"\x89PNG"
