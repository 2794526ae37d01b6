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

from wenlm.training.args.training import MUON, native_bf16, training_device
from wenlm.training.cards.card import write_model_card
from wenlm.training.model_folder import LOG_HISTORY_FILE, LOSS_CURVE_FILE, TRAINING_REPORT
from wenlm.training.utils import bits_per_byte, json_ready, write_json
from wenlm.training.utils.secrets import redact_secrets

matplotlib.use("Agg")  # headless: training machines have no display
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

REPORTED_HYPERPARAMETERS = (
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "max_grad_norm",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "seed",
    "optim",
    "bf16",
    "fp16",
    "precision",
    "lr_scheduler_kwargs",
    "lr_decay_fraction",
)
# Reported only where they act: with --optim muon.
MUON_HYPERPARAMETERS = ("muon_learning_rate", "muon_weight_decay", "muon_adjust_lr_fn")


def model_section(config, preset: str | None) -> dict:
    """The report's "model" part: preset, the config without loading details, and parameter counts."""
    return {
        "preset": preset,
        "config": {
            k: v for k, v in config.to_dict().items() if k not in {"auto_map", "transformers_version"}
        },
        "parameters": config.num_parameters(),
        "non_embedding_parameters": config.num_parameters(exclude_embeddings=True),
    }


def training_section(
    training_args, trainer, train_metrics: dict, n_non_embedding: int, wall_time: float
) -> dict:
    """The report's "training" part, shared by pretraining and fine-tuning."""
    tokens_seen = int(trainer.state.num_input_tokens_seen)
    arguments = training_args.to_dict()
    runtime = train_metrics.get("train_runtime")
    reported = REPORTED_HYPERPARAMETERS + (MUON_HYPERPARAMETERS if arguments.get("optim") == MUON else ())
    return {
        "hyperparameters": {key: arguments[key] for key in reported if key in arguments},
        "precision": precision_section(training_args),
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


def precision_section(training_args) -> dict:
    """Which precision trained and why: the option that chose it, and whether the device computes bf16 natively
    (bf16 autocast without native support runs, but emulated and slower)."""
    used = "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32"
    device = training_device(training_args)
    native, evidence = native_bf16(device)
    requested = getattr(training_args, "precision", None)
    if requested == "auto":
        reason = f"--precision auto on {device}: " + (
            f"native bf16 ({evidence})" if native else f"{evidence}, fp32"
        )
    elif requested is not None:
        reason = f"--precision {requested}"
    elif used != "fp32":
        reason = f"--{used} true"
    else:
        reason = "default: no --precision, --bf16 or --fp16"
    return {
        "used": used,
        "reason": reason,
        "device": device,
        "native_bf16": native,
        "native_bf16_evidence": evidence,
        "weights": "float32" + (f", {used} autocast for compute" if used != "fp32" else ""),
    }


def loss_curve_series(log_history: list[dict], bytes_per_token: float | None = None) -> dict:
    """The series the loss curve plots, in one unit: bits per UTF-8 byte where the validation data's bytes per
    token are known (the training loss converted with the same ratio), otherwise nats per token. Each series is
    {"tokens": [...], "seconds": [...], "values": [...]}; seconds are None where the log has no elapsed_seconds."""
    in_bits = bool(bytes_per_token)

    def convert(loss: float) -> float:
        return bits_per_byte(loss, bytes_per_token) if in_bits else loss

    def series(key: str) -> dict:
        entries = [entry for entry in log_history if key in entry and "step" in entry]
        return {
            "tokens": [entry.get("num_input_tokens_seen", entry["step"]) for entry in entries],
            "seconds": [entry.get("elapsed_seconds") for entry in entries],
            "values": [convert(entry[key]) for entry in entries],
        }

    train, validation = series("loss"), series("eval_loss")
    x_is_tokens = all(
        "num_input_tokens_seen" in entry for entry in log_history if "loss" in entry or "eval_loss" in entry
    )
    return {
        "unit": "bits per byte" if in_bits else "nats per token",
        "x": "tokens seen" if x_is_tokens else "optimizer step",
        "train": train,
        "validation": validation,
    }


def plot_loss_curve(
    log_history: list[dict], path: Path, floor_bpb: float | None = None, bytes_per_token: float | None = None
) -> Path:
    """Training and validation loss in one unit (see loss_curve_series) against tokens seen, and against
    wall-clock time in a second panel where logged; the corpus's entropy floor where known and in bits per byte.
    The legend sits below the panels, clear of the curves."""
    curves = loss_curve_series(log_history, bytes_per_token)
    if not curves["train"]["values"] and not curves["validation"]["values"]:
        raise ValueError("The log history holds no loss values to plot; was anything trained?")
    timed = all(
        seconds is not None for name in ("train", "validation") for seconds in curves[name]["seconds"]
    )
    figure, axes = plt.subplots(
        1,
        2 if timed else 1,
        figsize=(11 if timed else 7, 4.4),
        dpi=110,
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    floor = (
        floor_bpb
        if curves["unit"] == "bits per byte" and floor_bpb is not None and math.isfinite(floor_bpb)
        else None
    )
    for axis, x_key, x_label in zip(
        axes[0], ("tokens", "seconds"), (curves["x"], "wall-clock seconds of training")
    ):
        train, validation = curves["train"], curves["validation"]
        if train["values"]:
            axis.plot(train[x_key], train["values"], label="train", color="tab:blue", linewidth=1.2)
        if validation["values"]:
            axis.plot(
                validation[x_key],
                validation["values"],
                "o-",
                label="validation",
                color="tab:orange",
                markersize=3,
            )
        if floor is not None:
            axis.axhline(floor, color="tab:red", linestyle=":", label=f"corpus entropy floor {floor:.3f}")
        axis.set_xlabel(x_label)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"cross-entropy ({curves['unit']})")
    if floor is not None:
        axes[0][0].set_ylim(bottom=0)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8)
    figure.suptitle("wenlm training curve")
    figure.savefig(path)
    plt.close(figure)
    return Path(path)


def write_outputs(output_dir: Path, report: dict, log_history: list[dict]) -> None:
    """The report, the log history, the loss curve and the model card (which reads the other three)."""
    write_json(output_dir / TRAINING_REPORT, report)
    write_json(output_dir / LOG_HISTORY_FILE, log_history, indent=1)
    plot_loss_curve(
        log_history,
        output_dir / LOSS_CURVE_FILE,
        floor_bpb=report.get("entropy_floor_bpb"),
        bytes_per_token=(report.get("data") or {}).get("validation_bytes_per_token"),
    )
    write_model_card(output_dir)
