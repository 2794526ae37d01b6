"""Whether a saved model folder loads for strangers: the checks `wenlm push` runs before uploading.

A folder is publishable when `AutoModelForCausalLM.from_pretrained(repo, trust_remote_code=True)` works for someone
who has only `transformers` installed: the remote code files must travel with the weights, the weights must be
safetensors, the tokenizer and a model card must be there. `validate_folder` checks this, including a real load in a
Python process where `wenlm` cannot be imported (`HIDE_WENLM`, which the tests' Hub clients use too).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

from wenlm.training.utils.secrets import HF_TOKEN_PATTERN, current_tokens, redact_secrets

# What a training output folder holds besides the model: intermediate checkpoints, TensorBoard runs, optimizer and
# RNG states, `training_args.bin` (a pickle of TrainingArguments, which can contain `hub_token`) and the run's folder lock.
PUSH_IGNORE_PATTERNS = [
    "checkpoints/",
    "runs/",
    "checkpoint-*/",
    "*.pt",
    "*.pth",
    "training_args.bin",
    ".wenlm.lock",
]

REQUIRED_CARD_FIELDS = ("library_name", "pipeline_tag")
REQUIRED_AUTO_CLASSES = ("AutoConfig",)
# The Auto class a model folder must map, chosen by the architecture its config.json names.
ARCHITECTURE_AUTO_CLASSES = (
    ("ForSequenceClassification", "AutoModelForSequenceClassification"),
    ("ForCausalLM", "AutoModelForCausalLM"),
)
TEXT_SUFFIXES = {".md", ".json", ".py", ".txt", ".yaml", ".yml", ".jinja", ".cfg", ".toml"}
MAX_SCANNED_TEXT_BYTES = 20 * 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parents[2]

# Python source that makes the interpreter running it behave as if wenlm were not installed: every `wenlm` module
# is refused (editable install or not) and the repository's own folders leave sys.path, so a model can only load
# through the remote code saved with it. Prepend it to a script run with `python -c`; it imports `sys`.
HIDE_WENLM = r"""
import importlib.abc, sys

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
    if not p.startswith("__editable__") and not (p.startswith(REPO_ROOT) and "site-packages" not in p)
]
try:
    import wenlm.modeling  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("internal error: wenlm is still importable after hiding it")
""".replace("REPO_ROOT", repr(str(REPO_ROOT)))

# Runs in the clean child process: argv[1] is the folder, argv[2] the Auto class that loads its model.
_CLEAN_LOAD_SCRIPT = (
    HIDE_WENLM
    + r"""
import json
import torch
import transformers
from transformers import AutoTokenizer

folder = sys.argv[1]
auto_class = getattr(transformers, sys.argv[2])
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
)


def uploadable_files(folder: Path) -> list[str]:
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


def _import_problem(path: Path, node: ast.AST) -> str | None:
    """What is wrong with one absolute import of a remote code file (it must not need wenlm), or None."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
        names = [node.module or ""]
    else:
        return None
    if any(name == "wenlm" or name.startswith("wenlm.") for name in names):
        return (
            f"{path.name} line {node.lineno}: imports the wenlm package, which people loading the model from"
            " the Hub do not have; use relative imports of files in this folder"
        )
    return None


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
        if not (isinstance(node, ast.ImportFrom) and node.level > 0):
            problem = _import_problem(path, node)
            if problem:
                problems.append(problem)
        elif node.level > 1 or node.module is None:
            problems.append(
                f"{path.name} line {node.lineno}: transformers only ships files named by `from .module import"
                " name` next to the config; rewrite this import in that form"
            )
        elif "." in node.module:
            problems.append(
                f"{path.name} line {node.lineno}: relative import of `.{node.module}` needs a subpackage, which"
                " transformers does not copy; keep remote code files flat"
            )
        else:
            _check_remote_code_file(folder, node.module, seen, problems)


def _load_required(
    path: Path, missing: str, load: Callable[[Path], Any], errors: tuple, unreadable: str, problems: list[str]
) -> Any | None:
    """`load(path)`, or None after adding `missing` (no file) or `unreadable` (formatted with the error)."""
    if not path.is_file():
        problems.append(missing)
        return None
    try:
        return load(path)
    except errors as error:
        problems.append(unreadable.format(error=error))
        return None


def _check_config(folder: Path, problems: list[str]) -> None:
    config = _load_required(
        folder / "config.json",
        "config.json is missing: save the model with save_pretrained()",
        lambda path: json.loads(path.read_text(encoding="utf-8")),
        (json.JSONDecodeError, UnicodeDecodeError),
        "config.json is not valid JSON ({error})",
        problems,
    )
    if config is None:
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


def _card_metadata(path: Path) -> dict:
    metadata = metadata_load(path)
    ModelCard.load(path)
    return metadata or {}


def _check_model_card(folder: Path, problems: list[str]) -> None:
    metadata = _load_required(
        folder / "README.md",
        "README.md model card is missing",
        _card_metadata,
        # yaml errors, bad encodings, non-dict metadata: all mean an unusable card
        (Exception,),
        "README.md metadata does not parse: {error}",
        problems,
    )
    if metadata is None:
        return
    if not metadata:
        problems.append("README.md has no YAML metadata block (--- ... --- at the top)")
        return
    for field_name in REQUIRED_CARD_FIELDS:
        if not metadata.get(field_name):
            problems.append(f"README.md metadata has no {field_name} (e.g. library_name: transformers)")


def _check_no_tokens(folder: Path, files: list[str], problems: list[str]) -> None:
    secrets = current_tokens()
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
        command = [
            sys.executable,
            "-I",
            "-c",
            _CLEAN_LOAD_SCRIPT,
            str(folder.resolve()),
            model_auto_class(config),
        ]
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
    _check_no_tokens(folder, uploadable_files(folder), problems)
    if not problems and load_check:
        load_problem = _clean_load_problem(folder, load_timeout)
        if load_problem:
            problems.append(load_problem)
    return problems


def problems_message(folder: Path, problems: list[str], target: str = "") -> str:
    """The error for a folder that failed `validate_folder`: one bullet per problem."""
    bullets = "\n".join(f"- {problem}" for problem in problems)
    return f"{folder} is not ready to publish{f' to {target}' if target else ''}:\n{bullets}"
