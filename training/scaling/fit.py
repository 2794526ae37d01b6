"""Fitting scaling laws to a study's cells: one data law per model size and a joint law over all of them.

The laws are defined in :mod:`wenlm.training.scaling.laws`; the robust log-residual fit and its uncertainties
in :mod:`wenlm.training.scaling.robust`. This module chooses the starting points of each law's search, checks
the inputs, and turns a study's records into fits.

Everything returned is plain Python (floats, lists, dicts, None) so it can go straight into fit.json.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import nnls

from wenlm.training.scaling.laws import DATA_LAW, JOINT_LAW, METRIC_UNITS, is_real_number
from wenlm.training.scaling.robust import robust_fit

__all__ = ["fit_data_law", "fit_joint_law", "fit_study", "validate_records"]

Values = Sequence[float]


# ----------------------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------------------


def _positive_vector(name: str, values: Any) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a sequence of numbers; got {values!r:.80}") from error
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array) | (array <= 0))
    if bad.size:
        index = int(bad[0])
        raise ValueError(
            f"{name}[{index}] = {array[index]!r} is not a finite positive number; remove that cell "
            "(e.g. a diverged run) before fitting"
        )
    return array


def _same_length(**arrays: np.ndarray) -> int:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"inputs must have equal length; got {lengths}")
    return next(iter(lengths.values()))


# ----------------------------------------------------------------------------------------------------------
# Public fits
# ----------------------------------------------------------------------------------------------------------


def _line_fit(log_x: np.ndarray, log_y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of log_y against log_x (slope returned as the positive decay exponent)."""
    slope, intercept = np.polyfit(log_x, log_y, 1)
    return float(-slope), float(intercept)


def fit_data_law(
    D: Values, L: Values, bootstrap: int = 1000, seed: int = 0, huber_delta: float | None = None
) -> dict[str, Any]:
    """Fit ``L(D) = E + B / D^beta`` (E >= 0, B > 0, 0 < beta <= 2) to losses ``L`` at token counts ``D``.

    Returns a JSON-ready dict with ``params`` {E, B, beta}, ``stderr`` (Jacobian), ``ci95`` (bootstrap
    percentiles when ``bootstrap`` > 0, else normal approximation), ``residuals`` (observed - fitted, loss
    units), ``rmse``, ``n_points``, ``dof`` and ``underdetermined``. With exactly 3 points the fit is exact,
    ``dof`` is 0 and no uncertainties are reported.
    """
    tokens = _positive_vector("D (tokens)", D)
    loss_values = _positive_vector("L (loss)", L)
    n_points = _same_length(D=tokens, L=loss_values)
    distinct = np.unique(tokens).size
    if n_points < 3 or distinct < 3:
        raise ValueError(
            f"fit_data_law needs at least 3 points at 3 distinct token counts to fit E, B and beta; got "
            f"{n_points} point(s) at {distinct} distinct token count(s). Train this model on more data sizes."
        )
    _check_bootstrap(bootstrap)
    log_tokens = np.log(tokens)
    lowest = float(loss_values.min())
    starts: list[np.ndarray] = []
    # Starts from the log-log line through (D, L - E) for a ladder of floors E below the lowest loss:
    # for a fixed E the law is a straight line in log-log, so each rung gives a consistent (B, beta).
    for fraction in (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99):
        floor = fraction * lowest
        beta, log_b = _line_fit(log_tokens, np.log(loss_values - floor))
        beta = float(np.clip(beta, 0.01, 1.99))
        log_b = float(np.mean(np.log(loss_values - floor) + beta * log_tokens))
        starts.append(np.array([floor, log_b, beta]))
    for beta in (0.1, 0.3, 0.6, 1.0):
        floor = 0.5 * lowest
        log_b = float(np.mean(np.log(loss_values - floor) + beta * log_tokens))
        starts.append(np.array([floor, log_b, beta]))
    result = robust_fit(DATA_LAW, starts, log_tokens, loss_values, bootstrap, seed, huber_delta)
    result["inputs"] = {"tokens": tokens.tolist(), "loss": loss_values.tolist()}
    result["measured_range"] = {"tokens": [float(tokens.min()), float(tokens.max())]}
    return result


def fit_joint_law(
    N: Values, D: Values, L: Values, bootstrap: int = 1000, seed: int = 0, huber_delta: float | None = None
) -> dict[str, Any]:
    """Fit the Chinchilla form ``L(N, D) = E + A / N^alpha + B / D^beta`` over several model sizes.

    Needs at least 5 points and 2 distinct model sizes; outputs as :func:`fit_data_law`. Designs that cannot
    separate all five parameters (e.g. only 2 model sizes on a grid) are flagged ``identifiable: False``.
    """
    model_params = _positive_vector("N (non-embedding parameters)", N)
    tokens = _positive_vector("D (tokens)", D)
    loss_values = _positive_vector("L (loss)", L)
    n_points = _same_length(N=model_params, D=tokens, L=loss_values)
    distinct_models = np.unique(model_params).size
    if n_points < 5 or distinct_models < 2:
        raise ValueError(
            "fit_joint_law needs at least 5 points and at least 2 distinct model sizes N to fit "
            f"E, A, alpha, B and beta; got {n_points} point(s) and {distinct_models} distinct N. "
            "Train more (model, data) cells or use fit_data_law per model."
        )
    _check_bootstrap(bootstrap)
    design = np.vstack([np.log(model_params), np.log(tokens)])
    lowest = float(loss_values.min())
    starts = []
    # For fixed (E, alpha, beta) the law is linear in (A, B): solve that with non-negative least squares
    # (rows weighted by 1/L to mimic the relative residual) and use the grid point as a start.
    for fraction in (0.0, 0.5, 0.8, 0.95):
        floor = fraction * lowest
        for alpha in (0.1, 0.3, 0.6, 1.0):
            for beta in (0.1, 0.3, 0.6, 1.0):
                model_term = model_params**-alpha
                data_term = tokens**-beta
                system = np.column_stack([model_term, data_term]) / loss_values[:, None]
                target = (loss_values - floor) / loss_values
                (coef_a, coef_b), _ = nnls(system, target)
                tiny = 1e-3 * (loss_values - floor).mean()
                coef_a = max(coef_a, tiny / model_term.mean())
                coef_b = max(coef_b, tiny / data_term.mean())
                starts.append(np.array([floor, math.log(coef_a), alpha, math.log(coef_b), beta]))
    result = robust_fit(JOINT_LAW, starts, design, loss_values, bootstrap, seed, huber_delta)
    result["inputs"] = {
        "n_params": model_params.tolist(),
        "tokens": tokens.tolist(),
        "loss": loss_values.tolist(),
    }
    result["measured_range"] = {
        "n_params": [float(model_params.min()), float(model_params.max())],
        "tokens": [float(tokens.min()), float(tokens.max())],
        "flops": [float((6 * model_params * tokens).min()), float((6 * model_params * tokens).max())],
    }
    return result


def _check_bootstrap(bootstrap: int) -> None:
    if not isinstance(bootstrap, (int, np.integer)) or isinstance(bootstrap, bool) or bootstrap < 0:
        raise ValueError(f"bootstrap must be a non-negative integer number of refits; got {bootstrap!r}")


# ----------------------------------------------------------------------------------------------------------
# Records -> fits
# ----------------------------------------------------------------------------------------------------------


def validate_records(records: Sequence[Mapping[str, Any]], metric: str = "val_loss") -> tuple[list, list]:
    """Split records into usable cells and excluded ones (with a reason), raising on malformed records.

    Missing ``flops`` is filled in as 6 N D. A cell whose metric is missing or not a finite positive number
    (a diverged or unfinished run) is excluded, never silently: it comes back in the second list.
    """
    if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
        raise ValueError("records must be a list of dicts, one per (model, data) cell")
    usable, excluded = [], []
    models_seen: dict[str, float] = {}
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValueError(f"record {index} is a {type(record).__name__}, expected a dict")
        for key in ("model", "n_params", "tokens"):
            if key not in record:
                raise ValueError(f"record {index} lacks the required key {key!r}; it has {sorted(record)}")
        for key in ("n_params", "tokens"):
            if not is_real_number(record[key]) or not (math.isfinite(record[key]) and record[key] > 0):
                raise ValueError(f"record {index} ({record['model']}): {key} must be a positive number")
        name = str(record["model"])
        if models_seen.setdefault(name, float(record["n_params"])) != float(record["n_params"]):
            raise ValueError(
                f"record {index}: model {name!r} has n_params {record['n_params']} but an earlier record "
                f"says {models_seen[name]}; one preset must have one size"
            )
        cell = dict(record)
        if not is_real_number(cell.get("flops")):
            cell["flops"] = 6.0 * float(cell["n_params"]) * float(cell["tokens"])
        value = cell.get(metric)
        if not is_real_number(value) or not math.isfinite(value) or value <= 0:
            excluded.append({**cell, "reason": f"{metric} is {value!r}, not a finite positive number"})
        else:
            usable.append(cell)
    return usable, excluded


def fit_study(
    records: Sequence[Mapping[str, Any]],
    metric: str = "val_loss",
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit one data law per model (where it has >= 3 data sizes) and a joint law (where possible).

    Returns {"metric", "metric_unit", "data_laws": {model: fit}, "joint": fit or None,
    "skipped": {name: reason}, "excluded": [records with reason]}.
    """
    usable, excluded = validate_records(records, metric)
    by_model: dict[str, list] = {}
    for cell in usable:
        by_model.setdefault(str(cell["model"]), []).append(cell)
    data_laws, skipped = {}, {}
    for name, cells in sorted(by_model.items(), key=lambda item: item[1][0]["n_params"]):
        try:
            fit = fit_data_law(
                [cell["tokens"] for cell in cells], [cell[metric] for cell in cells], bootstrap, seed
            )
        except ValueError as error:
            skipped[name] = str(error)
            continue
        fit["model"] = name
        fit["n_params"] = float(cells[0]["n_params"])
        data_laws[name] = fit
    joint = None
    try:
        joint = fit_joint_law(
            [cell["n_params"] for cell in usable],
            [cell["tokens"] for cell in usable],
            [cell[metric] for cell in usable],
            bootstrap,
            seed,
        )
    except ValueError as error:
        skipped["joint"] = str(error)
    return {
        "metric": metric,
        "metric_unit": METRIC_UNITS.get(metric, ""),
        "data_laws": data_laws,
        "joint": joint,
        "skipped": skipped,
        "excluded": excluded,
    }
