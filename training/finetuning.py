"""The fine-tuning job behind `wenlm finetune`: adapt a pretrained wenlm model to chat/instruction data (SFT, loss on the assistant's tokens
only), to sequence classification, or to embedding texts for retrieval (contrastive InfoNCE on query/document pairs,
training/retrieval/contrastive.py), with the stock Trainer and optionally LoRA.

The output folder looks like a pretraining folder: model (safetensors), tokenizer, generation config, remote code,
training_report.json (pretraining's keys plus "base_model", "task" and the task's data counts), log_history.json,
loss_curve.png and the README.md model card. An embedding model also gets the sentence-transformers files
(training/retrieval/sentence_transformers_files.py) for its pooling.

With ``--lora_r > 0`` only low-rank adapters are trained. The folder then holds the adapter in ``adapter/``
(``PeftModel.from_pretrained(base, output_dir/adapter)``) and, at its top level, the adapter merged into the base
weights: a plain wenlm model that loads without peft.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import datasets
import numpy as np
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import IntervalStrategy

from wenlm.tokenization import stop_token_ids
from wenlm.training.args import (
    DEFAULT_MAX_BLOCK_SIZE,
    FINETUNE_TASKS,
    FinetuneArguments,
)
from wenlm.training.data.tasks import (
    EncodedSplit,
    PaddingCollator,
    RowSet,
    collect_labels,
    concatenate_splits,
    encode_classification_rows,
    encode_sft_rows,
    raise_or_count_bad_rows,
    read_rows,
)
from wenlm.training.evaluation.metrics import compute_metric
from wenlm.training.hub.publish import take_hub_push_from_args
from wenlm.training.model_folder import (
    TRAINING_REPORT,
    check_model_folder,
    check_wenlm_model_type,
    hub_errors_named,
)
from wenlm.training.report import (
    finished_report,
    last_logged,
    model_section,
    training_section,
    write_outputs,
)
from wenlm.training.retrieval.contrastive import (
    ContrastiveTrainer,
    PairCollator,
    PairSplit,
    prepare_pair_data,
    retrieval_scores,
)
from wenlm.training.retrieval.sentence_transformers_files import write_sentence_transformers_config
from wenlm.training.run_folder import (
    check_output_dir,
    check_output_disk,
    checkpoint_bytes,
    disk_errors_named,
    tokenizer_bytes,
)
from wenlm.training.trainer import CompleteCheckpointsTrainer, LanguageModelTrainer
from wenlm.training.utils import perplexity

logger = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"


def check_arguments(args: FinetuneArguments) -> None:
    if args.task not in FINETUNE_TASKS:
        raise ValueError(f"--task {args.task!r} is unknown; use one of {', '.join(FINETUNE_TASKS)}.")
    if not args.train_files:
        raise ValueError("--train_files is empty; give at least one file of training rows.")
    for name in ("train_files", "validation_files"):
        for path in getattr(args, name) or []:
            if not Path(path).is_file():
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
        raise ValueError(
            f"The tokenizer of {args.model} has no chat_template, which SFT rows are rendered with."
        )
    return tokenizer


def resolve_block_size(args: FinetuneArguments, max_positions: int) -> int:
    if args.block_size is None:
        return min(max_positions, DEFAULT_MAX_BLOCK_SIZE)
    if args.block_size > max_positions:
        raise ValueError(
            f"--block_size {args.block_size} exceeds the model's max_position_embeddings={max_positions}."
        )
    return args.block_size


def base_training_report(args: FinetuneArguments) -> dict:
    """The base model's own training report when it is a local wenlm folder (preset, tokenizer statistics)."""
    path = Path(args.model) / TRAINING_REPORT
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def apply_lora(model, args: FinetuneArguments):
    try:
        from peft import LoraConfig, TaskType, get_peft_model  # optional: wenlm[lora]
    except ImportError as error:
        raise ImportError("--lora_r needs peft: pip install 'wenlm[lora]'") from error
    targets = [name.strip() for name in args.lora_target_modules.split(",") if name.strip()]
    if not targets:
        raise ValueError("--lora_target_modules is empty.")
    module_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    unknown = sorted(set(targets) - module_names)
    if unknown:
        raise ValueError(
            f"--lora_target_modules: the model has no modules named {unknown}; it has e.g. "
            f"{sorted(n for n in module_names if n.endswith('_proj'))}."
        )
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS if args.task == "classification" else TaskType.CAUSAL_LM,
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=targets,
    )
    return get_peft_model(model, config)


def count_parameters(model) -> tuple[int, int]:
    # Tied embeddings are one tensor: count parameters by identity, not by name.
    unique = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in unique), sum(p.numel() for p in unique if p.requires_grad)


def classification_metrics(id2label: dict[int, str]):
    labels = sorted(id2label)

    def compute(prediction) -> dict:
        logits = (
            prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        )
        predicted = np.asarray(logits).argmax(-1).tolist()
        scores = compute_metric(
            "classification", predicted, np.asarray(prediction.label_ids).tolist(), labels=labels
        )
        return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}

    return compute


@dataclass
class TaskData:
    train: datasets.Dataset
    validation: datasets.Dataset | None
    report: dict
    id2label: dict[int, str] | None = None
    retrieval: PairSplit | None = None  # --task embedding: the validation queries and documents


def encode_files(
    args: FinetuneArguments, row_sets: list[RowSet], tokenizer, block_size: int, label2id: dict | None
) -> EncodedSplit:
    """Every file's rows encoded for the task, concatenated in the order the files were given."""
    if args.task == "sft":
        return concatenate_splits([encode_sft_rows(rows, tokenizer, block_size) for rows in row_sets])
    columns = dict(text_column=args.text_column, label_column=args.label_column)
    return concatenate_splits(
        [encode_classification_rows(rows, tokenizer, block_size, label2id, **columns) for rows in row_sets]
    )


def prepare_task_data(args: FinetuneArguments, tokenizer, block_size: int) -> TaskData:
    if args.task == "embedding":
        pairs = prepare_pair_data(
            args.train_files, args.validation_files, tokenizer, block_size, args.skip_bad_rows
        )
        report = {**pairs.report, "pooling": args.pooling, "temperature": args.temperature}
        return TaskData(pairs.train, pairs.validation, report, retrieval=pairs.validation_split)
    train_rows = [read_rows(path) for path in args.train_files]
    validation_rows = [read_rows(path) for path in args.validation_files or []]
    id2label = label2id = None
    if args.task == "classification":
        id2label = {
            index: str(label) for index, label in enumerate(collect_labels(train_rows, args.label_column))
        }
        label2id = {name: index for index, name in id2label.items()}
    train = encode_files(args, train_rows, tokenizer, block_size, label2id)
    validation = (
        encode_files(args, validation_rows, tokenizer, block_size, label2id) if validation_rows else None
    )
    bad_rows = raise_or_count_bad_rows(train_rows + validation_rows, args.skip_bad_rows)
    if not train.examples:
        raise ValueError(f"{', '.join(args.train_files)}: no usable training rows.")
    if validation is not None and not validation.examples:
        raise ValueError(f"{', '.join(args.validation_files)}: no usable validation rows.")
    report = {
        "train": train.report,
        "validation": validation.report if validation else None,
        "rows": train.report["rows"] + (validation.report["rows"] if validation else 0),
        "bad_rows": bad_rows["total"],
        "bad_row_details": bad_rows["by_file"],
        "skip_bad_rows": args.skip_bad_rows,
        "truncated": train.report["truncated"] + (validation.report["truncated"] if validation else 0),
        # Rows whose text holds a special-token string: encoded as text, never as control tokens.
        "special_token_strings_in_text": sum(
            split.report["special_token_strings_in_text"]
            for split in (train, validation)
            if split is not None
        ),
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
    if args.task != "classification":  # an embedding model stays a causal LM: its folder loads as one
        return AutoModelForCausalLM.from_pretrained(args.model, **common)
    # The `score` head is new (randomly initialised); transformers reports it as newly initialised.
    return AutoModelForSequenceClassification.from_pretrained(
        args.model,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={name: index for index, name in id2label.items()},
        **common,
    )


def adjust_training_arguments(training_args: TrainingArguments, args: FinetuneArguments) -> None:
    if not args.validation_files and training_args.eval_strategy != IntervalStrategy.NO:
        logger.info("No --validation_files: evaluation during training is off.")
        training_args.eval_strategy = IntervalStrategy.NO
    # Classification metrics need the logits; SFT and embedding evaluation need only the loss.
    training_args.prediction_loss_only = args.task != "classification"
    training_args.remove_unused_columns = False


def finetune(args: FinetuneArguments, training_args: TrainingArguments) -> dict:
    """Run the whole job and return the training report (also written to the output folder)."""
    started = time.time()
    check_arguments(args)
    # The base model is checked before the output folder is touched, and before any data is prepared.
    check_model_folder(args.model)
    with hub_errors_named(args.model):
        base_config = AutoConfig.from_pretrained(args.model, revision=args.revision, trust_remote_code=True)
    check_wenlm_model_type(base_config.model_type, args.model, "finetune")
    resume_from = check_output_dir(training_args)
    adjust_training_arguments(training_args, args)
    # Moves --hub_token out of the arguments the Trainer pickles, and publishes once at the end, validated.
    hub_push = take_hub_push_from_args(training_args)
    set_seed(training_args.seed)

    tokenizer = load_tokenizer(args)
    block_size = resolve_block_size(args, base_config.max_position_embeddings)
    data = prepare_task_data(args, tokenizer, block_size)
    model = load_model(args, data.id2label)
    retrieval_before = validation_retrieval(model, tokenizer, data, args, training_args, block_size)
    if args.lora_r:
        model = apply_lora(model, args)
    all_parameters, trained_parameters = count_parameters(model)
    output_dir = Path(training_args.output_dir)
    if training_args.process_index == 0:  # before the first file: a read-only folder or a full disk, named
        check_output_disk(
            output_dir, checkpoint_bytes(all_parameters, trained_parameters, tokenizer_bytes(tokenizer))
        )

    trainer_class = LanguageModelTrainer if args.task == "sft" else CompleteCheckpointsTrainer
    collator = PaddingCollator(tokenizer.pad_token_id)
    if args.task == "embedding":
        trainer_class = partial(ContrastiveTrainer, pooling=args.pooling, temperature=args.temperature)
        collator = PairCollator(tokenizer.pad_token_id)
    trainer = trainer_class(
        model=model,
        args=training_args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=classification_metrics(data.id2label) if args.task == "classification" else None,
    )
    with disk_errors_named(output_dir):
        train_result = trainer.train(resume_from_checkpoint=resume_from)
        final_eval = trainer.evaluate() if data.validation is not None else {}
        report: dict = {}
        if trainer.is_world_process_zero():
            saved_model = save_model_folder(trainer.model, tokenizer, output_dir, args)
            if args.task == "embedding":
                write_sentence_transformers_config(output_dir, args.pooling)
                after = validation_retrieval(saved_model, tokenizer, data, args, training_args, block_size)
                data.report["validation_retrieval"] = (
                    {"before": retrieval_before, "after": after} if after else None
                )
            report = build_finetune_report(
                args,
                trainer,
                saved_model.config,
                data,
                train_result.metrics,
                final_eval,
                time.time() - started,
                trained_parameters,
            )
            write_outputs(output_dir, report, trainer.state.log_history)
    if hub_push is not None and trainer.is_world_process_zero():
        print(f"pushed to the Hub: {hub_push.push(training_args.output_dir)}")
    return report


def validation_retrieval(
    model, tokenizer, data: TaskData, args: FinetuneArguments, training_args, block_size: int
) -> dict | None:
    """--task embedding with validation files: recall@1/@10 and MRR of the validation queries among the
    validation documents (exact search; on the main process only)."""
    if args.task != "embedding" or data.retrieval is None or training_args.process_index != 0:
        return None
    return retrieval_scores(
        model, tokenizer, data.retrieval, args.pooling, training_args.per_device_eval_batch_size, block_size
    )


def save_model_folder(model, tokenizer, output_dir: Path, args: FinetuneArguments):
    """Save the trained model (LoRA: the adapter in adapter/ and the merged model at the top) and return the
    plain transformers model that was saved at the top level."""
    output_dir.mkdir(parents=True, exist_ok=True)
    if args.lora_r:
        model.save_pretrained(output_dir / ADAPTER_DIR)
        model = model.merge_and_unload()
    if args.task == "sft":
        generation = model.generation_config
        generation.eos_token_id = stop_token_ids(tokenizer)
        generation.pad_token_id = tokenizer.pad_token_id
        generation.bos_token_id = tokenizer.bos_token_id
    model.config.use_cache = True
    model.save_pretrained(output_dir)
    # The model's context, not the training blocks: what generation and truncation may use.
    tokenizer.model_max_length = model.config.max_position_embeddings
    tokenizer.save_pretrained(output_dir)
    return model


def build_finetune_report(
    args: FinetuneArguments,
    trainer,
    config,
    data: TaskData,
    train_metrics: dict,
    final_eval: dict,
    wall_time: float,
    trained_parameters: int,
) -> dict:
    """Pretraining's report keys (so the model card reads both alike), plus the base model, task and LoRA."""
    base_report = base_training_report(args)
    base_tokenizer = base_report.get("tokenizer", {})
    model_part = {
        **model_section(config, base_report.get("model", {}).get("preset")),
        "trained_parameters": trained_parameters,
    }
    files = [*args.train_files, *(args.validation_files or [])]
    eval_loss = final_eval.get("eval_loss")
    results = {
        "final_train_loss": last_logged(trainer.state.log_history, "loss"),
        "eval_loss": eval_loss,
        "eval_perplexity": perplexity(eval_loss) if eval_loss is not None and args.task == "sft" else None,
        "eval_bpb": None,
        "eval_bytes": None,
    }
    if args.task == "classification":
        results["eval_accuracy"] = final_eval.get("eval_accuracy")
        results["eval_macro_f1"] = final_eval.get("eval_macro_f1")
    if args.task == "embedding" and data.report.get("validation_retrieval"):
        results.update(
            {
                f"eval_{name}": value
                for name, value in data.report["validation_retrieval"]["after"].items()
                if name not in ("queries", "documents")
            }
        )
    return finished_report(
        {
            "model": model_part,
            "tokenizer": {
                "source": args.model,
                "vocab_size": len(trainer.processing_class),
                "jieba": bool(base_tokenizer.get("jieba", False)),
                "stats_by_language": base_tokenizer.get("stats_by_language", {}),
            },
            "data": {
                "sources": [{"spec": path, "kind": "file", "files": [path]} for path in files],
                "block_size": data.report["block_size"],
                "scrub_pii": False,
                "rows": {
                    "train": data.report["train"]["rows"],
                    "validation": data.report["validation"]["rows"] if data.report["validation"] else 0,
                },
            },
            "training": training_section(
                trainer.args, trainer, train_metrics, model_part["non_embedding_parameters"], wall_time
            ),
            "results": results,
            "entropy_floor_bpb": None,
            "scaling_study": None,
            "license": args.license,
            "wenlm_command": "wenlm finetune",
            "base_model": args.model,
            "base_revision": args.revision,
            "task": args.task,
            args.task: data.report,
            "lora": {
                "r": args.lora_r,
                "alpha": args.lora_alpha,
                "dropout": args.lora_dropout,
                "target_modules": args.lora_target_modules.split(","),
                "adapter_dir": ADAPTER_DIR,
                "merged": True,
            }
            if args.lora_r
            else None,
        }
    )
