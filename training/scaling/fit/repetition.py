"""Repeated data (Muennighoff et al. 2023): how much a repeated epoch is worth compared with fresh tokens.

Training for ``epochs`` passes over ``U`` unique tokens is worth ``D'`` fresh tokens, with

    D' = U + U R* (1 - exp(-R / R*)),   R = epochs - 1 (the number of repetitions).

The first few repetitions are worth almost as much as new data; their value decays with a half-life set by R*,
and no amount of repetition is worth more than ``U (1 + R*)`` tokens. Muennighoff et al. fitted R* = 15.4 for
language models. Here the loss of a multi-epoch cell is predicted by the single-epoch data law of the same
model, ``L = E + B / D'^beta`` (E, B and beta held fixed, from that law), so R* is the only parameter: it is
fitted with the same Huber loss on log residuals as the main laws (delta = 1e-3), by a dense grid over log R*
refined with a bounded scalar search, and its interval comes from a bootstrap over the cells. The uncertainty
of E, B and beta is not propagated (the interval is conditional on the data law).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from wenlm.training.scaling.fit.law_fit import fit_data_law
from wenlm.training.scaling.fit.laws import is_real_number
from wenlm.training.scaling.fit.robust import huber

__all__ = ["PUBLISHED_R_STAR", "R_STAR_BOUNDS", "effective_tokens", "fit_repetition", "repetition_study"]

# Muennighoff et al. 2023, "Scaling Data-Constrained Language Models", fitted R*_D.
PUBLISHED_R_STAR = 15.4
# R* below 0.01: a repetition is worth under 1 % of fresh data; above 1e4: repetition never saturates within
# any epoch count a study could run. Either end means the cells do not determine R*.
R_STAR_BOUNDS = (0.01, 1e4)
FORMULA = "L = E + B / D'^beta with D' = U + U R* (1 - exp(-R / R*)), R = epochs - 1"
_HUBER_DELTA = 1e-3
_GRID_POINTS = 241
_MIN_BOOTSTRAP = 20
_REDRAWS = 50
_WIDE_FACTOR = 10.0


def effective_tokens(unique_tokens: Any, epochs: Any, r_star: float) -> Any:
    """D' = U + U R* (1 - exp(-(epochs - 1) / R*)): the fresh tokens that `epochs` passes over U are worth."""
    unique = np.asarray(unique_tokens, dtype=float)
    repetitions = np.asarray(epochs, dtype=float) - 1.0
    value = unique + unique * r_star * -np.expm1(-repetitions / r_star)
    return float(value) if np.ndim(value) == 0 else value


def _checked(unique_tokens: Any, epochs: Any, losses: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = {}
    for name, values in (("epochs", epochs), ("losses", losses)):
        try:
            arrays[name] = np.asarray(values, dtype=float).reshape(-1)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be a sequence of numbers; got {values!r:.80}") from error
    n_cells = len(arrays["losses"])
    if len(arrays["epochs"]) != n_cells:
        raise ValueError(
            f"epochs and losses must have equal length; got {len(arrays['epochs'])} and {n_cells}"
        )
    try:
        unique = np.broadcast_to(np.asarray(unique_tokens, dtype=float), (n_cells,)).copy()
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"unique_tokens must be one positive number or one per cell; got {unique_tokens!r:.80}"
        ) from error
    if not np.all(np.isfinite(unique) & (unique > 0)):
        raise ValueError(f"unique_tokens must be positive finite numbers; got {unique_tokens!r:.80}")
    if not np.all(np.isfinite(arrays["epochs"]) & (arrays["epochs"] >= 1)):
        raise ValueError(f"epochs must be numbers >= 1 (passes over the unique tokens); got {epochs!r:.80}")
    if not np.all(np.isfinite(arrays["losses"]) & (arrays["losses"] > 0)):
        raise ValueError("losses must be finite positive numbers; remove diverged cells before fitting")
    if n_cells < 2 or not np.any(arrays["epochs"] > 1):
        raise ValueError(
            "fit_repetition needs at least 2 cells, at least one trained for more than 1 epoch; got "
            f"{n_cells} cell(s) with epochs {arrays['epochs'].tolist()}. Run the epochs sub-study, e.g. 1,2,4,8,16."
        )
    return unique, arrays["epochs"], arrays["losses"]


class _Problem:
    """Huber loss of the log residuals as a function of log R*, for any weighting of the cells."""

    def __init__(self, unique, epochs, losses, law: tuple[float, float, float]):
        self.unique, self.epochs, self.log_loss = unique, epochs, np.log(losses)
        self.law = law
        self.grid = np.linspace(math.log(R_STAR_BOUNDS[0]), math.log(R_STAR_BOUNDS[1]), _GRID_POINTS)
        self.grid_losses = huber(self.log_predict(np.exp(self.grid)[:, None]) - self.log_loss, _HUBER_DELTA)

    def log_predict(self, r_star: Any) -> np.ndarray:
        irreducible, coefficient, exponent = self.law
        tokens = effective_tokens(self.unique, self.epochs, r_star)
        return np.log(irreducible + coefficient * np.asarray(tokens) ** -exponent)

    def solve(self, weights: np.ndarray) -> float:
        """log R* minimising the weighted objective: best grid point, refined between its neighbours."""
        index = int(np.argmin(self.grid_losses @ weights))
        low, high = self.grid[max(index - 1, 0)], self.grid[min(index + 1, _GRID_POINTS - 1)]
        result = minimize_scalar(
            lambda log_r: float(
                weights @ huber(self.log_predict(math.exp(log_r)) - self.log_loss, _HUBER_DELTA)
            ),
            bounds=(low, high),
            method="bounded",
            options={"xatol": 1e-6},
        )
        return float(result.x)


def _bootstrap(problem: _Problem, bootstrap: int, seed: int) -> np.ndarray:
    """R* refitted on resamples of the cells; a resample without a repeated cell says nothing and is redrawn."""
    rng = np.random.default_rng(seed)
    n_cells = len(problem.epochs)
    probabilities = np.full(n_cells, 1.0 / n_cells)
    repeated = problem.epochs > 1
    counts = rng.multinomial(n_cells, probabilities, size=bootstrap)
    for _ in range(_REDRAWS):
        bad = (counts[:, repeated] == 0).all(axis=1)
        if not bad.any():
            break
        counts[bad] = rng.multinomial(n_cells, probabilities, size=int(bad.sum()))
    counts = counts[(counts[:, repeated] > 0).any(axis=1)]
    return np.exp([problem.solve(row.astype(float)) for row in counts])


def _identification(r_star: float, interval: list[float] | None, top_epochs: float) -> dict[str, str | None]:
    low_bound, high_bound = R_STAR_BOUNDS
    more_epochs = (
        f"train the same unique tokens for more epochs than {top_epochs:g} (e.g. 2x and 4x that), each to "
        "convergence, until extra epochs visibly stop helping"
    )
    if r_star >= high_bound * 0.999:
        return {
            "reason": f"repetition never stopped helping within these epochs: R* above {high_bound:g}",
            "fix": more_epochs,
        }
    if r_star <= low_bound * 1.001:
        return {
            "reason": f"repeating the data did not help at all: R* at or below {low_bound:g}",
            "fix": "check that the multi-epoch cells trained to convergence; use fewer unique tokens so that "
            "repetition has room to help",
        }
    if interval is not None and (
        interval[1] >= high_bound * 0.999 or interval[1] > _WIDE_FACTOR * interval[0]
    ):
        return {
            "reason": f"the 95% interval of R*, [{interval[0]:.3g}, {interval[1]:.3g}], spans more than a factor "
            f"{_WIDE_FACTOR:g} or reaches the search bound",
            "fix": more_epochs + "; add cells at intermediate epoch counts",
        }
    return {"reason": None, "fix": None}


def fit_repetition(
    unique_tokens: Any,
    epochs: Sequence[float],
    losses: Sequence[float],
    E: float,
    B: float,
    beta: float,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit R* of the effective-data law to cells that trained ``epochs`` passes over ``unique_tokens`` (one
    number, or one per cell) and reached ``losses``; ``E``, ``B``, ``beta`` come from the single-epoch data law
    of the same model.

    Returns {"R_star", "ci95": [low, high] or None, "unique_tokens", "cells": [{"epochs", "observed",
    "predicted", "effective_tokens"}], "identified", "identification": {"reason", "fix"},
    "published_R_star": 15.4, "formula", "bootstrap": {"requested", "succeeded"}}.
    """
    for name, value in (("E", E), ("B", B), ("beta", beta)):
        if not (is_real_number(value) and math.isfinite(value) and value > 0):
            raise ValueError(
                f"{name} must be a positive number from the single-epoch data law; got {value!r}"
            )
    if not isinstance(bootstrap, (int, np.integer)) or isinstance(bootstrap, bool) or bootstrap < 0:
        raise ValueError(f"bootstrap must be a non-negative integer number of refits; got {bootstrap!r}")
    unique, epoch_values, loss_values = _checked(unique_tokens, epochs, losses)
    problem = _Problem(unique, epoch_values, loss_values, (float(E), float(B), float(beta)))
    r_star = math.exp(problem.solve(np.ones(len(loss_values))))
    draws = _bootstrap(problem, int(bootstrap), seed) if bootstrap > 0 else np.array([])
    interval = None
    if len(draws) >= _MIN_BOOTSTRAP:
        interval = [float(value) for value in np.percentile(draws, [2.5, 97.5])]
    identification = _identification(r_star, interval, float(epoch_values.max()))
    predicted = np.exp(problem.log_predict(r_star))
    cells = [
        {
            "epochs": float(n),
            "observed": float(observed),
            "predicted": float(fit),
            "effective_tokens": float(d),
        }
        for n, observed, fit, d in zip(
            epoch_values, loss_values, predicted, effective_tokens(unique, epoch_values, r_star), strict=True
        )
    ]
    return {
        "R_star": r_star,
        "ci95": interval,
        "unique_tokens": float(unique[0]) if np.all(unique == unique[0]) else unique.tolist(),
        "cells": cells,
        "identified": identification["reason"] is None,
        "identification": identification,
        "published_R_star": PUBLISHED_R_STAR,
        "formula": FORMULA,
        "data_law": {"E": float(E), "B": float(B), "beta": float(beta)},
        "bootstrap": {"requested": int(bootstrap), "succeeded": len(draws)},
    }


def repetition_study(records: list[dict], metric: str, bootstrap: int, seed: int) -> dict | None:
    """R* of the repetition sub-study: E, B and beta from its single-pass cells (U, 2U, 4U, ... unique tokens),
    then R* from the cells that pass several times over U (Muennighoff et al. 2023 fit in this order too)."""
    if not records:
        return None
    single = [r for r in records if r.get("epochs_requested") == 1 and r.get(metric) is not None]
    repeated = [r for r in records if r.get(metric) is not None]
    unique = min(float(r["tokens"]) for r in repeated)
    repeated = [r for r in repeated if float(r["tokens"]) == unique]
    try:
        base = fit_data_law(
            [r["tokens"] for r in single], [r[metric] for r in single], bootstrap=0, seed=seed
        )
        params = base["params"]
        result = fit_repetition(
            unique,
            [r["epochs_requested"] for r in repeated],
            [r[metric] for r in repeated],
            params["E"],
            params["B"],
            params["beta"],
            bootstrap=bootstrap,
            seed=seed,
        )
    except ValueError as error:
        return {"error": str(error)}
    result["model"] = str(records[0]["model"])
    result["single_pass_law"] = {"params": params, "n_points": base["n_points"]}
    return result
