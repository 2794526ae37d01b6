"""Robust least squares of one scaling law on log residuals, and the uncertainty of its parameters.

The residual is taken in log space, ``r = log L_fitted - log L_observed``, and minimised with a Huber loss
(Hoffmann et al. 2022, Approach 3). Log residuals weight every point by its *relative* error, which matches how
training-loss noise behaves (it scales with the loss) and stops the largest losses, at the smallest D, from
dominating the fit. The Huber loss keeps one bad cell (a diverged or mis-logged run) from dragging the
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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from wenlm.training.scaling.laws import LawSpec, is_real_number

__all__ = ["robust_fit"]

_MIN_HUBER_DELTA = 1e-4
_HUBER_TUNING = 1.345
_MAD_TO_SIGMA = 1.4826


def _log_residuals(spec: LawSpec, theta: np.ndarray, design: np.ndarray, log_loss: np.ndarray) -> np.ndarray:
    return np.log(spec.predict(theta, design)) - log_loss


def _huber_cost(residuals: np.ndarray, delta: float) -> float:
    absolute = np.abs(residuals)
    return float(np.sum(np.where(absolute <= delta, 0.5 * absolute**2, delta * (absolute - 0.5 * delta))))


def _clip_into_bounds(spec: LawSpec, theta: Sequence[float]) -> np.ndarray:
    lower = np.array(spec.lower)
    upper = np.array(spec.upper)
    # least_squares wants a strictly feasible start; nudge starts off the bounds by a hair.
    span = np.where(np.isfinite(upper - lower), upper - lower, 1.0)
    return np.clip(np.asarray(theta, dtype=float), lower + 1e-9 * span, upper - 1e-9 * span)


def _solve(
    spec: LawSpec,
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
    spec: LawSpec,
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


def _rank_starts(spec: LawSpec, starts: list[np.ndarray], design, log_loss, keep: int) -> list[np.ndarray]:
    scored = []
    for start in starts:
        theta = _clip_into_bounds(spec, start)
        residuals = _log_residuals(spec, theta, design, log_loss)
        if np.all(np.isfinite(residuals)):
            scored.append((float(np.sum(residuals**2)), theta))
    scored.sort(key=lambda item: item[0])
    return [theta for _, theta in scored[:keep]]


def _at_bounds(spec: LawSpec, theta: np.ndarray) -> list[str]:
    hits = []
    for name, value, lower, upper in zip(spec.names, theta, spec.lower, spec.upper, strict=True):
        tolerance = 1e-6 * max(1.0, abs(value))
        if value - lower <= tolerance or (np.isfinite(upper) and upper - value <= tolerance):
            hits.append(name)
    return hits


def _check_huber_delta(huber_delta: float | None) -> None:
    if huber_delta is not None and not (
        is_real_number(huber_delta) and huber_delta > 0 and math.isfinite(huber_delta)
    ):
        raise ValueError(f"huber_delta must be a positive number (log-residual units); got {huber_delta!r}")


def _fit_parameters(
    spec: LawSpec,
    ranked: list[np.ndarray],
    design: np.ndarray,
    log_loss: np.ndarray,
    huber_delta: float | None,
) -> tuple[np.ndarray, float]:
    """The Huber optimum and the threshold it was found with."""
    n_points = len(log_loss)
    dof = n_points - len(spec.names)
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
    return theta, delta


def _summary(
    spec: LawSpec,
    theta: np.ndarray,
    design: np.ndarray,
    loss_values: np.ndarray,
    delta: float,
    bootstrap: int,
) -> dict[str, Any]:
    """The fit as plain JSON values, before any uncertainty is added."""
    n_points, n_parameters = len(loss_values), len(spec.names)
    fitted = spec.predict(theta, design)
    log_residuals = np.log(fitted) - np.log(loss_values)
    residuals = loss_values - fitted
    return {
        "law": spec.kind,
        "formula": spec.formula,
        "params": spec.to_natural(theta),
        "stderr": None,
        "stderr_bootstrap": None,
        "ci95": None,
        "ci95_method": None,
        "n_points": n_points,
        "n_params": n_parameters,
        "dof": n_points - n_parameters,
        "underdetermined": None,
        "identifiable": None,
        "fitted": fitted.tolist(),
        "residuals": residuals.tolist(),
        "log_residuals": log_residuals.tolist(),
        "rmse": float(np.sqrt(np.mean(residuals**2))),
        "rmse_relative": float(np.sqrt(np.mean(log_residuals**2))),
        "loss_function": "huber on log residuals",
        "huber_delta": delta,
        "at_bounds": _at_bounds(spec, theta),
        "bootstrap": {"requested": int(bootstrap), "succeeded": 0, "method": None},
        "warnings": [],
    }


def robust_fit(
    spec: LawSpec,
    starts: list[np.ndarray],
    design: np.ndarray,
    loss_values: np.ndarray,
    bootstrap: int,
    seed: int,
    huber_delta: float | None,
) -> dict[str, Any]:
    """Fit `spec` from the best of `starts`; add uncertainties where the design and the dof allow them."""
    log_loss = np.log(loss_values)
    ranked = _rank_starts(spec, starts, design, log_loss, keep=6)
    _check_huber_delta(huber_delta)
    theta, delta = _fit_parameters(spec, ranked, design, log_loss, huber_delta)
    result = _summary(spec, theta, design, loss_values, delta, bootstrap)
    n_points, n_parameters, dof = result["n_points"], result["n_params"], result["dof"]
    jacobian = spec.jacobian(theta, design)
    rank = int(np.linalg.matrix_rank(jacobian, tol=1e-8 * np.linalg.norm(jacobian, 2)))
    identifiable = rank == n_parameters
    result.update(identifiable=identifiable, underdetermined=dof <= 0 or not identifiable)
    warnings = result["warnings"]
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
    if result["at_bounds"]:
        warnings.append(
            "parameter(s) "
            + ", ".join(result["at_bounds"])
            + " sit on a bound of the fit; the Jacobian error "
            "bars for them are not meaningful and the data do not constrain them well"
        )
    log_residuals = np.asarray(result["log_residuals"])
    _add_jacobian_intervals(result, spec, theta, jacobian, log_residuals)
    if bootstrap > 0:
        _add_bootstrap_intervals(result, spec, theta, design, log_residuals, bootstrap, seed, delta)
    return result


# ----------------------------------------------------------------------------------------------------------
# Uncertainty
# ----------------------------------------------------------------------------------------------------------


def _add_jacobian_intervals(
    result: dict[str, Any], spec: LawSpec, theta: np.ndarray, jacobian: np.ndarray, log_residuals: np.ndarray
) -> None:
    params = result["params"]
    sigma2 = float(np.sum(log_residuals**2)) / result["dof"]
    covariance = sigma2 * np.linalg.pinv(jacobian.T @ jacobian)
    scale = spec.natural_scale(theta)
    stderr = np.sqrt(np.clip(np.diag(covariance), 0.0, None)) * scale
    result["stderr"] = dict(zip(spec.names, (float(value) for value in stderr), strict=True))
    result["ci95"] = {
        name: [params[name] - 1.96 * error, params[name] + 1.96 * error]
        for name, error in result["stderr"].items()
    }
    result["ci95_method"] = "normal approximation from the Jacobian covariance"


def _add_bootstrap_intervals(
    result: dict[str, Any],
    spec: LawSpec,
    theta: np.ndarray,
    design: np.ndarray,
    log_residuals: np.ndarray,
    bootstrap: int,
    seed: int,
    delta: float,
) -> None:
    """Percentile intervals from refits; the Jacobian ones stay when too few refits converge."""
    draws = _residual_bootstrap(spec, theta, design, log_residuals, bootstrap, seed, delta)
    result["bootstrap"].update(
        succeeded=int(len(draws)),
        method="residual bootstrap: log residuals resampled with replacement onto the fitted curve",
    )
    if len(draws) < 20:
        result["warnings"].append(
            f"only {len(draws)} of {bootstrap} bootstrap refits converged; CI from Jacobian"
        )
        return
    lower, upper = np.percentile(draws, [2.5, 97.5], axis=0)
    result["ci95"] = {
        name: [float(low), float(high)] for name, low, high in zip(spec.names, lower, upper, strict=True)
    }
    result["ci95_method"] = f"bootstrap percentile interval ({len(draws)} refits)"
    result["stderr_bootstrap"] = dict(
        zip(spec.names, (float(value) for value in np.std(draws, axis=0, ddof=1)), strict=True)
    )


def _residual_bootstrap(
    spec: LawSpec,
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
