"""The first sections of REPORT.md: the answer to the user's question ("how much data does my model need?"),
the validation that earns the answer its trust (held-out cells, the known floor), and the repetition
sub-study. Extrapolations are printed only from a fit that is identified and validated, with the validated
error beside them, never below a known floor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from wenlm.training.scaling.fit.laws import tokens_for_target_loss
from wenlm.training.scaling.report.formatting import fixed, percent, short
from wenlm.training.utils import markdown_table

__all__ = [
    "CONTROL_E_TOLERANCE",
    "CONTROL_HOLDOUT_TOLERANCE",
    "answer_section",
    "chosen_fit",
    "repetition_section",
    "tokens_interval",
    "validated_error",
    "validation_section",
]

# The control on a corpus with a known floor (issue 12): the free fit's E within 5 % of the floor and the
# held-out-largest-D predictions within 3 % of the measured losses.
CONTROL_E_TOLERANCE = 0.05
CONTROL_HOLDOUT_TOLERANCE = 0.03
_NOT_IDENTIFIED = "not identified by these cells: "
_HOLDOUTS = (("largest_tokens", "largest D"), ("largest_n_params", "largest N"))


def chosen_fit(fits: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any] | None, str]:
    """(name, fit, why) of the fit the answer rests on: the floor-constrained joint fit when one was made and
    is identified, else the free joint fit when identified; else (None, None, the reason)."""
    reasons = []
    for name in ("joint_constrained", "joint"):
        fit = fits.get(name)
        if fit is None:
            continue
        if fit.get("identified"):
            return name, fit, ""
        identification = fit.get("identification") or {}
        reasons.append(f"{name.replace('_', ' ')}: {identification.get('reason') or 'not identified'}")
        if identification.get("fix"):
            reasons[-1] += f" (would fix it: {identification['fix']})"
    if not reasons:
        reasons.append(fits.get("skipped", {}).get("joint", "no joint law could be fitted"))
    return None, None, "; ".join(reasons)


def validated_error(fits: Mapping[str, Any]) -> float | None:
    errors = [
        result["max_abs_rel_error"]
        for result in (fits.get("holdout") or {}).values()
        if result is not None and result.get("max_abs_rel_error") is not None
    ]
    return max(errors) if errors else None


def tokens_interval(fit: Mapping[str, Any], target: float, n_params: float) -> tuple[float, float, float]:
    """(tokens, low, high) to reach `target` at `n_params` under the joint fit, the interval from its
    bootstrap draws; a draw that cannot reach the target counts as infinitely many tokens."""
    try:
        tokens = tokens_for_target_loss(fit, target, n_params)
    except ValueError:  # the target is at or below what this model can ever reach under the fit
        tokens = math.inf
    draws = fit.get("bootstrap_draws")
    if draws is None or len(draws) == 0:
        return tokens, math.nan, math.nan
    draws = np.asarray(draws, dtype=float)
    e, a, alpha, b, beta = (draws[:, index] for index in range(5))
    gaps = target - e - a / n_params**alpha
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        needed = np.where(gaps > 0, (b / np.where(gaps > 0, gaps, 1.0)) ** (1 / beta), np.inf)
    low, high = np.percentile(needed, [2.5, 97.5])
    return tokens, float(low), float(high)


def _headline_rows(fit, cells, unit: str, error: float, floor: float | None) -> list[list[str]]:
    rows = []
    largest_d = max(float(cell["tokens"]) for cell in cells)
    by_model: dict[str, Mapping[str, Any]] = {}
    for cell in cells:
        by_model.setdefault(str(cell["model"]), cell)
    for name, cell in sorted(by_model.items(), key=lambda item: float(item[1]["n_params"])):
        n_params = float(cell["n_params"])
        best = min(float(c["metric_value"]) for c in cells if str(c["model"]) == name)
        asymptote = fit["params"]["E"] + fit["params"]["A"] / n_params ** fit["params"]["alpha"]
        for fraction in (0.95, 0.90):
            target = best * fraction
            if floor is not None and target <= floor:
                continue
            if target <= asymptote:
                rows.append(
                    [
                        name,
                        fixed(target),
                        "unreachable",
                        "–",
                        f"below this model's limit {fixed(asymptote)}",
                        "–",
                    ]
                )
                continue
            tokens, low, high = tokens_interval(fit, target, n_params)
            interval = (
                f"[{short(low)}, {short(high) if math.isfinite(high) else '∞'}]"
                if math.isfinite(low)
                else "–"
            )
            rows.append(
                [
                    name,
                    fixed(target),
                    short(tokens),
                    interval,
                    f"{tokens / largest_d:.1f}× the largest measured D",
                    percent(error, 1),
                ]
            )
    return rows


def answer_section(
    fits: Mapping[str, Any], cells: Sequence[Mapping[str, Any]], unit: str, floor: float | None, metric: str
) -> list[str]:
    """'To reach X this model needs about D tokens [low, high]', from the validated fit, or why not."""
    lines = ["## How much data does each model need?", ""]
    name, fit, why = chosen_fit(fits)
    error = validated_error(fits)
    if fit is None:
        return [
            *lines,
            f"**No answer from these cells: the joint law is not identified by them.** {why}.",
            "",
        ]
    if error is None:
        return [
            *lines,
            "**No answer: the fit could not be validated** (no held-out prediction was possible: "
            f"{fits.get('skipped', {}).get('holdout_largest_tokens', 'too few cells')}). Add data sizes.",
            "",
        ]
    metric_cells = [{**cell, "metric_value": cell[metric]} for cell in cells]
    rows = _headline_rows(fit, metric_cells, unit, error, floor)
    label = (
        "the joint fit with E held at or above the floor" if name == "joint_constrained" else "the joint fit"
    )
    lines += [
        f"From {label}, L(N, D) = E + A/N^α + B/D^β. Targets are 5 % and 10 % below each model's best measured "
        f"{metric}; the interval is the 95 % bootstrap interval; **validated error** is the largest relative error "
        "of this law's predictions for cells it was not fitted on (see Validation) — read every number here as "
        "no more accurate than that, and less so the further beyond the measured range it goes.",
        "",
        markdown_table(
            [
                "model",
                f"target ({unit})",
                "tokens needed",
                "95 % interval",
                "beyond measured",
                "validated error",
            ],
            rows,
        )
        if rows
        else "No target below the best measured loss stays above the known floor.",
        "",
    ]
    return lines


def _holdout_rows(result: Mapping[str, Any]) -> list[list[str]]:
    return [
        [
            str(cell["model"]),
            short(cell["n_params"]),
            short(cell["tokens"]),
            fixed(cell["observed"]),
            fixed(cell["predicted"]),
            f"[{fixed(cell['low'])}, {fixed(cell['high'])}]",
            percent(cell["rel_error"], 1),
        ]
        for cell in result["cells"]
    ]


def validation_section(
    fits: Mapping[str, Any], unit: str, floor: float | None, floor_label: str, control: bool
) -> list[str]:
    """Held-out predictions and, on a corpus with a known floor, the control: E against the floor."""
    lines = ["## Validation", ""]
    header = ["model", "N", "D", f"observed ({unit})", "predicted", "95 % interval", "error"]
    for key, label in _HOLDOUTS:
        result = (fits.get("holdout") or {}).get(key)
        if result is None:
            reason = fits.get("skipped", {}).get(f"holdout_{key}", "too few cells")
            lines += [f"- Cells of the {label} held out: no prediction possible ({reason}).", ""]
            continue
        verdict = ""
        if control and key == "largest_tokens":
            ok = result["max_abs_rel_error"] <= CONTROL_HOLDOUT_TOLERANCE
            verdict = f" Control target ≤ {percent(CONTROL_HOLDOUT_TOLERANCE, 0)}: **{'met' if ok else 'NOT met'}**."
        lines += [
            f"### The {label} held out ({short(result['value'])})",
            "",
            f"The joint law fitted on the other {result['fit_cells']} cells predicts the cells of the {label}. Largest "
            f"error {percent(result['max_abs_rel_error'], 1)}.{verdict}",
            "",
            markdown_table(header, _holdout_rows(result)),
            "",
        ]
    if floor is not None:
        lines += _floor_rows(fits, floor, floor_label, unit, control)
    return lines


def _floor_rows(fits, floor: float, floor_label: str, unit: str, control: bool) -> list[str]:
    rows = []
    for name in ("joint", "joint_constrained"):
        fit = fits.get(name)
        if fit is None:
            continue
        value = fit["params"]["E"]
        interval = (fit.get("ci95") or {}).get("E")
        shown = f"[{fixed(interval[0])}, {fixed(interval[1])}]" if interval else "–"
        rows.append(
            [
                name.replace("_", " "),
                fixed(value),
                shown,
                percent((value - floor) / floor, 1),
                "yes"
                if fit.get("identified")
                else "no: "
                + ((fit.get("identification") or {}).get("reason") or "").removeprefix(_NOT_IDENTIFIED),
            ]
        )
    lines = [f"### Irreducible loss E against the {floor_label} ({fixed(floor)} {unit})", ""]
    lines += [markdown_table(["fit", f"E ({unit})", "95 % interval", "E vs floor", "identified"], rows), ""]
    if control and fits.get("joint") is not None:
        gap = abs(fits["joint"]["params"]["E"] - floor) / floor
        ok = gap <= CONTROL_E_TOLERANCE
        lines += [
            f"Control: the free fit's E is {percent(gap, 1)} from the exact floor; target ≤ "
            f"{percent(CONTROL_E_TOLERANCE, 0)}: **{'met' if ok else 'NOT met'}**.",
            "",
        ]
    return lines


def repetition_section(repetition: Mapping[str, Any] | None, unit: str) -> list[str]:
    """Muennighoff et al.'s effective-data law on the repeated cells: R* and what repeating is worth."""
    if not repetition:
        return []
    lines = ["## Repeating data", ""]
    if "error" in repetition:
        return [*lines, f"No repetition fit: {repetition['error']}", ""]
    low, high = repetition.get("ci95") or (math.nan, math.nan)
    r_star = repetition["R_star"]
    rows = [
        [
            f"{cell['epochs']:g}",
            fixed(cell["observed"]),
            fixed(cell["predicted"]),
            short(cell["effective_tokens"]),
            f"{cell['effective_tokens'] / repetition['unique_tokens']:.2f}×",
        ]
        for cell in sorted(repetition["cells"], key=lambda cell: cell["epochs"])
    ]
    status = (
        ""
        if repetition.get("identified")
        else (
            " **Not identified by these cells**: "
            + ((repetition.get("identification") or {}).get("reason") or "").removeprefix(_NOT_IDENTIFIED)
            + "."
        )
    )
    lines += [
        f"{repetition.get('model', 'The model')} trained for 1, 2, ... passes over the same "
        f"{short(repetition['unique_tokens'])} unique tokens. With the effective-data law D' = U + U·R*·(1 − "
        f"e^(−R/R*)) (R = passes − 1; Muennighoff et al. 2023), fitted with E, B and β of this model's single-pass "
        f"cells: **R* = {fixed(r_star, 3)}** [95 %: {fixed(low, 3)}, {fixed(high, 3)}] (published for large "
        f"models: {repetition.get('published_R_star', 15.4)}).{status}",
        "",
        markdown_table(["passes", f"observed ({unit})", "predicted", "effective tokens D'", "worth"], rows),
        "",
        "Read “worth” as: the passes over U unique tokens are worth that multiple of U in fresh tokens, under the "
        "fitted law; compare each repeated cell's observed loss with the single pass over as many fresh tokens "
        "(results.csv, `epochs_requested` 1)."
        + (
            f" Repeating stops paying once R is a few times R* (≈ {fixed(3 * r_star, 2)} repetitions here)."
            if repetition.get("identified")
            else ""
        ),
        "",
    ]
    return lines
