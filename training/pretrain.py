"""`wenlm pretrain`: corpus → cleaned, packed datasets → tokenizer → model trained by the stock Trainer →
a folder that `from_pretrained` and `pipeline` load, with its report, loss curve and model card."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import datasets
from transformers import (
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerBase,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import get_last_checkpoint

from wenlm.modeling import PRESETS, WenLMConfig, WenLMForCausalLM
from wenlm.tokenization import tokenizer_stats, train_tokenizer
from wenlm.training.args import CPU_TRAINING_DEFAULTS, DataArguments, ModelArguments, parse_options
from wenlm.training.corpus.grammar import exact_entropy_bits_per_byte
from wenlm.training.data.packing import count_bytes, token_byte_lengths
from wenlm.training.data.pipeline import prepare_datasets
from wenlm.training.hub.publish import take_hub_push_from_args
from wenlm.training.hub.tokens import redact_secrets
from wenlm.training.report import (
    finished_report,
    last_logged,
    model_section,
    training_section,
    write_outputs,
)
from wenlm.training.trainer import LanguageModelTrainer

LANGUAGE_SAMPLE_DOCS = 2000

logger = logging.getLogger(__name__)

def parse_override_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_config(model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, block_size: int) -> WenLMConfig:
    overrides: dict[str, Any] = {}
    for item in filter(None, (model_args.config_overrides or "").split(",")):
        if "=" not in item:
            raise ValueError(f"--config_overrides: {item!r} is not of the form name=value.")
        name, value = item.split("=", 1)
        overrides[name.strip()] = parse_override_value(value.strip())
    unknown = set(overrides) - set(WenLMConfig().to_dict()) - {"rope_theta"}
    if unknown:
        raise ValueError(f"--config_overrides: unknown config fields {sorted(unknown)}.")
    base = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = WenLMConfig.from_preset(model_args.preset, **{**base, **overrides})
    if block_size > config.max_position_embeddings:
        raise ValueError(
            f"--block_size {block_size} exceeds the model's max_position_embeddings="
            f"{config.max_position_embeddings}; lower --block_size or pass "
            f"--config_overrides max_position_embeddings={block_size}."
        )
    return config


def check_tokenizer_matches(tokenizer: PreTrainedTokenizerBase, config: WenLMConfig) -> None:
    if len(tokenizer) > config.vocab_size:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but the model's vocab_size is {config.vocab_size}: ids "
            "past the embedding table would crash. Use the tokenizer the model was trained with, or call "
            "model.resize_token_embeddings(len(tokenizer))."
        )


def parse_pretrain_args(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    return parse_options(
        (ModelArguments, DataArguments, TrainingArguments), argv, defaults=CPU_TRAINING_DEFAULTS, command="pretrain"
    )


def check_output_dir(training_args: TrainingArguments) -> str | None:
    """Return the checkpoint to resume from, and refuse to train over what a folder already holds."""
    output_dir = Path(training_args.output_dir)
    resume = training_args.resume_from_checkpoint
    if resume in ("True", "true", "last"):
        last = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
        if last is None:
            raise ValueError(f"--resume_from_checkpoint last: no checkpoint-* folder found in {output_dir}.")
        return last
    if resume:
        if not Path(resume).is_dir():
            raise FileNotFoundError(f"--resume_from_checkpoint {resume}: no such checkpoint folder.")
        return resume
    # Only the main process judges the folder: the others start while it may already be writing there.
    if training_args.process_index == 0 and output_dir.is_dir() and any(output_dir.iterdir()):
        if not getattr(training_args, "overwrite_output_dir", False):
            raise FileExistsError(
                f"Output folder {output_dir} already holds files. Pass --resume_from_checkpoint last to continue "
                "its run, choose another --output_dir, or delete the folder: wenlm never overwrites a model silently."
            )
    return None


def load_or_train_tokenizer(model_args: ModelArguments, data_args: DataArguments, block_size: int):
    if model_args.tokenizer:
        tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer)
        if tokenizer.eos_token_id is None:
            raise ValueError(f"Tokenizer {model_args.tokenizer} has no eos token; documents could not be separated.")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer, None

    def trainer(texts):
        return train_tokenizer(
            texts,
            vocab_size=model_args.vocab_size,
            min_frequency=model_args.tokenizer_min_frequency,
            use_jieba=model_args.use_jieba,
            model_max_length=block_size,
        )

    return None, trainer


def check_model_arguments(model_args: ModelArguments) -> None:
    if model_args.preset not in PRESETS:
        raise ValueError(f"--preset {model_args.preset!r} is unknown. Valid presets: {', '.join(PRESETS)}.")
    if model_args.loss_chunk_size < 0:
        raise ValueError(
            f"--loss_chunk_size must be a positive number of token rows, or 0 for the stock loss; "
            f"got {model_args.loss_chunk_size}."
        )


def prepare_data_and_tokenizer(model_args: ModelArguments, data_args: DataArguments,
                               training_args: TrainingArguments, resume_from: str | None):
    """The prepared datasets and the tokenizer (taken, reloaded on resume, or trained and saved)."""
    block_size = data_args.block_size
    tokenizer, tokenizer_trainer = load_or_train_tokenizer(model_args, data_args, block_size)
    # A resumed run continues with the tokenizer it started with; a fresh one trains it once, in the main process,
    # and the other processes of a distributed run load it from the output folder.
    output_dir = Path(training_args.output_dir)
    if tokenizer is None and resume_from:
        tokenizer, tokenizer_trainer = AutoTokenizer.from_pretrained(resume_from), None
    with training_args.main_process_first(desc="preparing data and tokenizer"):
        if tokenizer is None and training_args.process_index != 0:
            tokenizer, tokenizer_trainer = AutoTokenizer.from_pretrained(output_dir), None
        prepared = prepare_datasets(data_args, tokenizer=tokenizer, tokenizer_trainer=tokenizer_trainer)
        tokenizer = prepared.tokenizer
        tokenizer.model_max_length = block_size
        if training_args.process_index == 0:
            tokenizer.save_pretrained(output_dir)
    return prepared, tokenizer


def new_model(model_args: ModelArguments, tokenizer, block_size: int) -> WenLMForCausalLM:
    config = build_config(model_args, tokenizer, block_size)
    check_tokenizer_matches(tokenizer, config)
    model = WenLMForCausalLM._from_config(config, attn_implementation=model_args.attn_implementation)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def evaluation_data(prepared, tokenizer) -> tuple[datasets.Dataset, int]:
    """The validation blocks as a map-style dataset and the UTF-8 bytes of the tokens they predict."""
    eval_dataset = prepared.validation
    if isinstance(eval_dataset, datasets.IterableDataset):
        # The validation split is bounded (max_validation_docs); materialising it makes bits per byte exact.
        eval_dataset = datasets.Dataset.from_list(list(eval_dataset))
    return eval_dataset, count_bytes(eval_dataset, token_byte_lengths(tokenizer))


def pretrain(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> dict:
    """Run the whole job and return the training report (also written to the output folder)."""
    started = time.time()
    # Before anything saves the arguments: the token must not reach training_args.bin, and only the validated
    # push at the end publishes (the Trainer's own hub sync is turned off).
    hub_push = take_hub_push_from_args(training_args)
    if data_args.streaming and training_args.max_steps <= 0:
        raise ValueError("--streaming needs --max_steps: the length of a streamed corpus is unknown in advance.")
    resume_from = check_output_dir(training_args)
    set_seed(training_args.seed)
    block_size = data_args.block_size
    check_model_arguments(model_args)
    prepared, tokenizer = prepare_data_and_tokenizer(model_args, data_args, training_args, resume_from)
    model = new_model(model_args, tokenizer, block_size)
    eval_dataset, eval_bytes = evaluation_data(prepared, tokenizer)
    prepared.report["tokenizer_stats_by_language"] = stats_by_language(tokenizer, prepared.validation_text)
    if any(str(source).startswith("builtin") for source in data_args.train_files):
        prepared.report["entropy_floor_bpb"] = exact_entropy_bits_per_byte()["bits_per_byte"]

    trainer = LanguageModelTrainer(
        model=model,
        args=training_args,
        train_dataset=prepared.train,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        eval_bytes_per_token=eval_bytes / (len(eval_dataset) * (block_size - 1)),
        loss_chunk_size=model_args.loss_chunk_size,
    )
    train_result = trainer.train(resume_from_checkpoint=resume_from)
    final_eval = trainer.evaluate() if eval_dataset is not None else {}

    report = {}
    if trainer.is_world_process_zero():
        trainer.save_model(training_args.output_dir)
        tokenizer.save_pretrained(training_args.output_dir)
        report = build_report(trainer, model_args, data_args, prepared, train_result.metrics, final_eval,
                              time.time() - started, eval_bytes)
        write_outputs(Path(training_args.output_dir), report, trainer.state.log_history)
    if hub_push is not None and trainer.is_world_process_zero():
        commit_url = hub_push.push(training_args.output_dir)
        print(f"pushed to the Hub: {commit_url}")
    return report


def build_report(trainer, model_args: ModelArguments, data_args: DataArguments, prepared, train_metrics: dict,
                 final_eval: dict, wall_time: float, eval_bytes: int) -> dict:
    model_part = model_section(trainer.model.config, model_args.preset)
    training = training_section(trainer.args, trainer, train_metrics, model_part["non_embedding_parameters"],
                                wall_time)
    return finished_report({
        "model": model_part,
        "tokenizer": {
            "source": model_args.tokenizer or "trained on the training corpus",
            "vocab_size": len(trainer.processing_class),
            "jieba": model_args.use_jieba,
            "stats_by_language": prepared.report.get("tokenizer_stats_by_language", {}),
        },
        "data": {
            "sources": [redact_secrets(str(source)) for source in data_args.train_files],
            "block_size": data_args.block_size,
            "scrub_pii": data_args.scrub_pii,
            **prepared.report,
        },
        "training": training,
        "results": {
            "final_train_loss": last_logged(trainer.state.log_history, "loss"),
            "eval_loss": final_eval.get("eval_loss"),
            "eval_perplexity": final_eval.get("eval_perplexity"),
            "eval_bpb": final_eval.get("eval_bpb"),
            "eval_bytes": eval_bytes,
        },
        "entropy_floor_bpb": prepared.report.get("entropy_floor_bpb"),
        "scaling_study": model_args.scaling_study,
        "license": model_args.license,
        "wenlm_command": "wenlm pretrain",
    })


def is_mostly_chinese(text: str) -> bool:
    han = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")
    letters = sum(1 for ch in text if ch.isalpha())
    return letters > 0 and han / letters > 0.5


def stats_by_language(tokenizer, texts) -> dict:
    """Bytes and characters per token on up to LANGUAGE_SAMPLE_DOCS validation documents, per language."""
    by_language: dict[str, list[str]] = {"zh": [], "en": []}
    for index, example in enumerate(texts):
        if index >= LANGUAGE_SAMPLE_DOCS:
            break
        text = example["text"]
        by_language["zh" if is_mostly_chinese(text) else "en"].append(text)
    return {language: tokenizer_stats(tokenizer, docs) for language, docs in by_language.items() if docs}


def main(argv: list[str] | None = None) -> dict:
    model_args, data_args, training_args = parse_pretrain_args(argv)
    return pretrain(model_args, data_args, training_args)


if __name__ == "__main__":
    main()
