"""REPORT.md sections on what the fitted laws predict: losses and token counts beyond the measured cells,
compute-optimal splits, and the plain-language conclusions, each computed from the fitted numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wenlm.training.scaling.laws import (
    CHINCHILLA_TOKENS_PER_PARAM,
    compute_optimal_split,
    predict_loss,
    tokens_for_target_loss,
)
from wenlm.training.scaling.report_format import fixed, percent, short
from wenlm.training.utils import markdown_table

__all__ = ["conclusions_section", "extrapolation_section"]


def _subsection(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    return [f"### {title}", "", markdown_table(header, rows), ""]


def _more_data_table(data_laws: Mapping[str, Any], unit: str) -> list[str]:
    rows = []
    for name, fit in data_laws.items():
        largest = fit["measured_range"]["tokens"][1]
        for factor in (10, 100):
            tokens = factor * largest
            rows.append(
                [
                    name,
                    f"{factor}× largest D = {short(tokens)}",
                    fixed(predict_loss(fit, tokens)),
                    "EXTRAPOLATION",
                ]
            )
    return _subsection(
        f"Predicted loss with more data ({unit})", ["model", "tokens D", "predicted loss", "status"], rows
    )


def _target_loss_table(
    data_laws: Mapping[str, Any], unit: str, target_losses: Sequence[float] | None
) -> list[str]:
    if target_losses is None:
        best = min(min(fit["inputs"]["loss"]) for fit in data_laws.values())
        target_losses = [best * 0.98, best * 0.95]
    rows = []
    for name, fit in data_laws.items():
        low, high = fit["measured_range"]["tokens"]
        for target in target_losses:
            try:
                tokens = tokens_for_target_loss(fit, float(target))
            except ValueError:
                rows.append(
                    [name, fixed(target), "unreachable", f"target ≤ fitted E = {fixed(fit['params']['E'])}"]
                )
                continue
            status = "EXTRAPOLATION" if tokens > high or tokens < low else "interpolation"
            rows.append([name, fixed(target), short(tokens), status])
    return _subsection(
        f"Tokens needed to reach a target loss ({unit})",
        ["model", "target loss", "tokens needed", "status"],
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
    target_losses: Sequence[float] | None,
    flops_budgets: Sequence[float] | None,
) -> list[str]:
    data_laws = fits.get("data_laws", {})
    joint = fits.get("joint")
    if not data_laws and joint is None:
        return []
    lines = [
        "## Extrapolations",
        "",
        "**Everything in this section is an EXTRAPOLATION of the fitted laws beyond the measured cells** and "
        "inherits their uncertainty, which grows quickly outside the measured range.",
        "",
    ]
    if data_laws:
        lines += _more_data_table(data_laws, unit)
        lines += _target_loss_table(data_laws, unit, target_losses)
    if joint is not None:
        lines += _compute_optimal_table(joint, cells, unit, flops_budgets)
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
    if joint is not None and joint.get("identifiable", True):
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
