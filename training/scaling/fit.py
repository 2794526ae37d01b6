"""Scaling-law fits for wenlm data-scale studies.

Two laws are supported:

* the data law of one model size, ``L(D) = E + B / D^beta``;
* the joint (Chinchilla) law over model and data size, ``L(N, D) = E + A / N^alpha + B / D^beta``.

Fitting choice: the residual is taken in log space, ``r = log L_fitted - log L_observed``, and minimised with
a Huber loss (Hoffmann et al. 2022, Approach 3). Log residuals weight every point by its *relative* error, which
matches how training-loss noise behaves (it scales with the loss) and stops the largest losses, at the smallest
D, from dominating the fit. The Huber loss keeps one bad cell (a diverged or mis-logged run) from dragging the
exponents. Hoffmann et al. used a fixed delta of 1e-3; with the 5-20 points of a small study and ~1 % run-to-run
noise that turns nearly every point into the linear (L1) regime, which makes the fit jumpy. The default delta is
therefore set from the data: 1.345 robust (MAD) standard deviations of the log residuals (the classic tuning
that keeps ~95 % efficiency when the noise is Gaussian), starting from a least-squares fit and re-estimated
from the Huber fit's own residuals until it settles, so well-behaved points are treated as least squares and
only outliers lose influence.

Uncertainties come two ways: ``stderr`` from the Jacobian covariance at the optimum (fast, local, assumes the
model is right and the noise Gaussian) and ``ci95`` from a residual bootstrap (resample the log residuals, add
them to the fitted curve, refit). The residual bootstrap keeps the measured design fixed, which matters with a
handful of points: resampling whole cells would often leave fewer distinct D than parameters.

Everything returned is plain Python (floats, lists, dicts, None) so it can go straight into fit.json.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares, nnls

__all__ = [
    "METRIC_UNITS",
    "PUBLISHED_EXPONENTS",
    "compute_optimal_split",
    "fit_data_law",
    "fit_joint_law",
    "fit_study",
    "plot_loss_vs_compute",
    "plot_scaling",
    "predict_loss",
    "tokens_for_target_loss",
    "validate_records",
]

METRIC_UNITS = {
    "val_loss": "nats/token",
    "train_loss": "nats/token",
    "val_bpb": "bits/byte",
}

# Published exponents to compare against. Kaplan et al. fit pure power laws without an irreducible term, so
# their exponents come out smaller than ones fitted with E; the report states this caveat next to the numbers.
PUBLISHED_EXPONENTS: dict[str, dict[str, Any]] = {
    "Kaplan et al. 2020": {
        "beta": 0.095,
        "alpha": 0.076,
        "form": "L(D) = (D_c / D)^alpha_D and L(N) = (N_c / N)^alpha_N, no irreducible term",
    },
    "Hoffmann et al. 2022": {
        "beta": 0.28,
        "alpha": 0.34,
        "E": 1.69,
        "form": "L(N, D) = E + A / N^alpha + B / D^beta (Approach 3)",
    },
}

# Chinchilla's rule of thumb for compute-optimal training, used only as a reference point in reports.
CHINCHILLA_TOKENS_PER_PARAM = 20.0

_EXPONENT_BOUNDS = (1e-6, 2.0)
# Bounds on log A / log B: generous enough for any loss of order one at D, N up to ~1e30 with exponent <= 2,
# yet finite so that exp() can never overflow during the search.
_LOG_COEFF_BOUNDS = (-50.0, 150.0)
_MIN_HUBER_DELTA = 1e-4
_HUBER_TUNING = 1.345
_MAD_TO_SIGMA = 1.4826


# ----------------------------------------------------------------------------------------------------------
# Model definitions (internal parametrisation: coefficients in log space so the optimiser sees O(1) numbers)
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LawSpec:
    kind: str
    formula: str
    names: tuple[str, ...]  # natural parameter names, in internal order
    log_coefficients: tuple[str, ...]  # natural names whose internal value is log(value)
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (theta, design) -> fitted loss
    jacobian: Callable[[np.ndarray, np.ndarray], np.ndarray]  # d log(fitted) / d theta

    def to_natural(self, theta: np.ndarray) -> dict[str, float]:
        return {
            name: float(math.exp(value) if name in self.log_coefficients else value)
            for name, value in zip(self.names, theta, strict=True)
        }

    def natural_scale(self, theta: np.ndarray) -> np.ndarray:
        """d natural / d internal for each parameter (delta method for the log-coefficients)."""
        return np.array(
            [
                math.exp(value) if name in self.log_coefficients else 1.0
                for name, value in zip(self.names, theta, strict=True)
            ]
        )


def _data_predict(theta: np.ndarray, log_tokens: np.ndarray) -> np.ndarray:
    irreducible, log_b, beta = theta
    return irreducible + np.exp(log_b - beta * log_tokens)


def _data_jacobian(theta: np.ndarray, log_tokens: np.ndarray) -> np.ndarray:
    irreducible, log_b, beta = theta
    data_term = np.exp(log_b - beta * log_tokens)
    fitted = irreducible + data_term
    return np.column_stack([1.0 / fitted, data_term / fitted, -data_term * log_tokens / fitted])


def _joint_predict(theta: np.ndarray, design: np.ndarray) -> np.ndarray:
    irreducible, log_a, alpha, log_b, beta = theta
    log_params, log_tokens = design
    return irreducible + np.exp(log_a - alpha * log_params) + np.exp(log_b - beta * log_tokens)


def _joint_jacobian(theta: np.ndarray, design: np.ndarray) -> np.ndarray:
    irreducible, log_a, alpha, log_b, beta = theta
    log_params, log_tokens = design
    model_term = np.exp(log_a - alpha * log_params)
    data_term = np.exp(log_b - beta * log_tokens)
    fitted = irreducible + model_term + data_term
    return np.column_stack(
        [
            1.0 / fitted,
            model_term / fitted,
            -model_term * log_params / fitted,
            data_term / fitted,
            -data_term * log_tokens / fitted,
        ]
    )


_DATA_LAW = _LawSpec(
    kind="data",
    formula="L(D) = E + B / D^beta",
    names=("E", "B", "beta"),
    log_coefficients=("B",),
    lower=(0.0, _LOG_COEFF_BOUNDS[0], _EXPONENT_BOUNDS[0]),
    upper=(np.inf, _LOG_COEFF_BOUNDS[1], _EXPONENT_BOUNDS[1]),
    predict=_data_predict,
    jacobian=_data_jacobian,
)

_JOINT_LAW = _LawSpec(
    kind="joint",
    formula="L(N, D) = E + A / N^alpha + B / D^beta",
    names=("E", "A", "alpha", "B", "beta"),
    log_coefficients=("A", "B"),
    lower=(0.0, _LOG_COEFF_BOUNDS[0], _EXPONENT_BOUNDS[0], _LOG_COEFF_BOUNDS[0], _EXPONENT_BOUNDS[0]),
    upper=(np.inf, _LOG_COEFF_BOUNDS[1], _EXPONENT_BOUNDS[1], _LOG_COEFF_BOUNDS[1], _EXPONENT_BOUNDS[1]),
    predict=_joint_predict,
    jacobian=_joint_jacobian,
)


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
# Generic robust fit machinery
# ----------------------------------------------------------------------------------------------------------


def _log_residuals(spec: _LawSpec, theta: np.ndarray, design: np.ndarray, log_loss: np.ndarray) -> np.ndarray:
    return np.log(spec.predict(theta, design)) - log_loss


def _huber_cost(residuals: np.ndarray, delta: float) -> float:
    absolute = np.abs(residuals)
    return float(np.sum(np.where(absolute <= delta, 0.5 * absolute**2, delta * (absolute - 0.5 * delta))))


def _clip_into_bounds(spec: _LawSpec, theta: Sequence[float]) -> np.ndarray:
    lower = np.array(spec.lower)
    upper = np.array(spec.upper)
    # least_squares wants a strictly feasible start; nudge starts off the bounds by a hair.
    span = np.where(np.isfinite(upper - lower), upper - lower, 1.0)
    return np.clip(np.asarray(theta, dtype=float), lower + 1e-9 * span, upper - 1e-9 * span)


def _solve(
    spec: _LawSpec,
    start: np.ndarray,
    design: np.ndarray,
    log_loss: np.ndarray,
    loss: str,
    delta: float,
):
    return least_squares(
        lambda theta: _log_residuals(spec, theta, design, log_loss),
        _clip_into_bounds(spec, start),
        jac=lambda theta: spec.jacobian(theta, design),
        bounds=(np.array(spec.lower), np.array(spec.upper)),
        loss=loss,
        f_scale=delta,
        x_scale="jac",
        xtol=1e-12,
        ftol=1e-12,
        gtol=1e-12,
        max_nfev=2000,
    )


def _best_of(
    spec: _LawSpec,
    starts: Iterable[np.ndarray],
    design: np.ndarray,
    log_loss: np.ndarray,
    loss: str,
    delta: float,
) -> np.ndarray:
    best_theta, best_cost = None, math.inf
    for start in starts:
        result = _solve(spec, start, design, log_loss, loss, delta)
        residuals = _log_residuals(spec, result.x, design, log_loss)
        cost = _huber_cost(residuals, delta) if loss == "huber" else float(np.sum(residuals**2))
        if np.all(np.isfinite(residuals)) and cost < best_cost:
            best_theta, best_cost = result.x, cost
    if best_theta is None:
        raise RuntimeError(
            f"every start of the {spec.kind}-law fit failed; check the inputs for absurd values"
        )
    return best_theta


def _rank_starts(spec: _LawSpec, starts: list[np.ndarray], design, log_loss, keep: int) -> list[np.ndarray]:
    scored = []
    for start in starts:
        theta = _clip_into_bounds(spec, start)
        residuals = _log_residuals(spec, theta, design, log_loss)
        if np.all(np.isfinite(residuals)):
            scored.append((float(np.sum(residuals**2)), theta))
    scored.sort(key=lambda item: item[0])
    return [theta for _, theta in scored[:keep]]


def _at_bounds(spec: _LawSpec, theta: np.ndarray) -> list[str]:
    hits = []
    for name, value, lower, upper in zip(spec.names, theta, spec.lower, spec.upper, strict=True):
        tolerance = 1e-6 * max(1.0, abs(value))
        if value - lower <= tolerance or (np.isfinite(upper) and upper - value <= tolerance):
            hits.append(name)
    return hits


def _robust_fit(
    spec: _LawSpec,
    starts: list[np.ndarray],
    design: np.ndarray,
    loss_values: np.ndarray,
    bootstrap: int,
    seed: int,
    huber_delta: float | None,
) -> dict[str, Any]:
    n_points, n_parameters = len(loss_values), len(spec.names)
    dof = n_points - n_parameters
    log_loss = np.log(loss_values)
    ranked = _rank_starts(spec, starts, design, log_loss, keep=6)

    if huber_delta is not None and not (
        _is_number(huber_delta) and huber_delta > 0 and math.isfinite(huber_delta)
    ):
        raise ValueError(f"huber_delta must be a positive number (log-residual units); got {huber_delta!r}")

    # Stage 1: plain least squares from several starts gives a first scale of the noise.
    theta = _best_of(spec, ranked, design, log_loss, "linear", 1.0)
    # Stage 2: Huber fits. With an automatic delta, re-estimate the noise scale from the residuals of the
    # latest (more robust) fit a few times: an outlier inflates the least-squares residuals of every point,
    # so the first estimate of delta is too large to down-weight it.
    delta = float(huber_delta) if huber_delta is not None else math.inf
    starts_for_huber = [theta, *ranked[:3]]
    for _ in range(1 if huber_delta is not None else 4):
        if huber_delta is None:
            residuals = _log_residuals(spec, theta, design, log_loss)
            # Residuals of a fit with few spare degrees of freedom understate the noise; inflate accordingly.
            inflation = math.sqrt(n_points / dof) if dof > 0 else 1.0
            sigma = _MAD_TO_SIGMA * float(np.median(np.abs(residuals))) * inflation
            new_delta = max(_HUBER_TUNING * sigma, _MIN_HUBER_DELTA)
            if abs(new_delta - delta) <= 0.05 * new_delta:
                break
            delta = new_delta
        theta = _best_of(spec, starts_for_huber, design, log_loss, "huber", delta)
        starts_for_huber = [theta, *ranked[:1]]

    fitted = spec.predict(theta, design)
    log_residuals = np.log(fitted) - log_loss
    residuals = loss_values - fitted
    params = spec.to_natural(theta)
    jacobian = spec.jacobian(theta, design)
    rank = int(np.linalg.matrix_rank(jacobian, tol=1e-8 * np.linalg.norm(jacobian, 2)))
    identifiable = rank == n_parameters
    at_bounds = _at_bounds(spec, theta)
    warnings: list[str] = []

    result: dict[str, Any] = {
        "law": spec.kind,
        "formula": spec.formula,
        "params": params,
        "stderr": None,
        "stderr_bootstrap": None,
        "ci95": None,
        "ci95_method": None,
        "n_points": n_points,
        "n_params": n_parameters,
        "dof": dof,
        "underdetermined": dof <= 0 or not identifiable,
        "identifiable": identifiable,
        "fitted": fitted.tolist(),
        "residuals": residuals.tolist(),
        "log_residuals": log_residuals.tolist(),
        "rmse": float(np.sqrt(np.mean(residuals**2))),
        "rmse_relative": float(np.sqrt(np.mean(log_residuals**2))),
        "loss_function": "huber on log residuals",
        "huber_delta": delta,
        "at_bounds": at_bounds,
        "bootstrap": {"requested": int(bootstrap), "succeeded": 0, "method": None},
        "warnings": warnings,
    }

    if not identifiable:
        warnings.append(
            f"the design does not identify all {n_parameters} parameters (Jacobian rank {rank}); "
            "parameters trade off along a ridge, so no uncertainties are reported"
        )
        if spec.kind == "joint":
            warnings.append(
                "a joint fit needs at least 3 distinct model sizes and 3 distinct data sizes to separate "
                "E, A and alpha; add model sizes"
            )
        return result
    if dof == 0:
        warnings.append(
            f"{n_points} points and {n_parameters} parameters: the fit is exact (0 degrees of freedom), so "
            "no uncertainty can be estimated; add points to get error bars"
        )
        return result
    if at_bounds:
        warnings.append(
            "parameter(s) " + ", ".join(at_bounds) + " sit on a bound of the fit; the Jacobian error bars "
            "for them are not meaningful and the data do not constrain them well"
        )

    sigma2 = float(np.sum(log_residuals**2)) / dof
    covariance = sigma2 * np.linalg.pinv(jacobian.T @ jacobian)
    scale = spec.natural_scale(theta)
    stderr = np.sqrt(np.clip(np.diag(covariance), 0.0, None)) * scale
    result["stderr"] = dict(zip(spec.names, (float(value) for value in stderr), strict=True))
    result["ci95"] = {
        name: [params[name] - 1.96 * error, params[name] + 1.96 * error]
        for name, error in result["stderr"].items()
    }
    result["ci95_method"] = "normal approximation from the Jacobian covariance"

    if bootstrap > 0:
        draws = _residual_bootstrap(spec, theta, design, log_residuals, bootstrap, seed, delta)
        result["bootstrap"].update(
            succeeded=int(len(draws)),
            method="residual bootstrap: log residuals resampled with replacement onto the fitted curve",
        )
        if len(draws) >= 20:
            lower, upper = np.percentile(draws, [2.5, 97.5], axis=0)
            result["ci95"] = {
                name: [float(low), float(high)]
                for name, low, high in zip(spec.names, lower, upper, strict=True)
            }
            result["ci95_method"] = f"bootstrap percentile interval ({len(draws)} refits)"
            result["stderr_bootstrap"] = dict(
                zip(spec.names, (float(value) for value in np.std(draws, axis=0, ddof=1)), strict=True)
            )
        else:
            warnings.append(f"only {len(draws)} of {bootstrap} bootstrap refits converged; CI from Jacobian")
    return result


def _residual_bootstrap(
    spec: _LawSpec,
    theta: np.ndarray,
    design: np.ndarray,
    log_residuals: np.ndarray,
    draws: int,
    seed: int,
    delta: float,
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n_points, n_parameters = len(log_residuals), len(theta)
    # Fitted residuals are smaller than the true noise by about sqrt((n - p) / n); undo that and centre them.
    pool = log_residuals * math.sqrt(n_points / (n_points - n_parameters))
    pool = pool - pool.mean()
    log_fitted = np.log(spec.predict(theta, design))
    samples = []
    for _ in range(draws):
        log_loss = log_fitted + rng.choice(pool, size=n_points, replace=True)
        result = _solve(spec, theta, design, log_loss, "huber", delta)
        if result.success and np.all(np.isfinite(result.x)):
            natural = spec.to_natural(result.x)
            samples.append([natural[name] for name in spec.names])
    return np.asarray(samples, dtype=float).reshape(-1, n_parameters)


# ----------------------------------------------------------------------------------------------------------
# Public fits
# ----------------------------------------------------------------------------------------------------------


def _line_fit(log_x: np.ndarray, log_y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of log_y against log_x (slope returned as the positive decay exponent)."""
    slope, intercept = np.polyfit(log_x, log_y, 1)
    return float(-slope), float(intercept)


def fit_data_law(
    D: Sequence[float],
    L: Sequence[float],
    bootstrap: int = 1000,
    seed: int = 0,
    huber_delta: float | None = None,
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
    result = _robust_fit(_DATA_LAW, starts, log_tokens, loss_values, bootstrap, seed, huber_delta)
    result["inputs"] = {"tokens": tokens.tolist(), "loss": loss_values.tolist()}
    result["measured_range"] = {"tokens": [float(tokens.min()), float(tokens.max())]}
    return result


def fit_joint_law(
    N: Sequence[float],
    D: Sequence[float],
    L: Sequence[float],
    bootstrap: int = 1000,
    seed: int = 0,
    huber_delta: float | None = None,
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
    result = _robust_fit(_JOINT_LAW, starts, design, loss_values, bootstrap, seed, huber_delta)
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
# Using a fit
# ----------------------------------------------------------------------------------------------------------


def _check_fit(fit: Mapping[str, Any], want_joint: bool = False) -> dict[str, float]:
    if not isinstance(fit, Mapping) or "params" not in fit or "law" not in fit:
        raise ValueError(
            "expected a fit dict returned by fit_data_law or fit_joint_law (keys 'law', 'params')"
        )
    if want_joint and fit["law"] != "joint":
        raise ValueError("this needs a joint fit L(N, D) from fit_joint_law; got a data-law fit L(D)")
    return dict(fit["params"])


def predict_loss(fit: Mapping[str, Any], tokens: Any, n_params: Any = None) -> Any:
    """Loss predicted by a fit at ``tokens`` (and ``n_params`` for a joint fit). Scalars in, float out."""
    params = _check_fit(fit)
    tokens_array = np.asarray(tokens, dtype=float)
    value = params["E"] + params["B"] / tokens_array ** params["beta"]
    if fit["law"] == "joint":
        if n_params is None:
            raise ValueError("a joint fit needs n_params (non-embedding parameters) to predict a loss")
        value = value + params["A"] / np.asarray(n_params, dtype=float) ** params["alpha"]
    elif n_params is not None:
        raise ValueError("n_params applies only to a joint fit; a data-law fit already belongs to one model")
    return float(value) if np.ndim(value) == 0 else value


def tokens_for_target_loss(
    fit: Mapping[str, Any], target_loss: float, n_params: float | None = None
) -> float:
    """Tokens D needed to reach ``target_loss`` under a fitted law.

    For a joint fit ``n_params`` is required. Raises ValueError when the target is at or below the loss the
    law can ever reach (E, or E + A / N^alpha for a joint fit at that model size).
    """
    params = _check_fit(fit)
    if not (isinstance(target_loss, (int, float, np.floating)) and math.isfinite(target_loss)):
        raise ValueError(f"target_loss must be a finite number; got {target_loss!r}")
    asymptote = params["E"]
    where = "the fitted irreducible loss E"
    if fit["law"] == "joint":
        if n_params is None or not (float(n_params) > 0):
            raise ValueError(
                "a joint fit needs n_params > 0 (non-embedding parameters of the model to train)"
            )
        asymptote += params["A"] / float(n_params) ** params["alpha"]
        where = (
            f"E + A / N^alpha, the best loss any amount of data gives a model with N = {float(n_params):.3g}"
        )
    elif n_params is not None:
        raise ValueError("n_params applies only to a joint fit; a data-law fit already belongs to one model")
    gap = float(target_loss) - asymptote
    if gap <= 0:
        raise ValueError(
            f"target loss {float(target_loss):.4g} is unreachable: it is at or below {where} "
            f"({asymptote:.4g}); choose a higher target or a larger model"
        )
    return float((params["B"] / gap) ** (1.0 / params["beta"]))


def compute_optimal_split(joint_fit: Mapping[str, Any], flops_budget: float) -> dict[str, Any]:
    """Model size and token count minimising L(N, D) subject to 6 N D = C.

    Closed form: N_opt = G (C/6)^(beta/(alpha+beta)), D_opt = (C/6)^(alpha/(alpha+beta)) / G with
    G = (alpha A / (beta B))^(1/(alpha+beta)). The result is a prediction for an untrained (N, D) pair, so it
    is always flagged ``extrapolation: True``; ``within_measured_range`` says whether it at least lies inside
    the box of measured N and D.
    """
    params = _check_fit(joint_fit, want_joint=True)
    if not (
        isinstance(flops_budget, (int, float, np.floating))
        and math.isfinite(flops_budget)
        and flops_budget > 0
    ):
        raise ValueError(f"flops_budget must be a positive finite number of FLOPs; got {flops_budget!r}")
    alpha, beta = params["alpha"], params["beta"]
    ratio = (alpha * params["A"]) / (beta * params["B"])
    scale = ratio ** (1.0 / (alpha + beta))
    half_budget = float(flops_budget) / 6.0
    n_opt = scale * half_budget ** (beta / (alpha + beta))
    d_opt = half_budget ** (alpha / (alpha + beta)) / scale
    measured = joint_fit.get("measured_range", {})
    n_range = measured.get("n_params")
    d_range = measured.get("tokens")
    within = bool(
        n_range and d_range and n_range[0] <= n_opt <= n_range[1] and d_range[0] <= d_opt <= d_range[1]
    )
    return {
        "flops": float(flops_budget),
        "n_params": float(n_opt),
        "tokens": float(d_opt),
        "tokens_per_param": float(d_opt / n_opt),
        "loss": float(predict_loss(joint_fit, d_opt, n_params=n_opt)),
        "extrapolation": True,
        "within_measured_range": within,
        "measured_n_params_range": n_range,
        "measured_tokens_range": d_range,
    }


# ----------------------------------------------------------------------------------------------------------
# Records -> fits
# ----------------------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


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
            if not _is_number(record[key]) or not (math.isfinite(record[key]) and record[key] > 0):
                raise ValueError(f"record {index} ({record['model']}): {key} must be a positive number")
        name = str(record["model"])
        if models_seen.setdefault(name, float(record["n_params"])) != float(record["n_params"]):
            raise ValueError(
                f"record {index}: model {name!r} has n_params {record['n_params']} but an earlier record "
                f"says {models_seen[name]}; one preset must have one size"
            )
        cell = dict(record)
        if not _is_number(cell.get("flops")):
            cell["flops"] = 6.0 * float(cell["n_params"]) * float(cell["tokens"])
        value = cell.get(metric)
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
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


# ----------------------------------------------------------------------------------------------------------
# Plots (matplotlib Figure objects directly: no pyplot, so no global backend state is touched)
# ----------------------------------------------------------------------------------------------------------


def _metric_label(metric: str) -> str:
    unit = METRIC_UNITS.get(metric)
    return f"{metric} ({unit})" if unit else metric


def _check_fits_metric(fits: Mapping[str, Any] | None, metric: str) -> None:
    if fits is not None and not (isinstance(fits, Mapping) and {"data_laws", "joint"} <= set(fits)):
        raise ValueError(
            "fits must be the dict returned by fit_study (keys 'data_laws' and 'joint') or None; a single "
            "fit from fit_data_law/fit_joint_law can be wrapped as {'data_laws': {model: fit}, 'joint': None}"
        )
    if fits and fits.get("metric") not in (None, metric):
        raise ValueError(
            f"the fits were made on {fits['metric']!r} but the plot asks for {metric!r}; refit with "
            f"fit_study(records, metric={metric!r}) or plot metric={fits['metric']!r}"
        )


def _check_floor(floor: float | None) -> None:
    if floor is not None and not (_is_number(floor) and math.isfinite(floor) and floor > 0):
        raise ValueError(
            f"floor must be a positive number in the plotted metric's units, or None; got {floor!r}"
        )


def _new_axes(title: str):
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogFormatter

    figure = Figure(figsize=(7.0, 5.0), dpi=120)
    axes = figure.add_subplot(1, 1, 1)
    axes.set_xscale("log")
    axes.set_yscale("log")
    # Losses usually span less than a decade, where default log ticks leave the axis unlabelled.
    axes.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    return figure, axes


def _models_in_order(cells: list[Mapping[str, Any]]) -> list[tuple[str, list]]:
    groups: dict[str, list] = {}
    for cell in cells:
        groups.setdefault(str(cell["model"]), []).append(cell)
    return sorted(groups.items(), key=lambda item: float(item[1][0]["n_params"]))


def _save(figure, path) -> str:
    from pathlib import Path

    target = Path(path)
    if not target.parent.exists():
        raise FileNotFoundError(f"cannot write plot {target}: folder {target.parent} does not exist")
    figure.tight_layout()
    figure.savefig(target, format="png")
    return str(target)


def plot_scaling(
    records: Sequence[Mapping[str, Any]],
    fits: Mapping[str, Any] | None,
    path,
    floor: float | None = None,
    metric: str = "val_loss",
    floor_label: str = "entropy floor",
) -> str:
    """Log-log plot of ``metric`` against training tokens, one colour per model size.

    ``fits`` is the dict from :func:`fit_study` (or None for points only); each model's fitted data law is
    drawn solid over the measured range and dashed where it extrapolates (to 10x the largest D). Without a
    data law for a model the joint law is drawn instead (dotted). ``floor`` is drawn as a horizontal line and
    must be in the same units as ``metric`` (nats/token for val_loss, bits/byte for val_bpb).
    """
    _check_fits_metric(fits, metric)
    _check_floor(floor)
    cells, _ = validate_records(records, metric)
    figure, axes = _new_axes(f"Data scaling: {metric} vs training tokens")
    data_laws = (fits or {}).get("data_laws", {})
    joint = (fits or {}).get("joint")
    for index, (name, group) in enumerate(_models_in_order(cells)):
        color = f"C{index % 10}"
        tokens = np.array([cell["tokens"] for cell in group], dtype=float)
        values = np.array([cell[metric] for cell in group], dtype=float)
        order = np.argsort(tokens)
        n_params = float(group[0]["n_params"])
        axes.plot(tokens[order], values[order], "o", color=color, label=f"{name} (N={n_params:.3g})")
        inside = np.geomspace(tokens.min(), tokens.max(), 100)
        beyond = np.geomspace(tokens.max(), 10 * tokens.max(), 40)
        if name in data_laws:
            law = data_laws[name]
            axes.plot(inside, predict_loss(law, inside), "-", color=color)
            axes.plot(beyond, predict_loss(law, beyond), "--", color=color)
        elif joint is not None:
            axes.plot(inside, predict_loss(joint, inside, n_params), ":", color=color)
            axes.plot(beyond, predict_loss(joint, beyond, n_params), ":", color=color, alpha=0.5)
    if floor is not None:
        axes.axhline(
            floor, color="black", linestyle="-.", linewidth=1.0, label=f"{floor_label} = {floor:.4g}"
        )
    axes.set_xlabel("training tokens D")
    axes.set_ylabel(_metric_label(metric))
    if cells:
        axes.plot([], [], "k--", label="fit, extrapolated (10x D)")
        axes.legend(fontsize=8)
    return _save(figure, path)


def plot_loss_vs_compute(
    records: Sequence[Mapping[str, Any]],
    fits: Mapping[str, Any] | None,
    path,
    floor: float | None = None,
    metric: str = "val_loss",
    floor_label: str = "entropy floor",
) -> str:
    """Log-log plot of ``metric`` against training compute (6 N D FLOPs), one line per model size.

    With a joint fit, the compute-optimal frontier min over N of L(N, C / 6N) is overlaid: solid over the
    measured compute range, dashed beyond it (extrapolation, up to 100x the largest measured compute).
    """
    _check_fits_metric(fits, metric)
    _check_floor(floor)
    cells, _ = validate_records(records, metric)
    figure, axes = _new_axes(f"{metric} vs training compute")
    for index, (name, group) in enumerate(_models_in_order(cells)):
        flops = np.array([cell["flops"] for cell in group], dtype=float)
        values = np.array([cell[metric] for cell in group], dtype=float)
        order = np.argsort(flops)
        axes.plot(flops[order], values[order], "o-", color=f"C{index % 10}", label=name)
    joint = (fits or {}).get("joint")
    if joint is not None and cells:
        flops_all = np.array([cell["flops"] for cell in cells], dtype=float)
        spans = (
            (np.geomspace(flops_all.min(), flops_all.max(), 60), "-", "compute-optimal frontier (joint fit)"),
            (np.geomspace(flops_all.max(), 100 * flops_all.max(), 40), "--", "frontier, extrapolated"),
        )
        for budgets, style, label in spans:
            frontier = [compute_optimal_split(joint, budget)["loss"] for budget in budgets]
            axes.plot(budgets, frontier, style, color="black", linewidth=1.2, label=label)
    if floor is not None:
        axes.axhline(floor, color="gray", linestyle="-.", linewidth=1.0, label=f"{floor_label} = {floor:.4g}")
    axes.set_xlabel("training compute C = 6 N D (FLOPs)")
    axes.set_ylabel(_metric_label(metric))
    if cells:
        axes.legend(fontsize=8)
    return _save(figure, path)
