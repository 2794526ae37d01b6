"""The robust fit of one scaling law to a set of cells, its bootstrap intervals, and whether the cells
identify it at all.

The method is Hoffmann et al. 2022, Approach 3, as Besiroglu et al. 2024 corrected and re-ran it:

* **Residuals in log space**, ``r = log L_fitted - log L_observed``: every cell is weighted by its *relative*
  error, which is how run-to-run noise of a training loss behaves, so the largest losses (smallest D) do not
  dominate the fit.
* **Huber loss with delta = 1e-3** on those residuals, the value both papers used. Residuals beyond 0.1 % enter
  linearly, so at realistic noise (0.3-1 % between runs) the fit is close to least absolute deviations: one bad
  cell (a diverged or mis-logged run) cannot drag the exponents, while the quadratic core keeps the objective
  differentiable for a gradient method.
* **Log-space coefficients** (e = log E, a = log A, b = log B; see :mod:`.laws`), so the optimiser moves through
  numbers of order one and E, A, B stay positive without a constraint.
* **L-BFGS-B from a grid of starts.** The objective is evaluated on the whole grid at once (numpy, one array per
  law), and L-BFGS-B with the analytic gradient runs from the best ten grid points; the best end point wins.
  The objective has several basins (E trades off against B and beta), so one start is not enough.
* **Bootstrap over cells** (Besiroglu et al.): cells are resampled with replacement and the law refitted, from
  the full-data optimum and the two grid points best for that resample; percentile intervals follow. A resample
  is a vector of counts on the original cells, so the design never changes and the grid's per-cell losses are
  computed once. A resample with too few distinct N or D to determine the law is redrawn (and skipped if
  redrawing keeps failing); ``bootstrap.succeeded`` counts the refits that were actually made.

A fit is then judged: ``identified`` is False, with the reason and the cells that would fix it, when a
parameter sits on a bound, when the 95 % interval of E, alpha or beta spans more than a factor 10, or when E
and its whole interval lie below a known floor of the loss.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from wenlm.training.scaling.fit.laws import EXPONENT_BOUNDS, LOWEST_E, LawSpec, is_real_number

__all__ = ["BOOTSTRAP_DRAWS", "check_huber_delta", "huber", "robust_fit", "strip_private"]

# The bootstrap parameter draws kept on a fit (rows = refits, columns = the law's names, natural units) so that
# intervals of predictions can be computed; a numpy array, removed by strip_private before JSON.
BOOTSTRAP_DRAWS = "bootstrap_draws"
_PRIVATE_KEYS = (BOOTSTRAP_DRAWS,)

# The grid of starts: E as fractions of the way from its lower bound to the lowest observed loss, log A and
# log B in 0..25 step 5, exponents in 0..2 step 0.5 (Besiroglu et al. used a grid of the same kind).
_GRID_E_FRACTIONS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.85, 0.95)
_GRID_LOG_COEFFICIENTS = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
_GRID_EXPONENTS = (0.0, 0.5, 1.0, 1.5, 2.0)
_FULL_FIT_STARTS = 10
_REFIT_GRID_STARTS = 2
_SCREEN_ITERATIONS = 25
_SCREEN_MARGIN = 0.1
# Fewer successful refits than this and the percentile interval is noise; the Jacobian one is kept instead.
_MIN_BOOTSTRAP = 20
_REDRAWS = 50
# Tight tolerances: the objective is divided by delta, so near the optimum it moves in steps of ~1e-4.
_LBFGSB_OPTIONS = {"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-10}
_WIDE_FACTOR = 10.0
_AT_BOUND = 1e-6


def huber(residuals: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss of each residual divided by delta (same minimiser; keeps the objective of order |r|)."""
    absolute = np.abs(residuals)
    return np.where(absolute <= delta, 0.5 * residuals**2, delta * (absolute - 0.5 * delta)) / delta


def check_huber_delta(huber_delta: Any) -> float:
    if not (is_real_number(huber_delta) and math.isfinite(huber_delta) and huber_delta > 0):
        raise ValueError(
            f"huber_delta must be a positive number (log-residual units, e.g. 1e-3); got {huber_delta!r}"
        )
    return float(huber_delta)


def strip_private(value: Any) -> Any:
    """A copy of a fit (or of fit_study's result, or anything holding fits) without the numpy arrays kept
    for predict_interval, ready for JSON. The argument is left unchanged."""
    if isinstance(value, Mapping):
        return {key: strip_private(item) for key, item in value.items() if key not in _PRIVATE_KEYS}
    if isinstance(value, (list, tuple)):
        return [strip_private(item) for item in value]
    return value


# ----------------------------------------------------------------------------------------------------------
# The optimisation
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    spec: LawSpec
    design: np.ndarray  # rows: log N and/or log D; columns: cells
    log_loss: np.ndarray
    delta: float
    lowest_e: float

    def objective(self, theta: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
        log_fitted, shares = self.spec.log_predict_and_shares(theta, self.design)
        residuals = log_fitted - self.log_loss
        absolute = np.abs(residuals)
        inside = absolute <= self.delta
        # huber() inlined with its derivative: this is the innermost loop of the bootstrap
        values = np.where(inside, 0.5 * residuals * residuals / self.delta, absolute - 0.5 * self.delta)
        slope = weights * np.where(inside, residuals / self.delta, np.sign(residuals))
        return float(weights @ values), self.spec.gradient(shares, self.design, slope)

    def minimise(
        self, start: np.ndarray, weights: np.ndarray, iterations: int | None = None
    ) -> tuple[np.ndarray, float]:
        # L-BFGS-B may stop on a failed line search at a kink of the nearly-L1 objective; its end point is
        # still the best it found, so the status is not used and the value decides between starts.
        options = _LBFGSB_OPTIONS if iterations is None else {**_LBFGSB_OPTIONS, "maxiter": iterations}
        result = minimize(
            self.objective,
            start,
            args=(weights,),
            jac=True,
            method="L-BFGS-B",
            bounds=self.spec.bounds(self.lowest_e),
            options=options,
        )
        return result.x, float(result.fun)

    def refit(self, theta: np.ndarray, grid_starts: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
        """A bootstrap refit: from the full-data optimum, and from each grid start for a short screening run
        that is carried to convergence only if it gets within 10 % of the first refit's objective. Running
        every grid start to convergence costs ~3x more (they start far away); on synthetic 15-cell studies it
        found a better optimum than the full-data start in 1 of 240 resamples, so the screen keeps a cheap
        guard against a resample whose optimum moved to another basin."""
        best, best_value = self.minimise(theta, weights)
        for start in grid_starts:
            screened, screened_value = self.minimise(start, weights, iterations=_SCREEN_ITERATIONS)
            if screened_value <= best_value * (1 + _SCREEN_MARGIN):
                candidate, value = self.minimise(screened, weights)
                if value < best_value:
                    best, best_value = candidate, value
        if not (math.isfinite(best_value) and np.all(np.isfinite(best))):
            return None
        return best

    def best_of(self, starts: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray | None, float]:
        best_theta, best_value = None, math.inf
        for start in starts:
            theta, value = self.minimise(start, weights)
            if math.isfinite(value) and np.all(np.isfinite(theta)) and value < best_value:
                best_theta, best_value = theta, value
        return best_theta, best_value

    def grid(self) -> np.ndarray:
        """The grid of starts, one row per start, clipped into the bounds."""
        lowest_loss = float(np.exp(self.log_loss.min()))
        gap = max(lowest_loss - self.lowest_e, 0.0)
        axes = [np.unique(np.log(self.lowest_e + gap * np.array(_GRID_E_FRACTIONS)))]
        for name in self.spec.names[1:]:
            axes.append(
                np.array(_GRID_LOG_COEFFICIENTS if name in self.spec.log_coefficients else _GRID_EXPONENTS)
            )
        return np.array(list(product(*axes)), dtype=float)

    def grid_losses(self, grid: np.ndarray) -> np.ndarray:
        """Huber loss of every cell at every grid point, shape (grid points, cells)."""
        return huber(self.spec.log_predict(grid, self.design) - self.log_loss, self.delta)


def _supports_fit(counts: np.ndarray, design: np.ndarray, n_parameters: int) -> np.ndarray:
    """Which resamples (rows of per-cell counts) can determine the law: as many distinct cells as parameters
    and at least min(3, what the full data has) distinct values of every design row (N, D)."""
    present = counts > 0
    supported = present.sum(axis=1) >= n_parameters
    for row in design:
        _, labels = np.unique(row, return_inverse=True)
        membership = np.eye(labels.max() + 1)[labels]
        distinct = ((present @ membership) > 0).sum(axis=1)
        supported &= distinct >= min(3, membership.shape[1])
    return supported


def _draw_resamples(rng: np.random.Generator, problem: _Problem, draws: int) -> tuple[np.ndarray, int]:
    """Per-cell counts of `draws` resamples that can support a fit, and how many draws were redrawn."""
    n_cells = problem.design.shape[1]
    n_parameters = len(problem.spec.names)
    probabilities = np.full(n_cells, 1.0 / n_cells)
    counts = rng.multinomial(n_cells, probabilities, size=draws)
    redrawn = 0
    for _ in range(_REDRAWS):
        bad = ~_supports_fit(counts, problem.design, n_parameters)
        if not bad.any():
            break
        redrawn += int(bad.sum())
        counts[bad] = rng.multinomial(n_cells, probabilities, size=int(bad.sum()))
    return counts[_supports_fit(counts, problem.design, n_parameters)], redrawn


def _cell_bootstrap(
    problem: _Problem, theta: np.ndarray, grid: np.ndarray, grid_losses: np.ndarray, draws: int, seed: int
) -> tuple[np.ndarray, int]:
    """Refitted parameters (internal units) of the supported resamples, and the number of redraws."""
    rng = np.random.default_rng(seed)
    counts, redrawn = _draw_resamples(rng, problem, draws)
    scores = grid_losses @ counts.T.astype(float)  # (grid points, resamples): the grid ranked per resample
    samples = []
    for index, row in enumerate(counts):
        best_grid = np.argpartition(scores[:, index], _REFIT_GRID_STARTS)[:_REFIT_GRID_STARTS]
        refit = problem.refit(theta, grid[best_grid], row.astype(float))
        if refit is not None:
            samples.append(refit)
    return np.asarray(samples, dtype=float).reshape(-1, len(theta)), redrawn


# ----------------------------------------------------------------------------------------------------------
# The fit and its uncertainty
# ----------------------------------------------------------------------------------------------------------


def _at_bounds(problem: _Problem, theta: np.ndarray) -> list[str]:
    hits = []
    for name, value, (lower, upper) in zip(
        problem.spec.names, theta, problem.spec.bounds(problem.lowest_e), strict=True
    ):
        if (lower is not None and value - lower <= _AT_BOUND) or (
            upper is not None and upper - value <= _AT_BOUND
        ):
            hits.append(name)
    return hits


def _summary(problem: _Problem, theta: np.ndarray, loss_values: np.ndarray, bootstrap: int) -> dict[str, Any]:
    """The fit as plain JSON values, before any uncertainty is added."""
    spec = problem.spec
    n_points, n_parameters = len(loss_values), len(spec.names)
    log_fitted = spec.log_predict(theta, problem.design)
    fitted = np.exp(log_fitted)
    log_residuals = log_fitted - problem.log_loss
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
        "identified": False,
        "identification": {"reason": None, "fix": None},
        "fitted": fitted.tolist(),
        "residuals": residuals.tolist(),
        "log_residuals": log_residuals.tolist(),
        "rmse": float(np.sqrt(np.mean(residuals**2))),
        "rmse_relative": float(np.sqrt(np.mean(log_residuals**2))),
        "loss_function": f"huber (delta {problem.delta:g}) on log residuals",
        "huber_delta": problem.delta,
        "at_bounds": _at_bounds(problem, theta),
        "bootstrap": {"requested": int(bootstrap), "succeeded": 0, "redrawn": 0, "method": None},
        "warnings": [],
    }


def _add_jacobian_intervals(
    result: dict[str, Any], spec: LawSpec, theta: np.ndarray, jacobian: np.ndarray
) -> None:
    """Standard errors (delta method to natural units) and normal intervals taken in the internal, log-space
    parameters, so intervals of E, A, B stay positive."""
    log_residuals = np.asarray(result["log_residuals"])
    sigma2 = float(np.sum(log_residuals**2)) / result["dof"]
    internal = np.sqrt(np.clip(np.diag(sigma2 * np.linalg.pinv(jacobian.T @ jacobian)), 0.0, None))
    natural = spec.natural_columns(theta)
    scale = np.where([name in spec.log_coefficients for name in spec.names], natural, 1.0)
    lower = spec.natural_columns(theta - 1.96 * internal)
    upper = spec.natural_columns(theta + 1.96 * internal)
    result["stderr"] = {name: float(value) for name, value in zip(spec.names, internal * scale, strict=True)}
    result["ci95"] = {
        name: [float(low), float(high)] for name, low, high in zip(spec.names, lower, upper, strict=True)
    }
    result["ci95_method"] = "normal approximation from the Jacobian covariance (log scale for E, A, B)"


def _add_bootstrap_intervals(
    result: dict[str, Any],
    problem: _Problem,
    theta: np.ndarray,
    grid: np.ndarray,
    grid_losses: np.ndarray,
    seed: int,
) -> None:
    """Percentile intervals from cell-bootstrap refits; the Jacobian ones stay when too few refits exist."""
    requested = result["bootstrap"]["requested"]
    internal, redrawn = _cell_bootstrap(problem, theta, grid, grid_losses, requested, seed)
    draws = problem.spec.natural_columns(internal)
    result["bootstrap"].update(
        succeeded=len(draws),
        redrawn=redrawn,
        method="cell bootstrap: cells resampled with replacement and the law refitted, percentile intervals",
    )
    if len(draws) < _MIN_BOOTSTRAP:
        result["warnings"].append(
            f"only {len(draws)} of {requested} bootstrap refits could be made; intervals from the Jacobian"
        )
        return
    names = problem.spec.names
    lower, upper = np.percentile(draws, [2.5, 97.5], axis=0)
    result["ci95"] = {
        name: [float(low), float(high)] for name, low, high in zip(names, lower, upper, strict=True)
    }
    result["ci95_method"] = f"bootstrap percentile interval ({len(draws)} cell resamples)"
    result["stderr_bootstrap"] = {
        name: float(value) for name, value in zip(names, np.std(draws, axis=0, ddof=1), strict=True)
    }
    result[BOOTSTRAP_DRAWS] = draws


def robust_fit(
    spec: LawSpec,
    design: np.ndarray,
    loss_values: np.ndarray,
    bootstrap: int,
    seed: int,
    huber_delta: float,
    floor: float | None = None,
    constrained: bool = False,
) -> dict[str, Any]:
    """Fit `spec` to the cells (``design`` rows log N / log D, ``loss_values`` positive); add uncertainties
    where the design and the degrees of freedom allow them, and judge whether the cells identify the law.
    With ``constrained`` the fit keeps E >= ``floor``; otherwise E >= 1e-6 and ``floor`` (if any) is a check."""
    problem = _Problem(
        spec,
        np.asarray(design, dtype=float),
        np.log(loss_values),
        check_huber_delta(huber_delta),
        float(floor) if constrained else LOWEST_E,
    )
    # One BLAS thread: L-BFGS-B makes thousands of tiny BLAS/LAPACK calls, and a multithreaded OpenBLAS
    # spinning on a machine busy with training made a refit ~100x slower (measured on a 2-core machine).
    with threadpool_limits(limits=1, user_api="blas"):
        result = _fit_and_judge(problem, loss_values, bootstrap, seed)
    result.update(floor=None if floor is None else float(floor), constrained=bool(constrained))
    _judge(result, spec, problem.design)
    return result


def _fit_and_judge(problem: _Problem, loss_values: np.ndarray, bootstrap: int, seed: int) -> dict[str, Any]:
    """The best fit from the grid's best starts, its Jacobian rank, and its intervals where they exist."""
    spec = problem.spec
    n_cells = len(loss_values)
    grid = problem.grid()
    grid_losses = problem.grid_losses(grid)
    ranked = grid[np.argsort(grid_losses.sum(axis=1))[:_FULL_FIT_STARTS]]
    theta, _ = problem.best_of(ranked, np.ones(n_cells))
    if theta is None:
        raise RuntimeError(
            f"every start of the {spec.kind}-law fit failed; check the inputs for absurd values"
        )
    result = _summary(problem, theta, loss_values, bootstrap)
    _, jacobian = spec.log_predict_and_jacobian(theta, problem.design)
    rank = int(np.linalg.matrix_rank(jacobian, tol=1e-8 * np.linalg.norm(jacobian, 2)))
    identifiable = rank == len(spec.names)
    result.update(
        identifiable=identifiable, underdetermined=result["dof"] <= 0 or not identifiable, jacobian_rank=rank
    )
    if identifiable and result["dof"] > 0:
        _add_jacobian_intervals(result, spec, theta, jacobian)
        if bootstrap > 0:
            _add_bootstrap_intervals(result, problem, theta, grid, grid_losses, seed)
    return result


# ----------------------------------------------------------------------------------------------------------
# Identification: do these cells pin the law down?
# ----------------------------------------------------------------------------------------------------------


def _fixes(spec: LawSpec, design: np.ndarray) -> dict[str, str]:
    """What cells would pin down each kind of parameter, in terms of this study's largest N and D."""
    largest = {row: float(np.exp(values.max())) for row, values in zip(spec.design_rows, design, strict=True)}
    beyond = f"add data sizes beyond the largest D ({largest['tokens']:.3g} tokens), e.g. 4x and 16x it"
    more_data = (
        beyond + ", and train every cell to convergence (more epochs / early stopping) so the curve visibly "
        "bends towards its floor"
    )
    fixes = {"E": more_data, "beta": more_data, "B": more_data}
    fixes["floor"] = (
        "the cells are probably under-trained (a small cell's loss then falls with more optimiser steps, not "
        f"only with more data): train each cell to convergence, {beyond}, or impose E >= floor (constrain_floor)"
    )
    if "n_params" in largest:
        fixes["alpha"] = fixes["A"] = (
            f"add a larger model than N = {largest['n_params']:.3g} (and more model sizes), each trained to "
            "convergence at the same data sizes"
        )
    return fixes


def _bound_reasons(result: dict[str, Any], spec: LawSpec) -> list[tuple[str, str]]:
    reasons = []
    params = result["params"]
    for name in result["at_bounds"]:
        if name == "E":
            if not result["constrained"]:
                reasons.append(
                    ("E", f"E sits at its lower bound ({LOWEST_E:g}): the losses show no floor yet")
                )
        elif name in spec.log_coefficients:
            reasons.append((name, f"{name} = {params[name]:.3g} sits at a bound of the search"))
        else:
            which = (
                "0"
                if params[name] <= EXPONENT_BOUNDS[0] + _AT_BOUND
                else f"its upper bound {EXPONENT_BOUNDS[1]:g}"
            )
            reasons.append((name, f"{name} sits at {which}"))
    return reasons


def _interval_reasons(result: dict[str, Any], spec: LawSpec) -> list[tuple[str, str]]:
    reasons = []
    for name in ("E", "alpha", "beta"):
        interval = (result["ci95"] or {}).get(name)
        if name not in spec.names or interval is None or name in result["at_bounds"]:
            continue
        low, high = interval
        if low <= 0 or high > _WIDE_FACTOR * low:
            reasons.append(
                (
                    name,
                    f"the 95% interval of {name}, [{low:.3g}, {high:.3g}], spans more than a factor {_WIDE_FACTOR:g}",
                )
            )
    return reasons


def _floor_reason(result: dict[str, Any]) -> list[tuple[str, str]]:
    floor, value = result["floor"], result["params"]["E"]
    interval = (result["ci95"] or {}).get("E")
    if floor is None or result["constrained"] or value >= floor:
        return []
    if interval is None:
        result["warnings"].append(
            f"E = {value:.4g} is below the floor {floor:.4g}; no interval to judge it by"
        )
        return []
    if interval[1] >= floor:
        return []
    return [
        (
            "floor",
            f"floor-violating: E = {value:.4g} and its whole 95% interval [{interval[0]:.4g}, {interval[1]:.4g}] "
            f"lie below the known floor {floor:.4g}",
        )
    ]


def _judge(result: dict[str, Any], spec: LawSpec, design: np.ndarray) -> None:
    """Set ``identified`` and ``identification`` {reason, fix}; keep the older warnings of the same facts."""
    fixes = _fixes(spec, design)
    reasons: list[tuple[str, str]] = []
    n_parameters, rank = len(spec.names), result["jacobian_rank"]
    if not result["identifiable"]:
        reasons.append(
            ("rank", f"the cells do not separate all {n_parameters} parameters (Jacobian rank {rank})")
        )
        fixes["rank"] = (
            "train at least 3 model sizes, each at at least 3 data sizes"
            if spec.kind == "joint"
            else "train this model at more distinct data sizes"
        )
        result["warnings"].append(
            f"the design does not identify all {n_parameters} parameters (Jacobian rank {rank}); "
            "parameters trade off along a ridge, so no uncertainties are reported"
        )
        if spec.kind == "joint":
            result["warnings"].append(
                "a joint fit needs at least 3 distinct model sizes and 3 distinct data sizes to separate "
                "E, A and alpha; add model sizes"
            )
    elif result["dof"] <= 0:
        reasons.append(("dof", "as many parameters as cells: the law passes exactly through them"))
        fixes["dof"] = "add cells (more data sizes per model) so the fit has degrees of freedom left"
        result["warnings"].append(
            f"{result['n_points']} points and {n_parameters} parameters: the fit is exact (0 degrees of "
            "freedom), so no uncertainty can be estimated; add points to get error bars"
        )
    reasons += _bound_reasons(result, spec) + _interval_reasons(result, spec) + _floor_reason(result)
    if result["at_bounds"] and not (result["at_bounds"] == ["E"] and result["constrained"]):
        result["warnings"].append(
            "parameter(s) " + ", ".join(result["at_bounds"]) + " sit on a bound of the fit; the data do not "
            "constrain them"
        )
    if not reasons:
        result.update(identified=True, identification={"reason": None, "fix": None})
        return
    fix_texts = list(dict.fromkeys(fixes[key] for key, _ in reasons))
    result["identified"] = False
    result["identification"] = {
        "reason": "not identified by these cells: " + "; ".join(text for _, text in reasons),
        "fix": "; ".join(fix_texts),
    }
