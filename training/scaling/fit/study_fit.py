"""Fitting a study's cells: one data law per model size, the joint law over all of them (free, and with
E >= floor when asked), and the held-out validation of the joint law.

The laws are defined in :mod:`.laws`; the robust fit of one law, its bootstrap and its identification check in
:mod:`.robust`; the per-law entry points (re-exported here) in :mod:`.law_fit`; the held-out refits in
:mod:`.holdout`; the repeated-data law in :mod:`.repetition`.

Everything returned is plain Python except each fit's ``bootstrap_draws`` array (kept so that
:func:`predict_interval` works); pass the result through :func:`strip_private` before writing JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wenlm.training.scaling.fit.holdout import holdout_with_reason
from wenlm.training.scaling.fit.law_fit import (
    REPETITION_SUBSTUDY,
    fit_data_law,
    fit_joint_law,
    main_study_records,
    predict_interval,
    validate_records,
)
from wenlm.training.scaling.fit.laws import METRIC_UNITS
from wenlm.training.scaling.fit.robust import strip_private

__all__ = [
    "REPETITION_SUBSTUDY",
    "fit_data_law",
    "fit_joint_law",
    "fit_study",
    "predict_interval",
    "strip_private",
    "validate_records",
]


def _data_laws(
    usable: list, metric: str, bootstrap: int, seed: int, floor: float | None, constrain_floor: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    by_model: dict[str, list] = {}
    for cell in usable:
        by_model.setdefault(str(cell["model"]), []).append(cell)
    data_laws, skipped = {}, {}
    for name, cells in sorted(by_model.items(), key=lambda item: item[1][0]["n_params"]):
        try:
            fit = fit_data_law(
                [cell["tokens"] for cell in cells],
                [cell[metric] for cell in cells],
                bootstrap,
                seed,
                floor=floor,
                constrain_floor=constrain_floor,
            )
        except ValueError as error:
            skipped[name] = str(error)
            continue
        fit["model"] = name
        fit["n_params"] = float(cells[0]["n_params"])
        data_laws[name] = fit
    return data_laws, skipped


def fit_study(
    records: Sequence[Mapping[str, Any]],
    metric: str = "val_loss",
    bootstrap: int = 1000,
    seed: int = 0,
    floor: float | None = None,
    constrain_floor: bool = False,
) -> dict[str, Any]:
    """Fit one data law per model (where it has >= 3 data sizes), the joint law, and its held-out checks.

    D is each record's ``tokens``: the unique tokens of the cell. Records with ``"substudy": "repetition"``
    are left out of every fit here. ``floor`` (same units as ``metric``) checks every free fit; with
    ``constrain_floor`` the data laws and ``joint_constrained`` keep E >= floor, while ``joint`` stays free so
    the report can show both, and the held-out fits use the same choice.

    Returns {"metric", "metric_unit", "data_laws": {model: fit}, "joint": free fit or None,
    "joint_constrained": fit or None, "holdout": {"largest_tokens": result or None, "largest_n_params": result
    or None}, "skipped": {name: reason}, "excluded": [records with reason]}.
    """
    if constrain_floor and floor is None:
        raise ValueError(
            "constrain_floor=True needs floor, the known lower bound of the loss, to impose E >= floor"
        )
    usable, excluded = validate_records(main_study_records(records), metric)
    data_laws, skipped = _data_laws(usable, metric, bootstrap, seed, floor, constrain_floor)
    columns = [[cell[key] for cell in usable] for key in ("n_params", "tokens", metric)]
    joint = joint_constrained = None
    try:
        joint = fit_joint_law(*columns, bootstrap=bootstrap, seed=seed, floor=floor)
        if constrain_floor:
            joint_constrained = fit_joint_law(
                *columns, bootstrap=bootstrap, seed=seed, floor=floor, constrain_floor=True
            )
    except ValueError as error:
        skipped["joint"] = str(error)
    holdout = {}
    for key, hold_out in (("largest_tokens", "tokens"), ("largest_n_params", "n_params")):
        holdout[key], reason = holdout_with_reason(
            usable, metric, hold_out, bootstrap, seed, floor, constrain_floor
        )
        if reason is not None:
            skipped[f"holdout_{key}"] = reason
    return {
        "metric": metric,
        "metric_unit": METRIC_UNITS.get(metric, ""),
        "data_laws": data_laws,
        "joint": joint,
        "joint_constrained": joint_constrained,
        "holdout": holdout,
        "skipped": skipped,
        "excluded": excluded,
    }
