"""The scaling laws themselves: their formulas, how they are parametrised for fitting, and what a fitted law
predicts (loss at a size, tokens for a target loss, the compute-optimal split).

* the data law of one model size, ``L(D) = E + B / D^beta``;
* the joint (Chinchilla) law over model and data size, ``L(N, D) = E + A / N^alpha + B / D^beta``.

A fit is the plain dict :mod:`wenlm.training.scaling.fit` returns (keys ``law``, ``params``, ...); everything
here works on that dict, so a fit read back from fit.json predicts the same as a fresh one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CHINCHILLA_TOKENS_PER_PARAM",
    "DATA_LAW",
    "JOINT_LAW",
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
}

# Chinchilla's rule of thumb for compute-optimal training, used only as a reference point in reports.
CHINCHILLA_TOKENS_PER_PARAM = 20.0

_EXPONENT_BOUNDS = (1e-6, 2.0)
# Bounds on log A / log B: generous enough for any loss of order one at D, N up to ~1e30 with exponent <= 2,
# yet finite so that exp() can never overflow during the search.
_LOG_COEFF_BOUNDS = (-50.0, 150.0)


# ----------------------------------------------------------------------------------------------------------
# Model definitions (internal parametrisation: coefficients in log space so the optimiser sees O(1) numbers)
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LawSpec:
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


DATA_LAW = LawSpec(
    kind="data",
    formula="L(D) = E + B / D^beta",
    names=("E", "B", "beta"),
    log_coefficients=("B",),
    lower=(0.0, _LOG_COEFF_BOUNDS[0], _EXPONENT_BOUNDS[0]),
    upper=(np.inf, _LOG_COEFF_BOUNDS[1], _EXPONENT_BOUNDS[1]),
    predict=_data_predict,
    jacobian=_data_jacobian,
)

JOINT_LAW = LawSpec(
    kind="joint",
    formula="L(N, D) = E + A / N^alpha + B / D^beta",
    names=("E", "A", "alpha", "B", "beta"),
    log_coefficients=("A", "B"),
    lower=(0.0, _LOG_COEFF_BOUNDS[0], _EXPONENT_BOUNDS[0], _LOG_COEFF_BOUNDS[0], _EXPONENT_BOUNDS[0]),
    upper=(np.inf, _LOG_COEFF_BOUNDS[1], _EXPONENT_BOUNDS[1], _LOG_COEFF_BOUNDS[1], _EXPONENT_BOUNDS[1]),
    predict=_joint_predict,
    jacobian=_joint_jacobian,
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
