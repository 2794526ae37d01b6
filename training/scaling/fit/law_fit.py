"""Fitting one law to given cells: the data law of one model and the joint law over models, their checked
inputs, the prediction intervals a fit's bootstrap gives, and the checking of a study's records.

:mod:`.robust` does the fitting; :mod:`.study_fit` (which re-exports everything public here) turns a whole study into
fits, and :mod:`.holdout` refits on part of the cells, which is why these live below both of them.
Everything a fit holds is plain JSON except the numpy array ``bootstrap_draws``; see ``strip_private``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from wenlm.training.scaling.fit.laws import DATA_LAW, JOINT_LAW, is_real_number
from wenlm.training.scaling.fit.robust import BOOTSTRAP_DRAWS, robust_fit

__all__ = [
    "REPETITION_SUBSTUDY",
    "fit_data_law",
    "fit_joint_law",
    "main_study_records",
    "predict_interval",
    "validate_records",
]

Values = Sequence[float]
DEFAULT_HUBER_DELTA = 1e-3
# Records of the repeated-data sub-study carry "substudy": REPETITION_SUBSTUDY; the main fits leave them out.
REPETITION_SUBSTUDY = "repetition"


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


def _check_options(bootstrap: Any, floor: Any, constrain_floor: Any) -> None:
    if not isinstance(bootstrap, (int, np.integer)) or isinstance(bootstrap, bool) or bootstrap < 0:
        raise ValueError(f"bootstrap must be a non-negative integer number of refits; got {bootstrap!r}")
    if floor is not None and not (is_real_number(floor) and math.isfinite(floor) and floor > 0):
        raise ValueError(
            f"floor must be a positive number in the units of the loss (e.g. the corpus's entropy), or None; "
            f"got {floor!r}"
        )
    if not isinstance(constrain_floor, (bool, np.bool_)):
        raise ValueError(f"constrain_floor must be true or false; got {constrain_floor!r}")
    if constrain_floor and floor is None:
        raise ValueError(
            "constrain_floor=True needs floor, the known lower bound of the loss, to impose E >= floor"
        )


# ----------------------------------------------------------------------------------------------------------
# Public fits
# ----------------------------------------------------------------------------------------------------------


def fit_data_law(
    D: Values,
    L: Values,
    bootstrap: int = 1000,
    seed: int = 0,
    floor: float | None = None,
    constrain_floor: bool = False,
    huber_delta: float = DEFAULT_HUBER_DELTA,
) -> dict[str, Any]:
    """Fit ``L(D) = E + B / D^beta`` to losses ``L`` at token counts ``D`` (see :mod:`.robust` for the method).

    Returns a JSON-ready dict (plus the array ``bootstrap_draws``) with ``params`` {E, B, beta}, ``stderr``
    (Jacobian), ``ci95`` (cell-bootstrap percentiles when ``bootstrap`` > 0 and enough refits succeed, else
    the Jacobian's normal interval), ``residuals`` (observed - fitted), ``rmse``, ``n_points``, ``dof``,
    ``identified`` with ``identification`` {reason, fix}, ``floor`` and ``constrained``. With
    ``constrain_floor`` the fit keeps E >= ``floor``; otherwise ``floor`` only checks the free fit. With exactly
    3 points the fit is exact, ``dof`` is 0 and no uncertainties are reported.
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
    _check_options(bootstrap, floor, constrain_floor)
    design = np.log(tokens)[None, :]
    result = robust_fit(
        DATA_LAW, design, loss_values, bootstrap, seed, huber_delta, floor, bool(constrain_floor)
    )
    result["inputs"] = {"tokens": tokens.tolist(), "loss": loss_values.tolist()}
    result["measured_range"] = {"tokens": [float(tokens.min()), float(tokens.max())]}
    return result


def fit_joint_law(
    N: Values,
    D: Values,
    L: Values,
    bootstrap: int = 1000,
    seed: int = 0,
    floor: float | None = None,
    constrain_floor: bool = False,
    huber_delta: float = DEFAULT_HUBER_DELTA,
) -> dict[str, Any]:
    """Fit the Chinchilla form ``L(N, D) = E + A / N^alpha + B / D^beta`` over several model sizes.

    Needs at least 5 points and 2 distinct model sizes; outputs as :func:`fit_data_law`. Designs that cannot
    separate all five parameters (e.g. only 2 model sizes) are flagged ``identifiable: False``.
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
    _check_options(bootstrap, floor, constrain_floor)
    design = np.vstack([np.log(model_params), np.log(tokens)])
    result = robust_fit(
        JOINT_LAW, design, loss_values, bootstrap, seed, huber_delta, floor, bool(constrain_floor)
    )
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


def predict_interval(
    fit: Mapping[str, Any], tokens: float, n_params: float | None = None, level: float = 0.95
) -> tuple[float, float]:
    """The ``level`` interval of the loss predicted at ``tokens`` (and ``n_params`` for a joint fit), from the
    percentiles of the fit's bootstrap draws. Raises ValueError naming the reason when the fit has none."""
    if not isinstance(fit, Mapping) or fit.get("law") not in ("data", "joint"):
        raise ValueError("expected a fit dict returned by fit_data_law or fit_joint_law (key 'law')")
    draws = fit.get(BOOTSTRAP_DRAWS)
    if draws is None:
        raise ValueError(
            "this fit has no bootstrap draws, so no prediction interval: it was made with bootstrap=0, too few "
            "resamples could be refitted, the cells did not identify its parameters (see 'warnings'), or it was "
            "read back from JSON, which does not keep the draws; refit with bootstrap > 0"
        )
    if not (is_real_number(level) and 0 < level < 1):
        raise ValueError(f"level must be a probability between 0 and 1, e.g. 0.95; got {level!r}")
    if not (is_real_number(tokens) and math.isfinite(tokens) and tokens > 0):
        raise ValueError(f"tokens must be a positive number; got {tokens!r}")
    spec = JOINT_LAW if fit["law"] == "joint" else DATA_LAW
    column = {name: np.asarray(draws)[:, index] for index, name in enumerate(spec.names)}
    losses = column["E"] + column["B"] / float(tokens) ** column["beta"]
    if spec is JOINT_LAW:
        if not (is_real_number(n_params) and math.isfinite(n_params) and n_params > 0):
            raise ValueError("a joint fit needs n_params > 0 (non-embedding parameters) to predict a loss")
        losses = losses + column["A"] / float(n_params) ** column["alpha"]
    elif n_params is not None:
        raise ValueError("n_params applies only to a joint fit; a data-law fit already belongs to one model")
    low, high = np.percentile(losses, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


# ----------------------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------------------


def main_study_records(records: Any) -> Any:
    """The records of the main study: those of the repetition sub-study left out (anything that is not a
    list of records is passed through for validate_records to reject)."""
    if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
        return records
    return [
        record
        for record in records
        if not (isinstance(record, Mapping) and record.get("substudy") == REPETITION_SUBSTUDY)
    ]


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
