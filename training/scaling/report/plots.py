"""The study's two figures: loss against training tokens (scaling.png) and against compute
(loss_vs_compute.png), each with the fitted laws drawn over the measured points.

matplotlib Figure objects are used directly, not pyplot, so no global backend state is touched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from wenlm.training.scaling.fit.laws import METRIC_UNITS, compute_optimal_split, is_real_number, predict_loss
from wenlm.training.scaling.fit.study_fit import validate_records
from wenlm.training.scaling.report.answer import chosen_fit

__all__ = ["plot_loss_vs_compute", "plot_scaling"]

Records = Sequence[Mapping[str, Any]]
Fits = Mapping[str, Any] | None


def _metric_label(metric: str) -> str:
    unit = METRIC_UNITS.get(metric)
    return f"{metric} ({unit})" if unit else metric


def _check_fits_metric(fits: Fits, metric: str) -> None:
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
    if floor is not None and not (is_real_number(floor) and math.isfinite(floor) and floor > 0):
        raise ValueError(
            f"floor must be a positive number in the plotted metric's units, or None; got {floor!r}"
        )


def _start(records: Records, fits: Fits, floor: float | None, metric: str, title: str):
    """Checked inputs, the usable cells and log-log axes titled `title`."""
    _check_fits_metric(fits, metric)
    _check_floor(floor)
    cells, _ = validate_records(records, metric)
    figure = Figure(figsize=(7.0, 5.0), dpi=120)
    axes = figure.add_subplot(1, 1, 1)
    axes.set_xscale("log")
    axes.set_yscale("log")
    # Losses usually span less than a decade, where default log ticks leave the axis unlabelled.
    axes.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    return cells, figure, axes


def _models_in_order(cells: list[Mapping[str, Any]]) -> list[tuple[str, list]]:
    groups: dict[str, list] = {}
    for cell in cells:
        groups.setdefault(str(cell["model"]), []).append(cell)
    return sorted(groups.items(), key=lambda item: float(item[1][0]["n_params"]))


def _save(figure, path) -> str:
    target = Path(path)
    if not target.parent.exists():
        raise FileNotFoundError(f"cannot write plot {target}: folder {target.parent} does not exist")
    figure.tight_layout()
    figure.savefig(target, format="png")
    return str(target)


def _validated_factor(fits: Fits) -> float:
    """How far beyond the largest measured D a fit has been shown to predict: the factor between the largest D
    and the largest D the held-out fit saw (1: not validated, nothing drawn beyond the measured range)."""
    result = ((fits or {}).get("holdout") or {}).get("largest_tokens")
    if not result or not result.get("cells"):
        return 1.0
    seen = (result.get("fit") or {}).get("measured_range", {}).get("tokens")
    held = max(float(cell["tokens"]) for cell in result["cells"])
    return held / float(seen[1]) if seen else 1.0


def _draw_law(axes, tokens, values, style, color, floor):
    """A fitted curve, cut where it would cross a known floor (no law may predict below it)."""
    if floor is not None:
        keep = values >= floor
        tokens, values = tokens[keep], values[keep]
    if len(tokens):
        axes.plot(tokens, values, style, color=color)


def plot_scaling(
    records: Records, fits: Fits, path, floor: float | None = None, metric: str = "val_loss",
    floor_label: str = "entropy floor",
) -> str:  # fmt: skip
    """Log-log plot of ``metric`` against training tokens, one colour per model size.

    ``fits`` is the dict from :func:`fit_study` (or None for points only). The fit the report answers with
    (the floor-constrained joint law where made, else the free one) is drawn per model only when it is
    identified: solid over the measured range, dashed beyond it as far as the held-out validation reached,
    and never below ``floor``. Without such a fit each model's data law is drawn over its measured range
    only. ``floor`` (same units as ``metric``) is drawn as a horizontal line.
    """
    cells, figure, axes = _start(records, fits, floor, metric, f"Data scaling: {metric} vs training tokens")
    data_laws = (fits or {}).get("data_laws", {})
    joint = chosen_fit(fits or {})[1]
    factor = _validated_factor(fits)
    for index, (name, group) in enumerate(_models_in_order(cells)):
        color = f"C{index % 10}"
        tokens = np.array([cell["tokens"] for cell in group], dtype=float)
        values = np.array([cell[metric] for cell in group], dtype=float)
        order = np.argsort(tokens)
        n_params = float(group[0]["n_params"])
        axes.plot(tokens[order], values[order], "o", color=color, label=f"{name} (N={n_params:.3g})")
        inside = np.geomspace(tokens.min(), tokens.max(), 100)
        if joint is not None:
            _draw_law(axes, inside, predict_loss(joint, inside, n_params), "-", color, floor)
            if factor > 1:
                beyond = np.geomspace(tokens.max(), factor * tokens.max(), 40)
                _draw_law(axes, beyond, predict_loss(joint, beyond, n_params), "--", color, floor)
        elif name in data_laws:
            _draw_law(axes, inside, predict_loss(data_laws[name], inside), "-", color, floor)
    if floor is not None:
        axes.axhline(
            floor, color="black", linestyle="-.", linewidth=1.0, label=f"{floor_label} = {floor:.4g}"
        )
    axes.set_xlabel("training tokens D (unique)")
    axes.set_ylabel(_metric_label(metric))
    if cells:
        if joint is not None and factor > 1:
            axes.plot([], [], "k--", label=f"joint fit beyond the data, as far as validated ({factor:.3g}x)")
        axes.legend(fontsize=8)
    return _save(figure, path)


def plot_loss_vs_compute(
    records: Records, fits: Fits, path, floor: float | None = None, metric: str = "val_loss",
    floor_label: str = "entropy floor",
) -> str:  # fmt: skip
    """Log-log plot of ``metric`` against training compute (6 N D FLOPs), one line per model size.

    With a joint fit, the compute-optimal frontier min over N of L(N, C / 6N) is overlaid: solid over the
    measured compute range, dashed beyond it (extrapolation, up to 100x the largest measured compute).
    """
    cells, figure, axes = _start(records, fits, floor, metric, f"{metric} vs training compute")
    for index, (name, group) in enumerate(_models_in_order(cells)):
        flops = np.array([cell["flops"] for cell in group], dtype=float)
        values = np.array([cell[metric] for cell in group], dtype=float)
        order = np.argsort(flops)
        axes.plot(flops[order], values[order], "o-", color=f"C{index % 10}", label=name)
    joint = chosen_fit(fits or {})[1]
    if joint is not None and cells:
        flops_all = np.array([cell["flops"] for cell in cells], dtype=float)
        spans = (
            (np.geomspace(flops_all.min(), flops_all.max(), 60), "-", "compute-optimal frontier (joint fit)"),
            (np.geomspace(flops_all.max(), 100 * flops_all.max(), 40), "--", "frontier, extrapolated"),
        )
        for budgets, style, label in spans:
            frontier = np.array([compute_optimal_split(joint, budget)["loss"] for budget in budgets])
            keep = frontier >= floor if floor is not None else np.ones(len(frontier), dtype=bool)
            axes.plot(budgets[keep], frontier[keep], style, color="black", linewidth=1.2, label=label)
    if floor is not None:
        axes.axhline(floor, color="gray", linestyle="-.", linewidth=1.0, label=f"{floor_label} = {floor:.4g}")
    axes.set_xlabel("training compute C = 6 N D (FLOPs)")
    axes.set_ylabel(_metric_label(metric))
    if cells:
        axes.legend(fontsize=8)
    return _save(figure, path)
