"""Loss-curve plot for training reports (matplotlib, headless)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_loss_curve(log_history: list[dict], path: Path, floor_bpb: float | None = None) -> Path:
    """Training and validation loss against step; validation bits per byte on a second axis when logged."""
    train = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry and "step" in entry]
    evals = [(entry["step"], entry["eval_loss"]) for entry in log_history if "eval_loss" in entry]
    bpb = [(entry["step"], entry["eval_bpb"]) for entry in log_history if "eval_bpb" in entry]
    if not train and not evals:
        raise ValueError("The log history holds no loss values to plot; was anything trained?")

    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=110)
    if train:
        axis.plot(*zip(*train), label="train loss (nats/token)", color="tab:blue", linewidth=1.2)
    if evals:
        axis.plot(*zip(*evals), "o-", label="validation loss (nats/token)", color="tab:orange", markersize=3)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("cross-entropy (nats per token)")
    axis.grid(alpha=0.3)
    handles, labels = axis.get_legend_handles_labels()
    if bpb:
        bits_axis = axis.twinx()
        bits_axis.plot(*zip(*bpb), "s--", color="tab:green", markersize=3, label="validation bits per byte")
        if floor_bpb is not None and math.isfinite(floor_bpb):
            bits_axis.axhline(floor_bpb, color="tab:red", linestyle=":", label=f"corpus entropy {floor_bpb:.3f} bpb")
        bits_axis.set_ylabel("bits per UTF-8 byte")
        bits_axis.set_ylim(bottom=0)
        more_handles, more_labels = bits_axis.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    axis.legend(handles, labels, loc="upper right", fontsize=8)
    axis.set_title("wenlm training curve")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return Path(path)
