"""Training and evaluating one (model, D) cell of a study, and the record it leaves.

Each cell is a fresh model trained with the stock Trainer for ``num_train_epochs`` passes (default 1: every
token seen once) over its prefix of the study's token stream, with a cosine schedule whose warmup is a
fraction of that cell's own steps, i.e. the schedule is scaled to the run length (Hoffmann et al. 2022 showed
that a schedule tuned for a longer run overestimates the loss of shorter ones). Model weights are not kept
unless ``--save_models`` names a folder for them.
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

from transformers import DataCollatorForLanguageModeling, TrainingArguments, set_seed

from wenlm.modeling import WenLMForCausalLM
from wenlm.training.args import DEFAULT_LOSS_CHUNK_SIZE, ModelArguments, ScalingArguments
from wenlm.training.pretrain import build_config
from wenlm.training.scaling.grid import ModelSpec
from wenlm.training.scaling.study_data import StudyData, cell_dataset
from wenlm.training.trainer import LanguageModelTrainer
from wenlm.training.utils import bits_per_byte, perplexity

__all__ = ["build_model_config", "train_cell"]


def build_model_config(spec: ModelSpec, options: ScalingArguments, tokenizer):
    # The model's own overrides come last so they win over the study-wide ones; values travel as JSON, which
    # is how build_config parses them back.
    own = ",".join(f"{name}={json.dumps(value)}" for name, value in spec.overrides.items())
    overrides = ",".join(filter(None, [options.config_overrides or "", own]))
    model_args = ModelArguments(preset=spec.preset, config_overrides=overrides or None)
    try:
        return build_config(model_args, tokenizer, options.block_size)
    except ValueError as error:
        raise ValueError(f"model {spec.label!r}: {error}") from error


def _last_logged(log_history: list[dict], key: str) -> float | None:
    for entry in reversed(log_history):
        if key in entry:
            return float(entry[key])
    return None


def _training_arguments(options: ScalingArguments, scratch: str, total_steps: int) -> TrainingArguments:
    return TrainingArguments(
        output_dir=scratch,
        per_device_train_batch_size=options.per_device_train_batch_size,
        per_device_eval_batch_size=options.per_device_train_batch_size * 2,
        learning_rate=options.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=options.warmup_steps,
        weight_decay=options.weight_decay,
        adam_beta2=0.95,
        max_grad_norm=1.0,
        num_train_epochs=options.num_train_epochs,
        logging_steps=max(1, total_steps // 20),
        logging_first_step=True,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        include_num_input_tokens_seen="all",
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        prediction_loss_only=True,
        disable_tqdm=True,
        seed=options.seed,
    )


def train_cell(spec: ModelSpec, data_size: int, data: StudyData, options: ScalingArguments) -> dict[str, Any]:
    """Train one (model, D) cell from scratch with the stock Trainer and evaluate it on the shared validation set."""
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    train = cell_dataset(data.train, data_size, options.block_size)
    config = build_model_config(spec, options, data.tokenizer)
    # The same seed for every data size: a model starts from the same weights in every cell of its row.
    set_seed(options.seed)
    model = WenLMForCausalLM._from_config(config)
    steps_per_epoch = math.ceil(len(train) / options.per_device_train_batch_size)
    total_steps = math.ceil(steps_per_epoch * options.num_train_epochs)
    with tempfile.TemporaryDirectory(prefix="wenlm-scaling-") as scratch:
        trainer = LanguageModelTrainer(
            model=model,
            args=_training_arguments(options, scratch, total_steps),
            train_dataset=train,
            eval_dataset=data.validation,
            processing_class=data.tokenizer,
            data_collator=DataCollatorForLanguageModeling(data.tokenizer, mlm=False),
            eval_bytes_per_token=data.validation_bytes_per_token,
            loss_chunk_size=DEFAULT_LOSS_CHUNK_SIZE,
        )
        train_result = trainer.train()
        evaluation = trainer.evaluate()
        if options.save_models:
            target = Path(options.save_models) / f"{spec.slug}_{data_size}"
            trainer.save_model(str(target))
            data.tokenizer.save_pretrained(str(target))
    val_loss = float(evaluation["eval_loss"])
    tokens = len(train) * options.block_size * options.num_train_epochs
    runtime = float(train_result.metrics.get("train_runtime") or 0.0)
    n_params = config.num_parameters(exclude_embeddings=True)
    return {
        "model": spec.label,
        "preset": spec.preset,
        "n_params": n_params,
        "n_params_total": config.num_parameters(),
        "tokens": tokens,
        "data_size": data_size,
        "blocks": len(train),
        "flops": 6.0 * n_params * tokens,
        "train_loss": _last_logged(trainer.state.log_history, "loss"),
        "train_loss_mean": float(train_result.training_loss),
        "val_loss": val_loss,
        "val_bpb": bits_per_byte(val_loss, data.validation_bytes_per_token),
        "val_perplexity": perplexity(val_loss),
        "wall_time_s": round(time.perf_counter() - started, 2),
        "train_runtime_s": round(runtime, 2),
        "tokens_per_s": round(tokens / runtime, 1) if runtime > 0 else None,
        "steps": int(trainer.state.global_step),
        "tokens_seen": int(trainer.state.num_input_tokens_seen),
        "load_avg_1min_start": round(load_before, 2),
        "load_avg_1min_end": round(os.getloadavg()[0], 2),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
