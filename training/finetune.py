"""`wenlm finetune`: adapt a pretrained wenlm model to chat/instruction data (SFT, loss on the assistant's tokens
only) or to sequence classification, with the stock Trainer and optionally LoRA.

The output folder looks like a pretraining folder: model (safetensors), tokenizer, generation config, remote code,
training_report.json (pretraining's keys plus "base_model", "task" and the task's data counts), log_history.json,
loss_curve.png and the README.md model card.

With ``--lora_r > 0`` only low-rank adapters are trained. The folder then holds the adapter in ``adapter/``
(``PeftModel.from_pretrained(base, output_dir/adapter)``) and, at its top level, the adapter merged into the base
weights: a plain wenlm model that loads without peft.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import IntervalStrategy

from wenlm.training.args import CPU_TRAINING_DEFAULTS
from wenlm.training.data.tasks import (
    PaddingCollator,
    collect_labels,
    encode_classification_rows,
    encode_sft_rows,
    raise_or_count_bad_rows,
    read_rows,
)
from wenlm.training.pretrain import (
    REPORT_FILE,
    check_output_dir,
    last_logged,
    training_section,
    write_outputs,
)
from wenlm.training.trainer import LanguageModelTrainer

logger = logging.getLogger(__name__)

TASKS = ("sft", "classification")
ADAPTER_DIR = "adapter"
DEFAULT_MAX_BLOCK_SIZE = 512
END_OF_TURN_ID = 6  # <|end|>: generation of a chat reply stops here as well as at <|eos|>
DEFAULT_LORA_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"

# Fine-tuning starts from trained weights: a lower peak learning rate and more frequent logging than pretraining.
FINETUNE_DEFAULTS: dict[str, Any] = {
    **CPU_TRAINING_DEFAULTS,
    "learning_rate": 1e-3,
    "warmup_steps": 0.05,
    "weight_decay": 0.0,
    "num_train_epochs": 1.0,
    "logging_steps": 10,
    "eval_steps": 50,
    "save_steps": 200,
}


@dataclass
class FinetuneArguments:
    model: str = field(metadata={"help": "The pretrained wenlm model: a local folder or a Hub id."})
    task: str = field(metadata={"help": "sft (chat/instruction rows) or classification ({'text', 'label'} rows)."})
    train_file: str = field(metadata={"help": "Training rows: JSON Lines, or any file `datasets` loads."})
    validation_file: str | None = field(default=None, metadata={"help": "Validation rows, same format."})
    revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a Hub model."})
    block_size: int | None = field(
        default=None,
        metadata={"help": f"Longest sequence in tokens; longer rows are truncated (beginning kept). Default: the "
                          f"model's max_position_embeddings, at most {DEFAULT_MAX_BLOCK_SIZE}."},
    )
    skip_bad_rows: bool = field(default=False, metadata={"help": "Train without malformed rows instead of stopping."})
    text_column: str = field(default="text", metadata={"help": "Text column for classification."})
    label_column: str = field(default="label", metadata={"help": "Label column for classification (str or int)."})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank; 0 trains every weight (needs wenlm[lora] if > 0)."})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: str = field(default=DEFAULT_LORA_TARGETS,
                                     metadata={"help": "Comma-separated module names that get adapters."})
    license: str = field(default="apache-2.0", metadata={"help": "License written into the model card metadata."})


def parse_finetune_args(argv: list[str] | None = None) -> tuple[FinetuneArguments, TrainingArguments]:
    parser = HfArgumentParser((FinetuneArguments, TrainingArguments))
    parser.set_defaults(**FINETUNE_DEFAULTS)
    if argv and len(argv) == 1 and argv[0].endswith(".json"):
        path = Path(argv[0])
        if not path.is_file():
            raise FileNotFoundError(f"Configuration file {path} does not exist.")
        return parser.parse_dict({**FINETUNE_DEFAULTS, **json.loads(path.read_text())})
    return parser.parse_args_into_dataclasses(args=argv)


def check_arguments(args: FinetuneArguments) -> None:
    if args.task not in TASKS:
        raise ValueError(f"--task {args.task!r} is unknown; use one of {', '.join(TASKS)}.")
    for name in ("train_file", "validation_file"):
        path = getattr(args, name)
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"--{name} {path}: no such file.")
    if args.block_size is not None and args.block_size < 2:
        raise ValueError(f"--block_size must be at least 2, got {args.block_size}.")
    if args.lora_r < 0:
        raise ValueError(f"--lora_r must be 0 (off) or positive, got {args.lora_r}.")
    if not 0.0 <= args.lora_dropout < 1.0:
        raise ValueError(f"--lora_dropout must be in [0, 1), got {args.lora_dropout}.")


def load_tokenizer(args: FinetuneArguments):
    tokenizer = AutoTokenizer.from_pretrained(args.model, revision=args.revision, trust_remote_code=True)
    if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError(f"The tokenizer of {args.model} lacks a pad or eos token; is it a wenlm model?")
    if args.task == "sft" and not tokenizer.chat_template:
        raise ValueError(f"The tokenizer of {args.model} has no chat_template, which SFT rows are rendered with.")
    return tokenizer


def resolve_block_size(args: FinetuneArguments, max_positions: int) -> int:
    if args.block_size is None:
        return min(max_positions, DEFAULT_MAX_BLOCK_SIZE)
    if args.block_size > max_positions:
        raise ValueError(f"--block_size {args.block_size} exceeds the model's max_position_embeddings={max_positions}.")
    return args.block_size


def base_training_report(args: FinetuneArguments) -> dict:
    """The base model's own training report when it is a local wenlm folder (preset, tokenizer statistics)."""
    path = Path(args.model) / REPORT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def apply_lora(model, args: FinetuneArguments):
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError as error:
        raise ImportError("--lora_r needs peft: pip install 'wenlm[lora]'") from error
    targets = [name.strip() for name in args.lora_target_modules.split(",") if name.strip()]
    if not targets:
        raise ValueError("--lora_target_modules is empty.")
    module_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    unknown = sorted(set(targets) - module_names)
    if unknown:
        raise ValueError(f"--lora_target_modules: the model has no modules named {unknown}; it has e.g. "
                         f"{sorted(n for n in module_names if n.endswith('_proj'))}.")
    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM if args.task == "sft" else TaskType.SEQ_CLS,
        r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, target_modules=targets,
    )
    return get_peft_model(model, config)


def count_parameters(model) -> tuple[int, int]:
    # Tied embeddings are one tensor: count parameters by identity, not by name.
    unique = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in unique), sum(p.numel() for p in unique if p.requires_grad)


def classification_metrics(id2label: dict[int, str]):
    from wenlm.training.evaluation.metrics import compute_metric

    labels = sorted(id2label)

    def compute(prediction) -> dict:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        predicted = np.asarray(logits).argmax(-1).tolist()
        scores = compute_metric("classification", predicted, np.asarray(prediction.label_ids).tolist(), labels=labels)
        return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}

    return compute


@dataclass
class TaskData:
    train: datasets.Dataset
    validation: datasets.Dataset | None
    report: dict
    id2label: dict[int, str] | None = None


def prepare_task_data(args: FinetuneArguments, tokenizer, block_size: int) -> TaskData:
    train_rows = read_rows(args.train_file)
    validation_rows = read_rows(args.validation_file) if args.validation_file else None
    id2label = None
    if args.task == "sft":
        train = encode_sft_rows(train_rows, tokenizer, block_size)
        validation = encode_sft_rows(validation_rows, tokenizer, block_size) if validation_rows else None
    else:
        labels = collect_labels(train_rows, args.label_column)
        id2label = {index: str(label) for index, label in enumerate(labels)}
        label2id = {name: index for index, name in id2label.items()}
        columns = dict(text_column=args.text_column, label_column=args.label_column)
        train = encode_classification_rows(train_rows, tokenizer, block_size, label2id, **columns)
        validation = (encode_classification_rows(validation_rows, tokenizer, block_size, label2id, **columns)
                      if validation_rows else None)
    bad_rows = raise_or_count_bad_rows([r for r in (train_rows, validation_rows) if r], args.skip_bad_rows)
    if not train.examples:
        raise ValueError(f"{args.train_file}: no usable training rows.")
    if validation is not None and not validation.examples:
        raise ValueError(f"{args.validation_file}: no usable validation rows.")
    report = {
        "train": train.report,
        "validation": validation.report if validation else None,
        "rows": train.report["rows"] + (validation.report["rows"] if validation else 0),
        "bad_rows": bad_rows["total"],
        "bad_row_details": bad_rows["by_file"],
        "skip_bad_rows": args.skip_bad_rows,
        "truncated": train.report["truncated"] + (validation.report["truncated"] if validation else 0),
        "block_size": block_size,
    }
    if id2label is not None:
        report["labels"] = list(id2label.values())
    return TaskData(
        train=datasets.Dataset.from_list(train.examples),
        validation=datasets.Dataset.from_list(validation.examples) if validation else None,
        report=report,
        id2label=id2label,
    )


def load_model(args: FinetuneArguments, id2label: dict[int, str] | None):
    common = dict(revision=args.revision, trust_remote_code=True)
    if args.task == "sft":
        return AutoModelForCausalLM.from_pretrained(args.model, **common)
    # The `score` head is new (randomly initialised); transformers reports it as newly initialised.
    return AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=len(id2label), id2label=id2label,
        label2id={name: index for index, name in id2label.items()}, **common,
    )


def adjust_training_arguments(training_args: TrainingArguments, args: FinetuneArguments) -> None:
    if args.validation_file is None and training_args.eval_strategy != IntervalStrategy.NO:
        logger.info("No --validation_file: evaluation during training is off.")
        training_args.eval_strategy = IntervalStrategy.NO
    # Classification metrics need the logits; SFT evaluation needs only the loss.
    training_args.prediction_loss_only = args.task == "sft"
    training_args.remove_unused_columns = False


def finetune(args: FinetuneArguments, training_args: TrainingArguments) -> dict:
    """Run the whole job and return the training report (also written to the output folder)."""
    started = time.time()
    check_arguments(args)
    resume_from = check_output_dir(training_args)
    adjust_training_arguments(training_args, args)
    from wenlm.training.hub.publish import take_hub_push_from_args

    # Moves --hub_token out of the arguments the Trainer pickles, and publishes once at the end, validated.
    hub_push = take_hub_push_from_args(training_args)
    set_seed(training_args.seed)

    tokenizer = load_tokenizer(args)
    from transformers import AutoConfig

    base_config = AutoConfig.from_pretrained(args.model, revision=args.revision, trust_remote_code=True)
    block_size = resolve_block_size(args, base_config.max_position_embeddings)
    data = prepare_task_data(args, tokenizer, block_size)
    model = load_model(args, data.id2label)
    if args.lora_r:
        model = apply_lora(model, args)
    total_parameters, trainable_parameters = count_parameters(model)

    trainer_class = LanguageModelTrainer if args.task == "sft" else Trainer
    trainer = trainer_class(
        model=model,
        args=training_args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        processing_class=tokenizer,
        data_collator=PaddingCollator(tokenizer.pad_token_id),
        compute_metrics=classification_metrics(data.id2label) if args.task == "classification" else None,
    )
    train_result = trainer.train(resume_from_checkpoint=resume_from)
    final_eval = trainer.evaluate() if data.validation is not None else {}

    report: dict = {}
    if trainer.is_world_process_zero():
        output_dir = Path(training_args.output_dir)
        saved_model = save_model_folder(trainer.model, tokenizer, output_dir, args, block_size)
        report = build_finetune_report(
            args=args, training_args=training_args, model=saved_model, tokenizer=tokenizer, data=data,
            trainer=trainer, train_metrics=train_result.metrics, final_eval=final_eval,
            wall_time=time.time() - started, base_report=base_training_report(args),
            parameters=(total_parameters, trainable_parameters),
        )
        write_outputs(output_dir, report, trainer.state.log_history, None)
    if hub_push is not None and trainer.is_world_process_zero():
        print(f"pushed to the Hub: {hub_push.push(training_args.output_dir)}")
    return report


def save_model_folder(model, tokenizer, output_dir: Path, args: FinetuneArguments, block_size: int):
    """Save the trained model (LoRA: the adapter in adapter/ and the merged model at the top) and return the
    plain transformers model that was saved at the top level."""
    output_dir.mkdir(parents=True, exist_ok=True)
    if args.lora_r:
        model.save_pretrained(output_dir / ADAPTER_DIR)
        model = model.merge_and_unload()
    if args.task == "sft":
        generation = model.generation_config
        generation.eos_token_id = [tokenizer.eos_token_id, END_OF_TURN_ID]
        generation.pad_token_id = tokenizer.pad_token_id
        generation.bos_token_id = tokenizer.bos_token_id
    model.config.use_cache = True
    model.save_pretrained(output_dir)
    tokenizer.model_max_length = block_size
    tokenizer.save_pretrained(output_dir)
    return model


def build_finetune_report(*, args, training_args, model, tokenizer, data: TaskData, trainer, train_metrics,
                          final_eval, wall_time, base_report, parameters) -> dict:
    from wenlm.training.hub.publish import redact_secrets

    config = model.config
    n_params = config.num_parameters()
    n_non_embedding = config.num_parameters(exclude_embeddings=True)
    base_tokenizer = base_report.get("tokenizer", {})
    sources = [{"spec": path, "kind": "file", "files": [path]}
               for path in (args.train_file, args.validation_file) if path]
    eval_loss = final_eval.get("eval_loss")
    results = {
        "final_train_loss": last_logged(trainer.state.log_history, "loss"),
        "eval_loss": eval_loss,
        "eval_perplexity": math.exp(min(eval_loss, 50.0)) if eval_loss is not None and args.task == "sft" else None,
        "eval_bpb": None,
        "eval_bytes": None,
    }
    if args.task == "classification":
        results["eval_accuracy"] = final_eval.get("eval_accuracy")
        results["eval_macro_f1"] = final_eval.get("eval_macro_f1")
    report = {
        "model": {
            "preset": base_report.get("model", {}).get("preset"),
            "config": {k: v for k, v in config.to_dict().items() if k not in {"auto_map", "transformers_version"}},
            "parameters": n_params,
            "non_embedding_parameters": n_non_embedding,
            "trained_parameters": parameters[1],
        },
        "tokenizer": {
            "source": args.model,
            "vocab_size": len(tokenizer),
            "jieba": bool(base_tokenizer.get("jieba", False)),
            "stats_by_language": base_tokenizer.get("stats_by_language", {}),
        },
        "data": {
            "sources": sources,
            "block_size": data.report["block_size"],
            "scrub_pii": False,
            "rows": {"train": data.report["train"]["rows"],
                     "validation": data.report["validation"]["rows"] if data.report["validation"] else 0},
        },
        "training": training_section(training_args, trainer, train_metrics, n_non_embedding, wall_time),
        "results": results,
        "entropy_floor_bpb": None,
        "scaling_study": None,
        "license": args.license,
        "wenlm_command": "wenlm finetune",
        "base_model": args.model,
        "base_revision": args.revision,
        "task": args.task,
        args.task: data.report,
        "lora": {"r": args.lora_r, "alpha": args.lora_alpha, "dropout": args.lora_dropout,
                 "target_modules": args.lora_target_modules.split(","), "adapter_dir": ADAPTER_DIR,
                 "merged": True} if args.lora_r else None,
    }
    return json.loads(redact_secrets(json.dumps(report, default=str)))


def main(argv: list[str] | None = None) -> dict:
    args, training_args = parse_finetune_args(argv)
    return finetune(args, training_args)


__all__ = ["FinetuneArguments", "FINETUNE_DEFAULTS", "finetune", "parse_finetune_args", "main", "ADAPTER_DIR"]

if __name__ == "__main__":
    main()
