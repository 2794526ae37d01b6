"""Training and evaluating one (model, D) cell of a study, and the record it leaves.

A cell is a fresh model trained with the stock Trainer on its prefix of the study's token stream: D unique
tokens. How long it trains is the study's regime:

* ``converged`` asks what D unique tokens are worth when compute is not the limit: the cell passes over its
  data up to ``num_train_epochs`` times, evaluates on the stream's held-out tail a few times per epoch, stops
  after ``early_stopping_patience`` evaluations without a new best, and the best weights are scored.
* ``single_epoch`` sees every token once (Chinchilla-style).

One rule sets every cell's batch and learning rate (``cell_plan``), so cells differ only in D and the model:
a cell with too few blocks for ``min_steps`` optimizer steps at the study's batch trains with a smaller batch
instead, because a cell of ~50 steps measures under-training rather than data scarcity; the learning rate
follows the batch by the square-root rule for Adam and the model's width by the 1/width rule of muP (the
study's ``learning_rate`` is the peak for a model of width ``REFERENCE_WIDTH`` at the study's batch). The
schedule is a cosine decay over the cell's own longest run with a warmup fraction of it, scaled to the run
length (Hoffmann et al. 2022: a schedule tuned for a longer run overstates the loss of shorter ones). Model
weights are not kept unless ``--save_models`` names a folder for them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import DataCollatorForLanguageModeling, TrainerCallback, set_seed

from wenlm.modeling import WenLMForCausalLM
from wenlm.training.args import DEFAULT_LOSS_CHUNK_SIZE, ModelArguments, ScalingArguments
from wenlm.training.args.training import WenLMTrainingArguments
from wenlm.training.model_config import build_config
from wenlm.training.scaling.run.grid import ModelSpec
from wenlm.training.scaling.run.study_data import StudyData, blocks_for, cell_dataset
from wenlm.training.trainer import LanguageModelTrainer
from wenlm.training.utils import bits_per_byte, perplexity

__all__ = ["REFERENCE_WIDTH", "batch_rule", "build_model_config", "cell_plan", "train_cell", "training_rule"]

# Width whose peak learning rate is the study's --learning_rate (the nano preset's).
REFERENCE_WIDTH = 64


def build_model_config(spec: ModelSpec, options: ScalingArguments, tokenizer):
    # The model's own overrides come last so they win over the study-wide ones; values travel as JSON, which
    # is how build_config parses them back.
    own = ",".join(f"{name}={json.dumps(value)}" for name, value in spec.overrides.items())
    overrides = ",".join(filter(None, [options.config_overrides or "", own]))
    model_args = ModelArguments(preset=spec.preset, config_overrides=overrides or None)
    try:
        return build_config(model_args, tokenizer, options.data.block_size)
    except ValueError as error:
        raise ValueError(f"model {spec.label!r}: {error}") from error


def training_rule(options: ScalingArguments) -> str:
    """The regime and the batch / learning-rate / schedule rule in one sentence for REPORT.md."""
    regime = (
        f"regime converged: up to {options.num_train_epochs:g} passes over the cell's D unique tokens (more where "
        f"needed for {options.converged_min_steps} optimizer steps), evaluated "
        f"after every pass on {options.early_stopping_tokens:,} held-out training tokens, stopped after "
        f"{options.early_stopping_patience} passes without a new best, the best weights scored"
        if options.regime == "converged"
        else "regime single_epoch: every token seen once"
    )
    return (
        regime
        + "; "
        + (
            f"batch = min({options.per_device_train_batch_size}, blocks // {options.min_steps}) blocks (at least 1), "
            f"so every cell gets at least {options.min_steps} optimizer steps per pass where its data allows; peak "
            f"learning rate = {options.learning_rate:g} x sqrt(batch / {options.per_device_train_batch_size}) x "
            f"min(1, {REFERENCE_WIDTH} / hidden_size) (square-root batch rule for Adam, 1/width rule of muP); cosine "
            f"decay over the cell's longest run ({options.num_train_epochs:g} pass(es)) after {options.warmup_steps:.0%} "
            "warmup"
        )
    )


def batch_rule(options: ScalingArguments, blocks: int) -> int:
    """Blocks per step for a cell of `blocks` blocks: the study's batch, smaller where that would leave fewer
    than --min_steps steps per pass."""
    return max(1, min(options.per_device_train_batch_size, blocks // options.min_steps))


def cell_plan(
    options: ScalingArguments,
    blocks: int,
    hidden_size: int,
    epochs: float | None = None,
    rule_blocks: int | None = None,
) -> dict:
    """Batch, learning rate, passes and evaluation interval of a cell with `blocks` training blocks.

    `rule_blocks` applies the batch rule as if the cell had that many blocks: the repetition sub-study sets it
    to its unique budget U for every cell, so that a cell's optimizer steps are proportional to the tokens it
    sees and repeated and fresh data are compared at equal compute.
    """
    batch = batch_rule(options, rule_blocks or blocks)
    learning_rate = (
        options.learning_rate
        * math.sqrt(batch / options.per_device_train_batch_size)
        * min(1.0, REFERENCE_WIDTH / hidden_size)
    )
    steps_per_epoch = math.ceil(blocks / batch)
    converged = epochs is None and options.regime == "converged"
    max_epochs = float(epochs if epochs is not None else options.num_train_epochs)
    if converged:
        # Measured on the built-in corpus: small models learn to copy from context only after a few thousand
        # steps; a pass cap alone would stop small cells before that and bend the curve into a false plateau.
        max_epochs = max(max_epochs, float(math.ceil(options.converged_min_steps / steps_per_epoch)))
    return {
        "batch_size": batch,
        "learning_rate": learning_rate,
        "max_epochs": max_epochs,
        "steps_per_epoch": steps_per_epoch,
        "max_steps": math.ceil(steps_per_epoch * max_epochs),
        "early_stopping": converged,
        # Once per pass: patience counted in passes rides out the plateaus small models sit on before they learn
        # to copy from context (measured: a quarter-pass interval stopped a 500k-token cell inside one).
        "eval_steps": steps_per_epoch if converged else None,
        "fixed_epochs": epochs,
    }


class KeepBestWeights(TrainerCallback):
    """Early stopping that keeps the best weights in memory: small models copy in milliseconds, and no
    checkpoint folder is written per evaluation."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best_loss = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_step = 0
        self.best_epoch = 0.0
        self.evaluations: list[tuple[int, float]] = []
        self._since_best = 0

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        loss = float(metrics["eval_loss"])
        self.evaluations.append((int(state.global_step), loss))
        if loss < self.best_loss:
            self.best_loss, self.best_step, self.best_epoch = loss, state.global_step, float(state.epoch or 0)
            self.best_state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
            self._since_best = 0
        else:
            self._since_best += 1
            if self._since_best >= self.patience:
                control.should_training_stop = True


def _training_arguments(options: ScalingArguments, scratch: str, plan: dict) -> WenLMTrainingArguments:
    return WenLMTrainingArguments(
        output_dir=scratch,
        per_device_train_batch_size=plan["batch_size"],
        per_device_eval_batch_size=64,
        learning_rate=plan["learning_rate"],
        optim=options.optim,
        # Muon's rate follows the cell's batch and width rules as AdamW's does: their ratio is the study's.
        muon_learning_rate=options.muon_learning_rate * plan["learning_rate"] / options.learning_rate,
        muon_weight_decay=options.muon_weight_decay,
        precision=options.precision,
        # Where there is no GPU: TrainingArguments accepts bf16 (--precision) on the CPU only when told so.
        use_cpu=not torch.cuda.is_available(),
        lr_scheduler_type="cosine",
        warmup_steps=options.warmup_steps,
        weight_decay=options.weight_decay,
        adam_beta2=0.95,
        max_grad_norm=1.0,
        num_train_epochs=plan["max_epochs"],
        logging_steps=max(1, plan["max_steps"] // 20),
        logging_first_step=True,
        eval_strategy="steps" if plan["early_stopping"] else "no",
        eval_steps=plan["eval_steps"],
        save_strategy="no",
        report_to="none",
        include_num_input_tokens_seen="all",
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        prediction_loss_only=True,
        disable_tqdm=True,
        seed=options.seed,
    )


def _last_logged(log_history: list[dict], key: str) -> float | None:
    for entry in reversed(log_history):
        if key in entry:
            return float(entry[key])
    return None


def train_cell(
    spec: ModelSpec,
    data_size: int,
    data: StudyData,
    options: ScalingArguments,
    epochs: float | None = None,
    rule_tokens: int | None = None,
) -> dict[str, Any]:
    """Train one (model, D) cell from scratch and evaluate it on the shared validation set.

    `epochs` fixes the passes and `rule_tokens` the size the batch rule is applied to (both: the repetition
    sub-study, see cell_plan); otherwise the study's regime decides.
    """
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    train = cell_dataset(data.train, data_size, options.data.block_size)
    config = build_model_config(spec, options, data.tokenizer)
    rule_blocks = blocks_for(rule_tokens, options.data.block_size) if rule_tokens else None
    plan = cell_plan(options, len(train), config.hidden_size, epochs, rule_blocks)
    # The same seed for every data size: a model starts from the same weights in every cell of its row.
    set_seed(options.seed)
    model = WenLMForCausalLM._from_config(config)
    keeper = KeepBestWeights(options.early_stopping_patience) if plan["early_stopping"] else None
    with tempfile.TemporaryDirectory(prefix="wenlm-scaling-") as scratch:
        trainer = LanguageModelTrainer(
            model=model,
            args=_training_arguments(options, scratch, plan),
            train_dataset=train,
            eval_dataset=data.early_stopping if keeper else data.validation,
            processing_class=data.tokenizer,
            data_collator=DataCollatorForLanguageModeling(data.tokenizer, mlm=False),
            eval_bytes_per_token=data.validation_bytes_per_token,
            loss_chunk_size=DEFAULT_LOSS_CHUNK_SIZE,
            callbacks=[keeper] if keeper else None,
        )
        train_result = trainer.train()
        if keeper:
            # The score on the validation set is not a stopping evaluation: keep it out of the keeper's record.
            trainer.remove_callback(keeper)
            if keeper.best_state is not None:
                model.load_state_dict(keeper.best_state)
        evaluation = trainer.evaluate(eval_dataset=data.validation)
        if options.save_models:
            target = Path(options.save_models) / (
                f"{spec.slug}_{data_size}" + (f"_x{epochs:g}" if epochs else "")
            )
            trainer.save_model(str(target))
            data.tokenizer.save_pretrained(str(target))
    record = _cell_record(
        spec, data_size, len(train), config, plan, trainer, train_result, evaluation, data, options
    )
    if keeper is not None:
        record.update(
            best_epoch=round(keeper.best_epoch, 3),
            best_step=int(keeper.best_step),
            early_stopping_loss=keeper.best_loss,
            stopped_early=record["epochs_trained"] < plan["max_epochs"] - 1e-6,
            evaluations=keeper.evaluations,
        )
    return record | {
        "epochs_requested": epochs,
        "wall_time_s": round(time.perf_counter() - started, 2),
        "load_avg_1min_start": round(load_before, 2),
        "load_avg_1min_end": round(os.getloadavg()[0], 2),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _cell_record(
    spec, data_size, blocks, config, plan, trainer, train_result, evaluation, data, options
) -> dict:
    val_loss = float(evaluation["eval_loss"])
    unique_tokens = blocks * options.data.block_size
    runtime = float(train_result.metrics.get("train_runtime") or 0.0)
    tokens_seen = int(trainer.state.num_input_tokens_seen)
    epochs_trained = float(trainer.state.epoch or 0.0)
    n_params = config.num_parameters(exclude_embeddings=True)
    return {
        "model": spec.label,
        "preset": spec.preset,
        "hidden_size": config.hidden_size,
        "n_params": n_params,
        "n_params_total": config.num_parameters(),
        # D of the laws: the unique tokens the cell may learn from, however many times it passes over them.
        "tokens": unique_tokens,
        "data_size": data_size,
        "blocks": blocks,
        "tokens_seen": tokens_seen,
        "flops": 6.0 * n_params * tokens_seen,
        "regime": options.regime if plan["fixed_epochs"] is None else "fixed_epochs",
        "batch_size": plan["batch_size"],
        "learning_rate": plan["learning_rate"],
        "max_epochs": plan["max_epochs"],
        "epochs_trained": round(epochs_trained, 3),
        "steps": int(trainer.state.global_step),
        "train_loss": _last_logged(trainer.state.log_history, "loss"),
        "train_loss_mean": float(train_result.training_loss),
        "val_loss": val_loss,
        "val_bpb": bits_per_byte(val_loss, data.validation_bytes_per_token),
        "val_perplexity": perplexity(val_loss),
        "train_runtime_s": round(runtime, 2),
        "tokens_per_s": round(tokens_seen / runtime, 1) if runtime > 0 else None,
    }
