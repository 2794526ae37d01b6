"""A study's per-cell records on disk: results.csv and results.json, and reading JSON files of a study back
with errors that name the file and say what to do."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wenlm.training.scaling.fit.study_fit import validate_records
from wenlm.training.utils import is_number, write_atomically, write_json

__all__ = ["RESULTS_CSV", "RESULTS_FILE", "load_records", "read_json", "with_flops", "write_results"]

RESULTS_FILE = "results.json"
RESULTS_CSV = "results.csv"
_RESULTS_FORMAT = "wenlm-scaling-results"
_RECORD_COLUMNS = (
    "model",
    "n_params",
    "n_params_total",
    "tokens",
    "flops",
    "train_loss",
    "val_loss",
    "val_bpb",
    "wall_time_s",
    "tokens_per_s",
)


def read_json(path: Path, advice: str = "") -> Any:
    """The parsed JSON of `path`; invalid JSON raises a ValueError naming the line, followed by `advice`."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} line {error.lineno} column {error.colno}: invalid JSON ({error.msg})"
            + (f"; {advice}" if advice else "")
        ) from error


def load_records(study_dir) -> list[dict[str, Any]]:
    """Read the records of a study back from ``study_dir/results.json`` (for ``--report_only``).

    Accepts both the file written by :func:`write_results` and a bare JSON list of records.
    """
    path = Path(study_dir) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run the study first, or pass the study folder that holds {RESULTS_FILE}"
        )
    payload = read_json(path)
    records = payload.get("records") if isinstance(payload, dict) else payload
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a list of records or an object with a 'records' list")
    try:
        validate_records(records, metric="val_loss")
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    return [dict(record) for record in records]


def with_flops(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every record in the caller's order, excluded ones too, with missing FLOPs filled in as 6 N D."""
    return [
        dict(record)
        if is_number(record.get("flops"))
        else {**record, "flops": 6.0 * float(record["n_params"]) * float(record["tokens"])}
        for record in records
    ]


def _cell_key(record: Mapping[str, Any]) -> tuple[str, float]:
    return str(record.get("model")), float(record.get("tokens") or 0.0)


def _refuse_to_drop_cells(path: Path, new_records: Sequence[Mapping[str, Any]]) -> None:
    if not path.is_file():
        return
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{path} exists but cannot be read ({error}); move it away before writing a new report"
        ) from error
    old_records = payload.get("records") if isinstance(payload, dict) else payload
    if not isinstance(old_records, list):
        return
    kept = {_cell_key(record) for record in new_records}
    dropped = [
        key for key in (_cell_key(r) for r in old_records if isinstance(r, Mapping)) if key not in kept
    ]
    if dropped:
        listed = ", ".join(f"{model} at D={tokens:.3g}" for model, tokens in dropped[:5])
        raise ValueError(
            f"{path} holds {len(dropped)} cell(s) missing from the new records ({listed}); writing would lose "
            "them. Include them (load_records) or pass allow_dropping_cells=True"
        )


def _records_csv(records: Sequence[Mapping[str, Any]]) -> str:
    extra = sorted({key for record in records for key in record} - set(_RECORD_COLUMNS))
    columns = [*_RECORD_COLUMNS, *extra]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = {}
        for column in columns:
            value = record.get(column)
            row[column] = (
                "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else value
            )
        writer.writerow(row)
    return buffer.getvalue()


def write_results(directory: Path, records: Sequence[Mapping[str, Any]], allow_dropping_cells: bool) -> None:
    """results.csv and results.json from `records`; refuses to lose a cell an existing results.json holds."""
    if not allow_dropping_cells:
        _refuse_to_drop_cells(directory / RESULTS_FILE, records)
    write_atomically(directory / RESULTS_CSV, _records_csv(records))
    write_json(directory / RESULTS_FILE, {"format": _RESULTS_FORMAT, "version": 1, "records": list(records)})
