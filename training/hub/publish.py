"""Publish a saved wenlm model folder to the Hugging Face Hub, after checking that strangers can load it.

A folder is publishable when `AutoModelForCausalLM.from_pretrained(repo, trust_remote_code=True)` works for someone
who has only `transformers` installed: the remote code files must travel with the weights, the weights must be
safetensors, the tokenizer and a model card must be there. `validate_folder` checks this, including a real load in a
Python process where `wenlm` cannot be imported; `push_folder` refuses to upload a folder that fails it.

Tokens come from the standard places (`HF_TOKEN`, `hf auth login`) unless passed explicitly, and are never logged.
`redact_secrets` masks them in any text that is about to be written or shown.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# What a training output folder holds besides the model: intermediate checkpoints, TensorBoard runs, optimizer and
# RNG states, and `training_args.bin` (a pickle of TrainingArguments, which can contain `hub_token`).
PUSH_IGNORE_PATTERNS = ["checkpoints/", "runs/", "checkpoint-*/", "*.pt", "*.pth", "training_args.bin"]

HF_TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{20,}")
REDACTED = "hf_***"
# Shorter "tokens" are not masked: replacing every occurrence of a short string would corrupt unrelated text.
MIN_SECRET_LENGTH = 8
REQUIRED_CARD_FIELDS = ("library_name", "pipeline_tag")
REQUIRED_AUTO_CLASSES = ("AutoConfig",)
# The Auto class a model folder must map, chosen by the architecture its config.json names.
ARCHITECTURE_AUTO_CLASSES = (
    ("ForSequenceClassification", "AutoModelForSequenceClassification"),
    ("ForCausalLM", "AutoModelForCausalLM"),
)
TEXT_SUFFIXES = {".md", ".json", ".py", ".txt", ".yaml", ".yml", ".jinja", ".cfg", ".toml"}
MAX_SCANNED_TEXT_BYTES = 20 * 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------------------------
def _current_tokens() -> list[str]:
    """Token values this process could authenticate with, read without any network call."""
    from huggingface_hub import constants

    tokens = [os.environ.get(name, "") for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")]
    for token_file in {constants.HF_TOKEN_PATH, os.path.join(constants.HF_HOME, "token")}:
        try:
            tokens.append(Path(token_file).read_text(encoding="utf-8").strip())
        except OSError:
            pass
    return [token.strip() for token in tokens if len(token.strip()) >= MIN_SECRET_LENGTH]


def redact_secrets(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Mask Hugging Face access tokens in `text`.

    Masks anything shaped like an HF token (`hf_` + 20 or more letters/digits), the token this process is configured
    with (HF_TOKEN, HUGGING_FACE_HUB_TOKEN, the `hf auth login` token file) and any `extra_secrets`, whatever their
    shape. Use it on everything that gets saved or printed: reports, saved training arguments, logs.
    """
    if not isinstance(text, str):
        raise TypeError(f"redact_secrets expects a str, got {type(text).__name__}")
    secrets = sorted(
        {secret for secret in [*_current_tokens(), *extra_secrets] if len(secret) >= MIN_SECRET_LENGTH},
        key=len,
        reverse=True,  # longest first, so a token containing another secret is masked whole
    )
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return HF_TOKEN_PATTERN.sub(REDACTED, text)


def take_hub_token_from_args(training_args) -> None:
    """Moves `--hub_token` out of TrainingArguments into this process's HF_TOKEN environment variable.

    The Trainer pickles its TrainingArguments into training_args.bin (in the output folder and every checkpoint);
    a token left in them would be saved in plain bytes. huggingface_hub reads HF_TOKEN on every call, so the token
    still authenticates this process, and only this process (the variable is not written anywhere).
    """
    token = getattr(training_args, "hub_token", None)
    if token:
        os.environ["HF_TOKEN"] = token
        training_args.hub_token = None


@dataclass(frozen=True)
class HubPushPlan:
    """Where a training run publishes its final folder (from --push_to_hub, --hub_model_id, ...)."""

    repo_id: str
    private: bool = False
    revision: str | None = None

    def push(self, folder: str | os.PathLike) -> str:
        return push_folder(folder, self.repo_id, private=self.private, revision=self.revision)


def take_hub_push_from_args(training_args) -> HubPushPlan | None:
    """Takes the Hub settings out of TrainingArguments so that only wenlm publishes, once, at the end.

    Moves the token out (see `take_hub_token_from_args`) and turns the Trainer's own hub sync off: that sync creates
    the repo before training and uploads every checkpoint without validation, including training_args.bin and a
    Trainer-written card. Returns where to push the finished folder with `HubPushPlan.push`, or None without
    --push_to_hub.
    """
    take_hub_token_from_args(training_args)
    if not training_args.push_to_hub:
        return None
    plan = HubPushPlan(
        repo_id=training_args.hub_model_id or Path(training_args.output_dir).name,
        private=bool(getattr(training_args, "hub_private_repo", False)),
        revision=getattr(training_args, "hub_revision", None),
    )
    training_args.push_to_hub = False
    return plan


# --------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------
def _uploadable_files(folder: Path) -> list[str]:
    from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

    relative = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    return list(filter_repo_objects(relative, ignore_patterns=PUSH_IGNORE_PATTERNS + DEFAULT_IGNORE_PATTERNS))


def model_auto_class(config: dict) -> str:
    """The Auto class that loads the model a config.json describes (causal LM unless it is a classifier)."""
    for architecture in config.get("architectures") or []:
        for suffix, auto_class in ARCHITECTURE_AUTO_CLASSES:
            if str(architecture).endswith(suffix):
                return auto_class
    return "AutoModelForCausalLM"


def _auto_map_modules(auto_map: dict) -> dict[str, str]:
    """Maps each module auto_map points to in this folder (e.g. `modeling_wenlm`) to the auto class naming it."""
    modules: dict[str, str] = {}
    for auto_class, references in auto_map.items():
        for reference in references if isinstance(references, list) else [references]:
            # "other/repo--module.Class" points to code in another repo: nothing to check in this folder.
            if isinstance(reference, str) and "--" not in reference and "." in reference:
                modules.setdefault(reference.rsplit(".", 1)[0], auto_class)
    return modules


def _check_remote_code_file(folder: Path, module: str, seen: set[str], problems: list[str]) -> None:
    """Checks `module`.py exists in the folder, then follows its relative imports the way transformers does."""
    if module in seen:
        return
    seen.add(module)
    path = folder / f"{module}.py"
    if not path.is_file():
        problems.append(f"{path.name} is missing: remote code in this folder needs it")
        return
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as error:
        problems.append(f"{path.name} line {error.lineno}: syntax error ({error.msg})")
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 1 or node.module is None:
                problems.append(
                    f"{path.name} line {node.lineno}: transformers only ships files named by `from wenlm.training.module import"
                    " name` next to the config; rewrite this import in that form"
                )
            elif "." in node.module:
                problems.append(
                    f"{path.name} line {node.lineno}: relative import of `.{node.module}` needs a subpackage, which"
                    " transformers does not copy; keep remote code files flat"
                )
            else:
                _check_remote_code_file(folder, node.module, seen, problems)
            continue
        else:
            continue
        if any(name == "wenlm" or name.startswith("wenlm.") for name in names):
            problems.append(
                f"{path.name} line {node.lineno}: imports the wenlm package, which people loading the model from"
                " the Hub do not have; use relative imports of files in this folder"
            )


def _check_config(folder: Path, problems: list[str]) -> None:
    config_path = folder / "config.json"
    if not config_path.is_file():
        problems.append("config.json is missing: save the model with save_pretrained()")
        return
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        problems.append(f"config.json is not valid JSON ({error})")
        return
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    if not isinstance(auto_map, dict):
        problems.append(
            "config.json has no auto_map, so AutoModelForCausalLM cannot find the remote code; call"
            " register_for_auto_class() on the config and model classes before save_pretrained()"
        )
        return
    for auto_class in (*REQUIRED_AUTO_CLASSES, model_auto_class(config)):
        if auto_class not in auto_map:
            problems.append(f"config.json auto_map has no {auto_class} entry")
    seen: set[str] = set()
    for module in _auto_map_modules(auto_map):
        _check_remote_code_file(folder, module, seen, problems)


def _check_weights_and_tokenizer(folder: Path, problems: list[str]) -> None:
    top_level = {path.name for path in folder.iterdir() if path.is_file()}
    if not any(name.endswith(".safetensors") for name in top_level):
        problems.append("no *.safetensors weights: save with save_pretrained(safe_serialization=True)")
    pickled = sorted(name for name in top_level if name.endswith(".bin") and name != "training_args.bin")
    if pickled:
        problems.append(
            f"pickled weights {', '.join(pickled)} would be published: delete them, keep safetensors only"
        )
    index_path = folder / "model.safetensors.index.json"
    if index_path.is_file():
        try:
            shards = set(json.loads(index_path.read_text(encoding="utf-8"))["weight_map"].values())
        except (json.JSONDecodeError, KeyError, AttributeError) as error:
            problems.append(f"model.safetensors.index.json is unreadable ({error!r})")
        else:
            for shard in sorted(shards - top_level):
                problems.append(f"weight shard {shard} listed in model.safetensors.index.json is missing")
    if not ({"tokenizer.json", "tokenizer_config.json"} & top_level):
        problems.append(
            "no tokenizer files (tokenizer.json / tokenizer_config.json): save the tokenizer into the folder"
        )


def _check_model_card(folder: Path, problems: list[str]) -> None:
    from huggingface_hub import ModelCard, metadata_load

    card_path = folder / "README.md"
    if not card_path.is_file():
        problems.append("README.md model card is missing")
        return
    try:
        metadata = metadata_load(card_path)
        ModelCard.load(card_path)
    except Exception as error:  # yaml errors, bad encodings, non-dict metadata: all mean an unusable card
        problems.append(f"README.md metadata does not parse: {error}")
        return
    if not metadata:
        problems.append("README.md has no YAML metadata block (--- ... --- at the top)")
        return
    for field_name in REQUIRED_CARD_FIELDS:
        if not metadata.get(field_name):
            problems.append(f"README.md metadata has no {field_name} (e.g. library_name: transformers)")


def _check_no_tokens(folder: Path, files: list[str], problems: list[str]) -> None:
    secrets = _current_tokens()
    for relative in files:
        path = folder / relative
        if path.suffix not in TEXT_SUFFIXES or path.stat().st_size > MAX_SCANNED_TEXT_BYTES:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for line_number, line in enumerate(text.splitlines(), start=1):
            if HF_TOKEN_PATTERN.search(line) or any(secret in line for secret in secrets):
                problems.append(
                    f"{relative} line {line_number} contains what looks like a Hugging Face access token; remove it"
                )
                break


# Runs in the clean child process. It hides every `wenlm` module (editable install or not) and the repository's
# own folders, so the load below can only succeed through the remote code saved in the folder.
_CLEAN_LOAD_SCRIPT = r"""
import importlib.abc, json, sys

repo_root, folder = sys.argv[1], sys.argv[2]

class HideWenlm(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "wenlm" or name.startswith("wenlm."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the wenlm publish check)", name=name)
        return None

sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.meta_path.insert(0, HideWenlm())
# Drop the checkout itself from the path, but keep a virtual environment that happens to live inside it.
sys.path[:] = [
    p for p in sys.path
    if not p.startswith("__editable__") and not (p.startswith(repo_root) and "site-packages" not in p)
]
try:
    import wenlm.modeling  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("internal error: wenlm is still importable in the clean load check")

import torch
import transformers
from transformers import AutoTokenizer

auto_class = getattr(transformers, sys.argv[3])
tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
model = auto_class.from_pretrained(folder, trust_remote_code=True)
model_class = type(model)
if not model_class.__module__.startswith("transformers_modules"):
    raise SystemExit(
        f"loaded {model_class.__module__}.{model_class.__name__}, a class built into transformers, "
        "not the remote code shipped in the folder"
    )
input_ids = tokenizer("Hello 你好", return_tensors="pt").input_ids
if input_ids.numel() == 0:
    raise SystemExit("the tokenizer encodes 'Hello 你好' to no tokens")
with torch.no_grad():
    logits = model(input_ids).logits
if not torch.isfinite(logits).all():
    raise SystemExit("the model's logits contain NaN or inf")
print(json.dumps({"model_class": model_class.__name__, "logits_shape": list(logits.shape)}))
"""


def _clean_load_problem(folder: Path, timeout: float) -> str | None:
    """Loads the folder in a fresh interpreter without wenlm; returns the child's error text, or None if it worked."""
    with tempfile.TemporaryDirectory(prefix="wenlm-load-check-") as scratch:
        env = {
            **os.environ,
            # A private cache so transformers copies the folder's code afresh instead of reusing an old copy.
            "HF_HOME": scratch,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_VERBOSITY": "error",
            "TOKENIZERS_PARALLELISM": "false",
        }
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        command = [sys.executable, "-I", "-c", _CLEAN_LOAD_SCRIPT, str(REPO_ROOT), str(folder.resolve()),
                   model_auto_class(config)]
        try:
            result = subprocess.run(
                command, cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return f"loading the folder in a clean Python process took more than {timeout:.0f} s"
    if result.returncode == 0:
        return None
    output = (result.stderr.strip() or result.stdout.strip())[-3000:]
    return (
        "the folder does not load for people without wenlm installed "
        "(AutoModel.../AutoTokenizer.from_pretrained(folder, trust_remote_code=True) in a clean Python):\n"
        + redact_secrets(output)
    )


def validate_folder(
    folder: str | os.PathLike, *, load_check: bool = True, load_timeout: float = 600
) -> list[str]:
    """Lists what keeps `folder` from being a loadable Hub model repo; an empty list means it is ready.

    Checks config.json + auto_map (AutoConfig and the Auto class of the saved architecture: AutoModelForCausalLM, or
    AutoModelForSequenceClassification for a classifier) and every remote code file it needs, safetensors
    weights (no pickled .bin), tokenizer files, a README.md card with parseable YAML metadata naming library_name and
    pipeline_tag, and no access token in text files. Then, if all that passed and `load_check` is true, loads the
    folder with that Auto class and AutoTokenizer in a separate Python process where `wenlm` is not importable (the
    load takes seconds, and would only repeat the problems already found when there are some).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist (or is not a directory)")
    problems: list[str] = []
    _check_config(folder, problems)
    _check_weights_and_tokenizer(folder, problems)
    _check_model_card(folder, problems)
    _check_no_tokens(folder, _uploadable_files(folder), problems)
    if not problems and load_check:
        load_problem = _clean_load_problem(folder, load_timeout)
        if load_problem:
            problems.append(load_problem)
    return problems


# --------------------------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------------------------
def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    validate: bool = True,
    update_card: bool = True,
) -> str:
    """Uploads a saved model folder to the Hub and returns the commit URL.

    Validates first (see `validate_folder`) and raises ValueError listing every problem. Creates the repo if needed
    (`private` only applies to a new repo), creates the branch `revision` from main if it does not exist, and
    uploads everything except checkpoints/, runs/, checkpoint-*/, optimizer/RNG states (*.pt, *.pth) and
    training_args.bin. `token` defaults to HF_TOKEN or the `hf auth login` token.

    With `update_card`, a README.md that wenlm generated (see `model_card.is_generated_card`) is re-rendered with the
    full repo id, so its usage code loads from the Hub; a hand-written card is uploaded as it is.
    """
    from huggingface_hub import HfApi, get_token

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist (or is not a directory)")
    if validate:
        problems = validate_folder(folder)
        if problems:
            bullets = "\n".join(f"- {problem}" for problem in problems)
            raise ValueError(f"{folder} is not ready to publish to {repo_id}:\n{bullets}")
    if not (token or get_token()):
        raise ValueError(
            "no Hugging Face token found: set the HF_TOKEN environment variable, run `hf auth login`, "
            "or pass token=..."
        )
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    if update_card:
        _refresh_generated_card(folder, repo_id)
    if revision is not None and revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    message = redact_secrets(
        commit_message or f"Upload {folder.name} with wenlm", extra_secrets=[token or ""]
    )
    logger.info("uploading %s to %s (revision %s)", folder, repo_id, revision or "main")
    commit = api.upload_folder(
        folder_path=folder,
        repo_id=repo_id,
        revision=revision,
        commit_message=message,
        ignore_patterns=list(PUSH_IGNORE_PATTERNS),
    )
    logger.info("pushed %s", commit.commit_url)
    return commit.commit_url


def _refresh_generated_card(folder: Path, repo_id: str) -> None:
    from wenlm.training.hub.card import CARD_FILE, TRAINING_REPORT, is_generated_card, write_model_card

    if (folder / TRAINING_REPORT).is_file() and is_generated_card(folder / CARD_FILE):
        write_model_card(folder, repo_id=repo_id)
