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

from wenlm.training.scaling.fit import validate_records
from wenlm.training.scaling.laws import METRIC_UNITS, compute_optimal_split, is_real_number, predict_loss

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


def plot_scaling(
    records: Records, fits: Fits, path, floor: float | None = None, metric: str = "val_loss",
    floor_label: str = "entropy floor",
) -> str:  # fmt: skip
    """Log-log plot of ``metric`` against training tokens, one colour per model size.

    ``fits`` is the dict from :func:`fit_study` (or None for points only); each model's fitted data law is
    drawn solid over the measured range and dashed where it extrapolates (to 10x the largest D). Without a
    data law for a model the joint law is drawn instead (dotted). ``floor`` is drawn as a horizontal line and
    must be in the same units as ``metric`` (nats/token for val_loss, bits/byte for val_bpb).
    """
    cells, figure, axes = _start(records, fits, floor, metric, f"Data scaling: {metric} vs training tokens")
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
