"""The training report that `wenlm pretrain` and `wenlm finetune` write next to the model: its shared sections,
the loss-curve plot, and the files of the output folder (report, log history, plot, model card)."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

import matplotlib
import torch

from wenlm.training.hub.card import write_model_card
from wenlm.training.hub.tokens import redact_secrets
from wenlm.training.utils import json_ready, write_json

matplotlib.use("Agg")  # headless: training machines have no display
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

REPORT_FILE = "training_report.json"
LOSS_CURVE_FILE = "loss_curve.png"
LOG_HISTORY_FILE = "log_history.json"

REPORTED_HYPERPARAMETERS = (
    "learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2", "max_grad_norm",
    "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "seed", "optim",
    "bf16", "fp16",
)


def model_section(config, preset: str | None) -> dict:
    """The report's "model" part: preset, the config without loading details, and parameter counts."""
    return {
        "preset": preset,
        "config": {k: v for k, v in config.to_dict().items() if k not in {"auto_map", "transformers_version"}},
        "parameters": config.num_parameters(),
        "non_embedding_parameters": config.num_parameters(exclude_embeddings=True),
    }


def training_section(training_args, trainer, train_metrics: dict, n_non_embedding: int, wall_time: float) -> dict:
    """The report's "training" part, shared by pretraining and fine-tuning."""
    tokens_seen = int(trainer.state.num_input_tokens_seen)
    arguments = training_args.to_dict()
    runtime = train_metrics.get("train_runtime")
    return {
        "hyperparameters": {key: arguments[key] for key in REPORTED_HYPERPARAMETERS if key in arguments},
        "world_size": training_args.world_size,
        "steps": trainer.state.global_step,
        "tokens_seen": tokens_seen,
        "flops_estimate": 6 * n_non_embedding * tokens_seen,
        "flops_formula": "6 * non-embedding parameters * training tokens",
        "wall_time_seconds": round(wall_time, 1),
        "train_runtime_seconds": runtime,
        "train_tokens_per_second": round(tokens_seen / runtime, 1) if runtime else None,
        "hardware": hardware_description(),
    }


def last_logged(log_history: list[dict], key: str) -> float | None:
    for entry in reversed(log_history):
        if key in entry:
            return entry[key]
    return None


def hardware_description() -> dict:
    return {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def finished_report(report: dict) -> dict:
    """The report as it is written: plain JSON values, with any token or password in it redacted."""
    return json_ready(json.loads(redact_secrets(json.dumps(report, default=str))))


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


def write_outputs(output_dir: Path, report: dict, log_history: list[dict]) -> None:
    """The report, the log history, the loss curve and the model card (which reads the other three)."""
    write_json(output_dir / REPORT_FILE, report)
    write_json(output_dir / LOG_HISTORY_FILE, log_history, indent=1)
    plot_loss_curve(log_history, output_dir / LOSS_CURVE_FILE, floor_bpb=report.get("entropy_floor_bpb"))
    write_model_card(output_dir)
