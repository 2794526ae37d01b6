"""The study folder: study.json (settings, data report, runs), one JSON file per finished cell, and the
study's tokenizer. A rerun resumes from it; settings that would make new cells incomparable are refused.

    study_dir/study.json           settings the cells depend on, the data report, one entry per run
    study_dir/cells/<model>_<D>.json   one finished cell, written atomically as soon as it finishes
    study_dir/tokenizer/           the study's one tokenizer
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from wenlm.training.args import (
    SCALING_DEFAULT_VALIDATION_DOCS,
    DataArguments,
    ScalingArguments,
    validation_spec,
)
from wenlm.training.scaling.results import read_json
from wenlm.training.scaling.run.grid import ModelSpec
from wenlm.training.utils import write_json

__all__ = [
    "CELLS_DIR",
    "CELL_SETTINGS",
    "STUDY_FILE",
    "TOKENIZER_DIR",
    "cell_path",
    "cell_settings",
    "check_study_folder",
    "read_cell",
    "read_cells",
    "read_study",
    "write_study",
]

STUDY_FILE = "study.json"
CELLS_DIR = "cells"
TOKENIZER_DIR = "tokenizer"

# Settings that change what a cell measures: a study folder's cells are only comparable if these agree, so a
# rerun with different values is refused instead of mixing incomparable cells in one fit. Keys are the names
# stored in study.json (older than the TrainingArguments option names, and kept so stored studies resume);
# values are the option each comes from, "data." ones from the study's DataArguments. The validation set is
# stored apart (validation_settings), in the two keys it had before the data options were DataArguments'.
CELL_SETTINGS = {
    "train_files": "data.train_files",
    "text_column": "data.text_column",
    "txt_document_mode": "data.txt_document_mode",
    "txt_document_separator": "data.txt_document_separator",
    "min_doc_chars": "data.min_doc_chars",
    "vocab_size": "vocab_size",
    "block_size": "data.block_size",
    "seed": "seed",
    "epochs": "num_train_epochs",
    "learning_rate": "learning_rate",
    "batch_size": "per_device_train_batch_size",
    "warmup_ratio": "warmup_steps",
    "weight_decay": "weight_decay",
    "config_overrides": "config_overrides",
    "regime": "regime",
    "min_steps": "min_steps",
    "early_stopping_patience": "early_stopping_patience",
    "early_stopping_tokens": "early_stopping_tokens",
    "converged_min_steps": "converged_min_steps",
    "optim": "optim",
    "muon_learning_rate": "muon_learning_rate",
    "muon_weight_decay": "muon_weight_decay",
    "precision": "precision",
}
# Settings added after studies were first stored: a study.json without them was run at their defaults.
RECORDED_LATER = ("optim", "muon_learning_rate", "muon_weight_decay", "precision")


def option_value(options: ScalingArguments, option: str) -> Any:
    """The value of a CELL_SETTINGS option ("data.block_size" reads the study's DataArguments)."""
    source, _, name = option.rpartition(".")
    return getattr(options.data if source == "data" else options, name)


def validation_settings(data: DataArguments) -> dict[str, Any]:
    """The validation set as study.json has always stored it: validation_split a fraction (None for a count) and
    validation_docs the count, or the cap on a fraction (None for the default count)."""
    kind, amount = validation_spec(data.validation_split)
    if kind == "fraction":
        return {"validation_split": amount, "validation_docs": data.max_validation_docs}
    count = min(amount, data.max_validation_docs or amount)
    return {
        "validation_split": None,
        "validation_docs": None if count == SCALING_DEFAULT_VALIDATION_DOCS else count,
    }


def cell_settings(options: ScalingArguments) -> dict[str, Any]:
    settings = {key: option_value(options, option) for key, option in CELL_SETTINGS.items()}
    return {**settings, **validation_settings(options.data)}


def read_study(study_dir: Path) -> dict[str, Any]:
    """study.json of `study_dir`, or {} for a folder without one (a study copied without it)."""
    study_file = Path(study_dir) / STUDY_FILE
    return read_json(study_file) if study_file.is_file() else {}


def write_study(study_dir: Path, study: dict[str, Any]) -> None:
    write_json(Path(study_dir) / STUDY_FILE, study)


def check_study_folder(study_dir: Path, options: ScalingArguments) -> dict[str, Any]:
    """Create the study file, or check that an existing study was run with the same cell settings."""
    if (study_dir / STUDY_FILE).is_file():
        stored = read_study(study_dir)
        defaults = {field.name: field.default for field in dataclasses.fields(ScalingArguments)}
        old = {**{key: defaults[CELL_SETTINGS[key]] for key in RECORDED_LATER}, **stored.get("settings", {})}
        new = json.loads(json.dumps(cell_settings(options)))
        changed = {key: (old.get(key), new[key]) for key in new if old.get(key) != new[key]}
        if changed:
            listed = "; ".join(
                f"{key}: study has {was!r}, this run asks {now!r}" for key, (was, now) in changed.items()
            )
            raise ValueError(
                f"{study_dir} holds a study run with other settings ({listed}). Its cells would not be comparable "
                "with new ones: rerun with the same settings, or choose another --output_dir"
            )
        return stored
    if study_dir.exists() and any(study_dir.iterdir()):
        raise FileExistsError(
            f"{study_dir} already holds files but no {STUDY_FILE}; choose an empty or new --output_dir "
            "(wenlm scaling never writes over other data)"
        )
    study_dir.mkdir(parents=True, exist_ok=True)
    stored = {"format": "wenlm-scaling-study", "version": 1, "settings": cell_settings(options)}
    write_study(study_dir, stored)
    return stored


def cell_path(study_dir: Path, spec: ModelSpec, data_size: int) -> Path:
    return study_dir / CELLS_DIR / f"{spec.slug}_{data_size}.json"


def read_cell(path: Path) -> dict[str, Any]:
    record = read_json(path, "delete the file to re-train that cell")
    missing = [key for key in ("model", "n_params", "tokens", "val_loss") if key not in record]
    if missing:
        raise ValueError(f"{path} lacks {missing}; delete the file to re-train that cell")
    return record


def read_cells(study_dir: Path) -> list[dict[str, Any]]:
    """Every finished cell of the study folder, smallest model and data size first."""
    folder = Path(study_dir) / CELLS_DIR
    records = [read_cell(path) for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted(records, key=lambda record: (float(record["n_params"]), float(record["tokens"])))
