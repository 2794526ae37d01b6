"""A wenlm model folder: the names of the files wenlm writes into it beside the model, and checks on a `--model`
given as a local folder, made before transformers loads it, so that a missing, damaged or foreign folder is named
in a sentence (transformers would report a failed Hub connection, a JSONDecodeError or a misleading tokenizer error
instead)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WENLM_MODEL_TYPE = "wenlm"
# Written beside the model by training (report, log history, loss curve), `wenlm evaluate` (results) and the
# model card renderer (README.md); read back by the card, `wenlm audit` and fine-tuning (the base model's report).
TRAINING_REPORT = "training_report.json"
LOG_HISTORY_FILE = "log_history.json"
LOSS_CURVE_FILE = "loss_curve.png"
EVAL_RESULTS = "eval_results.json"
CARD_FILE = "README.md"
# A Hub id is "name" or "owner/name"; anything else that does not exist on disk can only be a mistyped folder.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def looks_local(model: str) -> bool:
    """True when ``model`` can only be a path on disk (never a Hub id)."""
    return os.path.isabs(model) or model.startswith((".", "~")) or not HUB_ID.match(model)


def check_model_folder(model: str, option: str = "--model") -> dict | None:
    """The parsed config.json of a local model folder, after checking it is one; None for a Hub id."""
    path = Path(model).expanduser()
    if not path.exists():
        if looks_local(model):
            raise FileNotFoundError(
                f"{option} {model}: no such folder. Give the folder a wenlm command wrote "
                "(it holds config.json and model.safetensors) or a Hub id such as owner/name."
            )
        return None  # a Hub id: transformers downloads it, or names the Hub error
    if not path.is_dir():
        raise NotADirectoryError(
            f"{option} {model} is a file; give the model's folder (the one holding config.json) instead."
        )
    config_path = path / "config.json"
    if not config_path.is_file():
        checkpoints = sorted(path.glob("checkpoint-*"))
        hint = (
            f" It holds checkpoints; give one of them (e.g. {checkpoints[-1]}) or wait for the run to finish."
            if checkpoints
            else ""
        )
        raise FileNotFoundError(
            f"{option} {model} is not a model folder: it has no config.json.{hint} Give the "
            "output folder of `wenlm pretrain` or `wenlm finetune`, or a Hub id."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = (
            f" (line {error.lineno}, column {error.colno}: {error.msg})"
            if isinstance(error, json.JSONDecodeError)
            else " (not UTF-8 text)"
        )
        raise ValueError(
            f"{config_path} is not valid JSON{where}: the model folder {model} is damaged. Copy it "
            "again from where it came from, or re-run the training that wrote it."
        ) from None
    if not isinstance(config, dict):
        raise ValueError(
            f"{config_path} holds a JSON {type(config).__name__}, not an object: the model folder "
            f"{model} is damaged. Copy it again, or re-run the training that wrote it."
        )
    return config


def check_wenlm_model_type(model_type: str | None, model: str, command: str) -> None:
    """Refuse a model that is not a wenlm one, for a command that works only on those."""
    if model_type != WENLM_MODEL_TYPE:
        raise ValueError(
            f"--model {model} is a {model_type!r} model; `wenlm {command}` trains wenlm models "
            f"(model_type {WENLM_MODEL_TYPE!r}). Give it a folder written by `wenlm pretrain` or "
            "`wenlm finetune`, or the Hub id of a wenlm model."
        )


@contextmanager
def hub_errors_named(model: str, option: str = "--model") -> Iterator[None]:
    """Turn the OSError of a failed Hub download into a sentence saying that no local folder of that name exists
    either (a name such as runs/model may be a mistyped relative folder as well as a Hub id)."""
    try:
        yield
    except OSError as error:
        if Path(model).expanduser().exists():
            raise
        raise ValueError(
            f"{option} {model}: there is no such folder here ({os.getcwd()}), and loading it from the "
            f"Hub failed: {error} If you meant a local folder, check its path."
        ) from None
