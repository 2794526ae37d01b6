"""REPORT.md sections on what the fitted laws predict: losses and token counts beyond the measured cells,
compute-optimal splits, and the plain-language conclusions, each computed from the fitted numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wenlm.training.scaling.fit.laws import CHINCHILLA_TOKENS_PER_PARAM, compute_optimal_split, predict_loss
from wenlm.training.scaling.fit.study_fit import predict_interval
from wenlm.training.scaling.report.answer import chosen_fit, validated_error
from wenlm.training.scaling.report.formatting import fixed, percent, short
from wenlm.training.utils import markdown_table

__all__ = ["conclusions_section", "extrapolation_section"]


def _subsection(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    return [f"### {title}", "", markdown_table(header, rows), ""]


def _more_data_table(
    fit: Mapping[str, Any], cells, unit: str, error: float, floor: float | None
) -> list[str]:
    rows = []
    by_model: dict[str, Mapping[str, Any]] = {}
    for cell in cells:
        by_model.setdefault(str(cell["model"]), cell)
    largest = max(float(cell["tokens"]) for cell in cells)
    for name, cell in sorted(by_model.items(), key=lambda item: float(item[1]["n_params"])):
        n_params = float(cell["n_params"])
        for factor in (2, 10):
            tokens = factor * largest
            value = predict_loss(fit, tokens, n_params)
            low, high = (
                predict_interval(fit, tokens, n_params)
                if fit.get("bootstrap_draws") is not None
                else (None, None)
            )
            # A law may not predict below a known floor; a free fit whose E sits just under it is shown at the floor.
            shown = fixed(max(value, floor) if floor is not None else value)
            interval = f"[{fixed(low)}, {fixed(high)}]" if low is not None else "–"
            rows.append([name, f"{factor}× largest D = {short(tokens)}", shown, interval, percent(error, 1)])
    return _subsection(
        f"Predicted loss with more data ({unit})",
        ["model", "tokens D", "predicted loss", "95 % interval", "validated error"],
        rows,
    )


def _compute_optimal_table(
    joint: Mapping[str, Any],
    cells: Sequence[Mapping[str, Any]],
    unit: str,
    flops_budgets: Sequence[float] | None,
) -> list[str]:
    if flops_budgets is None:
        largest_flops = max(float(cell["flops"]) for cell in cells)
        flops_budgets = [largest_flops, 10 * largest_flops, 100 * largest_flops]
    rows = []
    for budget in flops_budgets:
        split = compute_optimal_split(joint, float(budget))
        status = "EXTRAPOLATION" + ("" if split["within_measured_range"] else " (outside measured N, D)")
        rows.append(
            [
                short(budget),
                short(split["n_params"]),
                short(split["tokens"]),
                fixed(split["tokens_per_param"], 3),
                fixed(split["loss"]),
                status,
            ]
        )
    measured = joint["measured_range"]
    return [
        "### Compute-optimal split under the joint law (6 N D = C)",
        "",
        f"Measured range: N from {short(measured['n_params'][0])} to {short(measured['n_params'][1])}, "
        f"D from {short(measured['tokens'][0])} to {short(measured['tokens'][1])}.",
        "",
        markdown_table(
            ["FLOPs C", "N optimal", "D optimal", "tokens/param", f"predicted loss ({unit})", "status"], rows
        ),
        "",
    ]


def extrapolation_section(
    fits: Mapping[str, Any],
    cells: Sequence[Mapping[str, Any]],
    unit: str,
    flops_budgets: Sequence[float] | None,
    floor: float | None = None,
) -> list[str]:
    """Predictions beyond the measured cells, only from an identified and validated fit."""
    lines = ["## Extrapolations", ""]
    name, fit, why = chosen_fit(fits)
    error = validated_error(fits)
    if fit is None or error is None:
        reason = why if fit is None else "the fit could not be checked on held-out cells"
        return [*lines, f"None: {reason}.", ""]
    lines += [
        "**Everything in this section is an EXTRAPOLATION** of the "
        + ("floor-constrained " if name == "joint_constrained" else "")
        + f"joint law beyond the measured cells. Its predictions for held-out cells were off by up to "
        f"{percent(error, 1)}; expect larger errors the further out a number goes.",
        "",
    ]
    lines += _more_data_table(fit, cells, unit, error, floor)
    lines += _compute_optimal_table(fit, cells, unit, flops_budgets)
    return lines


def conclusions_section(
    fits: Mapping[str, Any], floor: float | None, floor_label: str, metric: str
) -> list[str]:
    """Plain-language findings, each computed from the fitted numbers."""
    findings = []
    for name, fit in fits.get("data_laws", {}).items():
        low, high = fit["measured_range"]["tokens"]
        # Doubling from D_max / 2 to D_max stays inside the measured range when it spans at least a factor 2.
        start = max(high / 2, low)
        before, after = predict_loss(fit, start), predict_loss(fit, 2 * start)
        where = "within the measured range" if 2 * start <= high else "partly extrapolated"
        drop = (before - after) / before
        findings.append(
            f"{name}: doubling the data from {short(start)} to {short(2 * start)} tokens lowers {metric} by "
            f"{percent(drop)} ({fixed(before)} → {fixed(after)}, {where})."
        )
        params = fit["params"]
        observed_best = min(fit["inputs"]["loss"])
        reducible = (observed_best - params["E"]) / observed_best
        findings.append(
            f"{name}: the lowest measured loss is {fixed(observed_best)}, of which "
            f"{percent(reducible, 1)} lies above the fitted irreducible E = {fixed(params['E'])} and could still "
            "be removed by more data."
        )
        if fit["dof"] <= 0:
            findings.append(
                f"{name}: the fit has as many parameters as points; its numbers carry no error bars."
            )
    joint = fits.get("joint")
    if joint is not None and joint.get("identified"):
        params = joint["params"]
        split = compute_optimal_split(joint, max(joint["measured_range"]["flops"]))
        findings.append(
            f"Joint law: at the largest measured compute ({short(split['flops'])} FLOPs) the compute-optimal "
            f"allocation is {fixed(split['tokens_per_param'], 3)} tokens per parameter (Hoffmann et al. 2022 "
            f"report about {CHINCHILLA_TOKENS_PER_PARAM:.0f}); α = {fixed(params['alpha'], 3)} vs "
            f"β = {fixed(params['beta'], 3)} means "
            + (
                "model size should grow faster than data as compute grows."
                if params["beta"] > params["alpha"]
                else "data should grow faster than model size as compute grows."
            )
        )
    if floor is not None:
        estimates = [fit["params"]["E"] for fit in fits.get("data_laws", {}).values()]
        if estimates:
            closest = min(estimates, key=lambda value: abs(value - floor))
            findings.append(
                f"The fitted irreducible losses lie between {fixed(min(estimates))} and {fixed(max(estimates))}; "
                f"the closest is {fixed(closest - floor, 3)} from the {floor_label} ({fixed(floor)})."
            )
    if not findings:
        findings.append(
            "No law could be fitted, so there are no quantitative conclusions; see the skipped fits."
        )
    return ["## Conclusions", "", *[f"- {finding}" for finding in findings], ""]
