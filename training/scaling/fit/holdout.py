"""Validated extrapolation: refit the joint law without the cells of the largest D (or the largest N) and
predict those cells.

An extrapolation is only as good as the evidence that the law extrapolates at all on this corpus and these
models. Holding out the largest data size (resp. model size) and predicting it from the rest measures exactly
the error of a one-step extrapolation, with the same fitting method; the report prints that error beside every
prediction it makes beyond the measured cells. The held-out cells are never passed to the fit (the result's
``fit["inputs"]`` lists exactly the cells that were).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wenlm.training.scaling.fit.law_fit import (
    fit_joint_law,
    main_study_records,
    predict_interval,
    validate_records,
)
from wenlm.training.scaling.fit.laws import predict_loss

__all__ = ["HOLD_OUT_LABELS", "holdout_validation", "holdout_with_reason"]

HOLD_OUT_LABELS = {"tokens": "largest D", "n_params": "largest N"}


def holdout_with_reason(
    cells: Sequence[Mapping[str, Any]],
    metric: str,
    hold_out: str,
    bootstrap: int = 1000,
    seed: int = 0,
    floor: float | None = None,
    constrain_floor: bool = False,
) -> tuple[dict[str, Any] | None, str | None]:
    """:func:`holdout_validation` on already validated cells: (result, None), or (None, why not)."""
    if hold_out not in HOLD_OUT_LABELS:
        raise ValueError(f"hold_out must be 'tokens' or 'n_params'; got {hold_out!r}")
    label = HOLD_OUT_LABELS[hold_out]
    values = sorted({float(cell[hold_out]) for cell in cells})
    if len(values) < 2:
        return (
            None,
            f"holding out the {label} needs at least 2 distinct values of {hold_out}; got {len(values)}",
        )
    largest = values[-1]
    kept = [cell for cell in cells if float(cell[hold_out]) != largest]
    held = [cell for cell in cells if float(cell[hold_out]) == largest]
    columns = [[cell[key] for cell in kept] for key in ("n_params", "tokens", metric)]
    try:
        fit = fit_joint_law(
            *columns, bootstrap=bootstrap, seed=seed, floor=floor, constrain_floor=constrain_floor
        )
    except ValueError as error:
        return None, f"without the cells of the {label} ({largest:.3g}) no joint law can be fitted: {error}"
    if not fit["identifiable"]:
        return None, (
            f"without the cells of the {label} ({largest:.3g}) the remaining cells do not identify the joint "
            "law (fewer than 3 distinct model or data sizes); add sizes so a held-out check is possible"
        )
    rows = [_predicted_cell(fit, cell, metric) for cell in held]
    result = {
        "held_out": label,
        "value": largest,
        "fit_cells": len(kept),
        "fit": fit,
        "cells": rows,
        "max_abs_rel_error": float(max(abs(row["rel_error"]) for row in rows)),
    }
    return result, None


def _predicted_cell(fit: Mapping[str, Any], cell: Mapping[str, Any], metric: str) -> dict[str, Any]:
    observed = float(cell[metric])
    predicted = float(predict_loss(fit, float(cell["tokens"]), n_params=float(cell["n_params"])))
    try:
        low, high = predict_interval(fit, float(cell["tokens"]), n_params=float(cell["n_params"]))
    # no bootstrap draws (bootstrap=0 or too few refits): the point prediction stands alone
    except ValueError:
        low = high = None
    return {
        "model": cell["model"],
        "n_params": float(cell["n_params"]),
        "tokens": float(cell["tokens"]),
        "observed": observed,
        "predicted": predicted,
        "low": low,
        "high": high,
        "rel_error": (predicted - observed) / observed,
    }


def holdout_validation(
    records: Sequence[Mapping[str, Any]],
    metric: str,
    hold_out: str = "tokens",
    bootstrap: int = 1000,
    seed: int = 0,
    floor: float | None = None,
    constrain_floor: bool = False,
) -> dict[str, Any] | None:
    """Fit the joint law on every usable cell except those with the largest ``hold_out`` ("tokens": D,
    "n_params": N) and predict the held-out cells.

    Returns {"held_out": "largest D" | "largest N", "value": that D or N, "fit_cells": int, "fit": the joint
    fit, "cells": [{"model", "n_params", "tokens", "observed", "predicted", "low", "high", "rel_error"}],
    "max_abs_rel_error"}, with rel_error = (predicted - observed) / observed and [low, high] the 95 %
    bootstrap interval of the prediction (None without bootstrap). Returns None when the remaining cells
    cannot support a joint fit (:func:`holdout_with_reason` says why). Repetition sub-study records are ignored.
    """
    cells, _ = validate_records(main_study_records(records), metric)
    return holdout_with_reason(cells, metric, hold_out, bootstrap, seed, floor, constrain_floor)[0]
