"""The scaling laws themselves: their formulas, how they are parametrised for fitting, and what a fitted law
predicts (loss at a size, tokens for a target loss, the compute-optimal split).

* the data law of one model size, ``L(D) = E + B / D^beta``;
* the joint (Chinchilla) law over model and data size, ``L(N, D) = E + A / N^alpha + B / D^beta``.

For fitting, E, A and B are carried as their logarithms (e, a, b) and a law is a sum of terms evaluated in log
space: ``log L = logsumexp(e, a - alpha log N, b - beta log D)`` (Hoffmann et al. 2022, Approach 3). The
coefficients span many orders of magnitude (B is 1e2-1e5 for losses of order one), so in log space the
optimiser steps through numbers of order one, E, A and B stay positive without a constraint, and logsumexp
never overflows.

A fit is the plain dict :mod:`wenlm.training.scaling.fit.study_fit` returns (keys ``law``, ``params``, ...); everything
here works on that dict, so a fit read back from fit.json predicts the same as a fresh one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CHINCHILLA_TOKENS_PER_PARAM",
    "DATA_LAW",
    "EXPONENT_BOUNDS",
    "JOINT_LAW",
    "LOWEST_E",
    "METRIC_UNITS",
    "PUBLISHED_EXPONENTS",
    "LawSpec",
    "compute_optimal_split",
    "is_real_number",
    "predict_loss",
    "tokens_for_target_loss",
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
    "Besiroglu et al. 2024": {
        "beta": 0.3658,
        "alpha": 0.3478,
        "E": 1.82,
        "A": 482.01,
        "B": 2085.43,
        "form": "L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al.'s Approach 3 refitted on their data)",
    },
}

# Chinchilla's rule of thumb for compute-optimal training, used only as a reference point in reports.
CHINCHILLA_TOKENS_PER_PARAM = 20.0

# Exponents in [0, 2.5]: published data and model exponents are 0.07-0.8, so 2.5 only stops a runaway search;
# an exponent that ends on either end is reported as not identified.
EXPONENT_BOUNDS = (0.0, 2.5)
# The free fit keeps E >= 1e-6 (in the metric's units): far below any real loss floor, so a fit that ends
# there found no floor at all, which is what the identification check reports.
LOWEST_E = 1e-6
# Bounds on log A / log B: generous enough for any loss of order one at D, N up to ~1e30 with exponent <= 2.5,
# yet finite so that a runaway search stays finite.
_LOG_COEFF_BOUNDS = (-50.0, 200.0)


# ----------------------------------------------------------------------------------------------------------
# Model definitions: a law is a constant term plus power terms, each evaluated in log space
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LawSpec:
    """One law. ``powers`` lists (coefficient index, exponent index, design row) per power term; the
    irreducible term's log is always parameter 0. A design is an array (rows = log N and/or log D, cells)."""

    kind: str
    formula: str
    names: tuple[str, ...]  # natural parameter names, in internal order
    log_coefficients: tuple[str, ...]  # natural names whose internal value is log(value)
    powers: tuple[tuple[int, int, int], ...]
    design_rows: tuple[str, ...]  # what each design row holds: "n_params" or "tokens", as its log

    def to_natural(self, theta: np.ndarray) -> dict[str, float]:
        return {
            name: float(math.exp(value) if name in self.log_coefficients else value)
            for name, value in zip(self.names, theta, strict=True)
        }

    def natural_columns(self, thetas: np.ndarray) -> np.ndarray:
        """Rows of internal parameters -> rows of natural ones (same column order as ``names``)."""
        natural = np.array(thetas, dtype=float, copy=True)
        for index, name in enumerate(self.names):
            if name in self.log_coefficients:
                natural[..., index] = np.exp(natural[..., index])
        return natural

    def bounds(self, lowest_e: float) -> list[tuple[float | None, float | None]]:
        """L-BFGS-B bounds on the internal parameters, with E >= ``lowest_e``."""
        limits: list[tuple[float | None, float | None]] = [(math.log(lowest_e), None)]
        for name in self.names[1:]:
            limits.append(_LOG_COEFF_BOUNDS if name in self.log_coefficients else EXPONENT_BOUNDS)
        return limits

    def _terms(self, thetas: np.ndarray, design: np.ndarray) -> np.ndarray:
        """Log of each term, shape (terms, *thetas.shape[:-1], cells)."""
        thetas = np.asarray(thetas, dtype=float)
        terms = [np.broadcast_to(thetas[..., 0:1], (*thetas.shape[:-1], design.shape[1]))]
        for coefficient, exponent, row in self.powers:
            terms.append(
                thetas[..., coefficient : coefficient + 1]
                - thetas[..., exponent : exponent + 1] * design[row]
            )
        return np.stack(terms)

    def log_predict(self, thetas: np.ndarray, design: np.ndarray) -> np.ndarray:
        """log L for one parameter vector (shape (P,)) or a batch of them (shape (G, P))."""
        return np.logaddexp.reduce(self._terms(thetas, design), axis=0)

    def log_predict_and_shares(self, theta: np.ndarray, design: np.ndarray) -> tuple[np.ndarray, list]:
        """log L at one parameter vector and each term's share of L (the softmax of the log terms).

        Written out term by term rather than through _terms: this runs thousands of times per bootstrap on
        arrays of a few cells, where the cost is the number of numpy calls."""
        powers = [
            theta[coefficient] - theta[exponent] * design[row] for coefficient, exponent, row in self.powers
        ]
        largest = powers[0]
        for term in powers[1:]:
            largest = np.maximum(largest, term)
        largest = np.maximum(largest, theta[0])
        scaled = [np.exp(theta[0] - largest), *(np.exp(term - largest) for term in powers)]
        total = sum(scaled[1:], scaled[0])
        return largest + np.log(total), [term / total for term in scaled]

    def gradient(self, shares: list, design: np.ndarray, slope: np.ndarray) -> np.ndarray:
        """d/d theta of sum(slope * log L), from the shares of log_predict_and_shares."""
        gradient = np.empty(len(self.names))
        gradient[0] = shares[0] @ slope
        for share, (coefficient, exponent, row) in zip(shares[1:], self.powers, strict=True):
            weighted = share * slope
            gradient[coefficient] = weighted.sum()
            gradient[exponent] = -(weighted @ design[row])
        return gradient

    def log_predict_and_jacobian(
        self, theta: np.ndarray, design: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """log L at one parameter vector and d log L / d theta (cells x parameters)."""
        log_fitted, shares = self.log_predict_and_shares(np.asarray(theta, dtype=float), design)
        jacobian = np.zeros((design.shape[1], len(self.names)))
        jacobian[:, 0] = shares[0]
        for share, (coefficient, exponent, row) in zip(shares[1:], self.powers, strict=True):
            jacobian[:, coefficient] = share
            jacobian[:, exponent] = -share * design[row]
        return log_fitted, jacobian


DATA_LAW = LawSpec(
    kind="data",
    formula="L(D) = E + B / D^beta",
    names=("E", "B", "beta"),
    log_coefficients=("E", "B"),
    powers=((1, 2, 0),),
    design_rows=("tokens",),
)

JOINT_LAW = LawSpec(
    kind="joint",
    formula="L(N, D) = E + A / N^alpha + B / D^beta",
    names=("E", "A", "alpha", "B", "beta"),
    log_coefficients=("E", "A", "B"),
    powers=((1, 2, 0), (3, 4, 1)),
    design_rows=("n_params", "tokens"),
)


def is_real_number(value: Any) -> bool:
    """A real number, numpy scalars included (bools are not numbers here); finiteness is checked by callers."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


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
    if not (is_real_number(target_loss) and math.isfinite(target_loss)):
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
    if not (is_real_number(flops_budget) and math.isfinite(flops_budget) and flops_budget > 0):
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
