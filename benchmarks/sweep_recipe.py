"""Training-recipe sweep (issue 15): the old recipe (AdamW, float32, cosine) against Muon, bf16 autocast and
warmup_stable_decay, each run trained for the same wall-clock budget on the same corpus, in one process.

Every run is a fresh model of the preset, trained by wenlm's own LanguageModelTrainer (so `--optim muon` is the
MuonWithAdamW of `wenlm pretrain`, bf16 the Trainer's CPU autocast) on the same packed blocks from the same seed.
As in bench_shakespeare.py the schedule follows elapsed wall-clock time, not steps, so it ends exactly when the
budget does whatever a variant's speed: cosine decays to zero over the budget; warmup_stable_decay holds the peak
and decays over the last --decay-fraction of it. Runs are interleaved (each repeat walks the variants in a
rotated order) so that a change in the machine's load falls on every variant alike. The budget covers training
only; the final validation pass is extra.

Output: a JSON (final validation bits per byte, tokens/s, steps per run, the machine) and a plot of the
training loss in bits per byte against wall-clock seconds (colour: optimizer; line style: precision).

    python benchmarks/sweep_recipe.py --budget-s 300 --presets micro          # the measurement (lead's)
    python benchmarks/sweep_recipe.py --budget-s 5 --presets nano --train-files builtin:400 \\
        --config-overrides hidden_size=32,intermediate_size=64 --adamw-lrs 2e-3 --muon-lrs 0.02 --output smoke.json
"""

import argparse
import itertools
import math
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import torch  # noqa: E402
from bench_shakespeare import StopAtBudget, time_cosine_schedule  # noqa: E402
from common import RESULTS_DIR, machine_info, write_json  # noqa: E402
from transformers import DataCollatorForLanguageModeling, set_seed  # noqa: E402

from wenlm.training.args import DataArguments, ModelArguments  # noqa: E402
from wenlm.training.args.training import (  # noqa: E402
    CPU_TRAINING_DEFAULTS,
    DEFAULT_MUON_LEARNING_RATE,
    MUON,
    WenLMTrainingArguments,
)
from wenlm.training.data.pipeline import prepare_datasets  # noqa: E402
from wenlm.training.data.sources import builtin_entropy_floor  # noqa: E402
from wenlm.training.model_config import new_model  # noqa: E402
from wenlm.training.pretraining import evaluation_data, load_or_train_tokenizer  # noqa: E402
from wenlm.training.report import loss_curve_series  # noqa: E402
from wenlm.training.trainer import LanguageModelTrainer  # noqa: E402

OLD_RECIPE = {"optim": "adamw_torch", "precision": "fp32", "schedule": "cosine"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--train-files", default="builtin:32000", help="a `wenlm pretrain --train_files` source"
    )
    parser.add_argument("--presets", default="micro", help="comma-separated presets")
    parser.add_argument("--config-overrides", default=None, help="as `wenlm pretrain --config_overrides`")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument(
        "--batch-size", type=int, default=CPU_TRAINING_DEFAULTS["per_device_train_batch_size"]
    )
    parser.add_argument("--budget-s", type=float, default=300.0, help="training wall-clock seconds per run")
    parser.add_argument("--warmup-s", type=float, default=None, help="default: 5%% of the budget")
    parser.add_argument(
        "--weight-decay",
        type=float,
        default=CPU_TRAINING_DEFAULTS["weight_decay"],
        help="AdamW's decoupled weight decay (the init scale: --config-overrides initializer_range=)",
    )
    parser.add_argument("--decay-fraction", type=float, default=0.2, help="warmup_stable_decay's decay share")
    parser.add_argument("--optims", default=f"adamw_torch,{MUON}")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--schedules", default="cosine,warmup_stable_decay")
    parser.add_argument("--adamw-lrs", default="2e-3,3e-3,5e-3", help="AdamW peak learning rates")
    parser.add_argument(
        "--muon-lrs", default="0.01,0.02,0.04", help="Muon peak rates (AdamW part: --muon-adamw-lr)"
    )
    parser.add_argument("--muon-adamw-lr", type=float, default=3e-3, help="AdamW's rate beside Muon")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", default="sweep_recipe.json")
    return parser.parse_args()


def floats(text: str) -> list[float]:
    return [float(item) for item in text.split(",") if item.strip()]


def words(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def variants(args: argparse.Namespace) -> list[dict]:
    """Every (preset, optimizer, precision, schedule, learning rate) run, the old recipe's included."""
    runs = []
    for preset, optim, precision, schedule in itertools.product(
        words(args.presets), words(args.optims), words(args.precisions), words(args.schedules)
    ):
        for lr in floats(args.muon_lrs if optim == MUON else args.adamw_lrs):
            runs.append(
                {"preset": preset, "optim": optim, "precision": precision, "schedule": schedule, "lr": lr}
            )
    for run in runs:
        run["old_recipe"] = all(run[key] == value for key, value in OLD_RECIPE.items())
        run["name"] = f"{run['preset']} {run['optim']} {run['precision']} {run['schedule']} lr={run['lr']:g}"
    return runs


def interleaved(runs: list[dict], repeats: int) -> list[dict]:
    """Each repeat walks every run once, starting one further along than the repeat before."""
    order = []
    for repeat in range(repeats):
        shift = repeat % len(runs)
        order += [{**run, "repeat": repeat} for run in runs[shift:] + runs[:shift]]
    return order


def time_wsd_schedule(optimizer, budget_s: float, warmup_s: float, decay_fraction: float):
    """LambdaLR on wall-clock seconds since the first step: the lowest of a linear warmup over warmup_s, the peak,
    and a linear decay reaching zero at the end of the budget over its last decay_fraction."""
    first_step = []

    def factor(_step: int) -> float:
        first_step.extend([] if first_step else [time.perf_counter()])
        elapsed = time.perf_counter() - first_step[0]
        warmup = max(elapsed / warmup_s, 1e-3) if warmup_s > 0 else 1.0
        return max(0.0, min(warmup, 1.0, (budget_s - elapsed) / (budget_s * decay_fraction)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class BudgetTrainer(LanguageModelTrainer):
    """LanguageModelTrainer whose learning-rate schedule runs on wall-clock time (see the module docstring)."""

    def __init__(
        self, *args, schedule: str, budget_s: float, warmup_s: float, decay_fraction: float, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.budget = (schedule, budget_s, warmup_s, decay_fraction)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None:
            schedule, budget_s, warmup_s, decay_fraction = self.budget
            optimizer = optimizer or self.optimizer
            self.lr_scheduler = (
                time_cosine_schedule(optimizer, budget_s, warmup_s, min_ratio=0.0)
                if schedule == "cosine"
                else time_wsd_schedule(optimizer, budget_s, warmup_s, decay_fraction)
            )
        return self.lr_scheduler


def prepare(args: argparse.Namespace) -> dict:
    """Tokenizer, packed training blocks and validation blocks, built once for every run."""
    data_args = DataArguments(train_files=[args.train_files], block_size=args.block_size)
    model_args = ModelArguments(vocab_size=args.vocab_size)
    tokenizer, tokenizer_trainer = load_or_train_tokenizer(model_args, data_args, args.block_size)
    prepared = prepare_datasets(data_args, tokenizer=tokenizer, tokenizer_trainer=tokenizer_trainer)
    eval_dataset, eval_bytes = evaluation_data(prepared, prepared.tokenizer)
    return {
        "tokenizer": prepared.tokenizer,
        "train": prepared.train,
        "validation": eval_dataset,
        "bytes_per_token": eval_bytes / (len(eval_dataset) * (args.block_size - 1)),
        "entropy_floor_bpb": builtin_entropy_floor([args.train_files]),
    }


def train_run(run: dict, data: dict, args: argparse.Namespace, scratch: str) -> dict:
    muon = run["optim"] == MUON
    training_args = WenLMTrainingArguments(
        output_dir=scratch,
        optim=run["optim"],
        precision=run["precision"],
        use_cpu=not torch.cuda.is_available(),
        learning_rate=args.muon_adamw_lr if muon else run["lr"],
        muon_learning_rate=run["lr"] if muon else DEFAULT_MUON_LEARNING_RATE,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=64,
        max_steps=10**9,
        weight_decay=args.weight_decay,
        adam_beta2=CPU_TRAINING_DEFAULTS["adam_beta2"],
        max_grad_norm=1.0,
        logging_steps=10,
        logging_first_step=True,
        eval_strategy="no",
        save_strategy="no",
        report_to=[],
        include_num_input_tokens_seen="all",
        dataloader_num_workers=0,
        disable_tqdm=True,
        prediction_loss_only=True,
        seed=args.seed,
    )
    set_seed(args.seed)
    model = new_model(
        ModelArguments(preset=run["preset"], config_overrides=args.config_overrides),
        data["tokenizer"],
        args.block_size,
    )
    stopper = StopAtBudget(args.budget_s)
    trainer = BudgetTrainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=data["tokenizer"],
        data_collator=DataCollatorForLanguageModeling(data["tokenizer"], mlm=False),
        eval_bytes_per_token=data["bytes_per_token"],
        loss_chunk_size=256,
        callbacks=[stopper],
        schedule=run["schedule"],
        budget_s=args.budget_s,
        warmup_s=args.warmup_s or 0.05 * args.budget_s,
        decay_fraction=args.decay_fraction,
    )
    result = trainer.train()
    evaluation = trainer.evaluate()
    runtime = result.metrics["train_runtime"]
    tokens = int(trainer.state.num_input_tokens_seen)
    curve = loss_curve_series(trainer.state.log_history, data["bytes_per_token"])["train"]
    return {
        **run,
        "steps": trainer.state.global_step,
        "tokens_seen": tokens,
        "train_runtime_s": runtime,
        "tokens_per_s": tokens / runtime if runtime else None,
        "val_loss": evaluation["eval_loss"],
        "val_bpb": evaluation["eval_bpb"],
        "curve": {"seconds": curve["seconds"], "bpb": curve["values"]},
    }


def plot(results: list[dict], floor: float | None, path: Path) -> Path:
    """Training loss (bits per byte) against wall-clock seconds: colour by optimizer, line style by precision."""
    colours = {name: f"C{index}" for index, name in enumerate(sorted({r["optim"] for r in results}))}
    styles = {"fp32": "-", "bf16": "--"}
    figure, axis = plt.subplots(figsize=(9, 5), dpi=110, layout="constrained")
    for result in results:
        axis.plot(
            result["curve"]["seconds"],
            result["curve"]["bpb"],
            styles.get(result["precision"], ":"),
            color=colours[result["optim"]],
            linewidth=1.0,
            alpha=0.8,
            label=f"{result['name']}: {result['val_bpb']:.4f}",
        )
    if floor is not None:
        axis.axhline(floor, color="black", linestyle=":", label=f"corpus entropy floor {floor:.3f}")
    axis.set_xlabel("wall-clock seconds of training")
    axis.set_ylabel("training loss (bits per byte)")
    axis.grid(alpha=0.3)
    figure.legend(loc="outside right upper", fontsize=6)
    figure.savefig(path)
    plt.close(figure)
    return path


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = prepare(args)
    order = interleaved(variants(args), args.repeats)
    info = machine_info()
    print(
        f"{info['cpu']}, {info['torch_threads']} threads, load {info['load_average_at_start']}; {len(order)} runs "
        f"of {args.budget_s:.0f} s; validation bytes/token {data['bytes_per_token']:.3f}",
        flush=True,
    )
    results = []
    for index, run in enumerate(order, 1):
        with tempfile.TemporaryDirectory(prefix="wenlm-sweep-") as scratch:
            result = train_run(run, data, args, scratch)
        results.append(result)
        print(
            f"[{index}/{len(order)}] {result['name']} (repeat {run['repeat']}): val {result['val_bpb']:.4f} "
            f"bits/byte, {result['tokens_per_s']:,.0f} tokens/s, {result['steps']} steps",
            flush=True,
        )
    best = min(results, key=lambda r: r["val_bpb"] if math.isfinite(r["val_bpb"]) else math.inf)
    path = write_json(
        args.output,
        {
            "benchmark": "training recipe sweep at a fixed wall-clock budget per run",
            "machine": info,
            "args": vars(args),
            "validation_bytes_per_token": data["bytes_per_token"],
            "entropy_floor_bpb": data["entropy_floor_bpb"],
            "best": best["name"],
            "runs": results,
        },
    )
    figure = plot(results, data["entropy_floor_bpb"], path.with_suffix(".png"))
    print(f"best: {best['name']} at {best['val_bpb']:.4f} bits/byte; wrote {path} and {figure}")


if __name__ == "__main__":
    RESULTS_DIR.mkdir(exist_ok=True)
    main()
