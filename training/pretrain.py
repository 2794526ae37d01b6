"""`wenlm pretrain`: corpus → cleaned, packed datasets → tokenizer → model trained by the stock Trainer →
a folder that `from_pretrained` and `pipeline` load, with its report, loss curve and model card."""

from __future__ import annotations

import json
import logging
import time
import types
import typing
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

from wenlm.modeling import PRESETS, WenLMConfig, WenLMForCausalLM
from wenlm.tokenization import stop_token_ids, tokenizer_stats, train_tokenizer
from wenlm.training.args import (
    DEFAULT_VOCAB_SIZE,
    PRETRAIN_DEFAULTS,
    DataArguments,
    ModelArguments,
    parse_options,
)
from wenlm.training.args.inspection import CanaryArguments
from wenlm.training.args.training import WenLMTrainingArguments
from wenlm.training.data.packing import count_bytes, token_byte_lengths
from wenlm.training.data.pipeline import prepare_datasets
from wenlm.training.data.sources import builtin_entropy_floor
from wenlm.training.hub.publish import take_hub_push_from_args
from wenlm.training.hub.tokens import redact_secrets
from wenlm.training.inspection.canaries import PretrainingCanaries
from wenlm.training.report import (
    finished_report,
    last_logged,
    model_section,
    training_section,
    write_outputs,
)
from wenlm.training.run_folder import (
    check_checkpoint,
    check_free_space,
    checkpoint_bytes,
    claim_output_folder,
    disk_errors_named,
    last_complete_checkpoint,
    refuse_foreign_files,
    tokenizer_bytes,
)
from wenlm.training.trainer import LanguageModelTrainer

LANGUAGE_SAMPLE_DOCS = 2000

logger = logging.getLogger(__name__)


def parse_override_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _override_matches(value: Any, annotation: Any) -> bool:
    """Whether an override value (parsed as JSON) fits a WenLMConfig field annotation such as ``int | None``."""
    for kind in typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,):
        kind = typing.get_origin(kind) or kind
        if kind is type(None):
            if value is None:
                return True
        elif isinstance(value, bool) or kind is bool:  # JSON true/false is a bool, and a bool is not a number
            if kind is bool and isinstance(value, bool):
                return True
        elif kind is float and isinstance(value, (int, float)):
            return True
        elif isinstance(kind, type) and isinstance(value, kind):
            return True
    return False


# Field types of the config; rope_theta is accepted as a keyword and stored in rope_parameters.
_OVERRIDE_TYPES = {**WenLMConfig.__annotations__, "rope_theta": float}
_TYPE_WORDS = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    dict: "a JSON object",
}


def parse_config_overrides(model_args: ModelArguments) -> dict[str, Any]:
    """The --config_overrides fields, each a known WenLMConfig field with a value of that field's type."""
    overrides: dict[str, Any] = {}
    for item in filter(None, (model_args.config_overrides or "").split(",")):
        if "=" not in item:
            raise ValueError(f"--config_overrides: {item!r} is not of the form name=value.")
        name, value = item.split("=", 1)
        overrides[name.strip()] = parse_override_value(value.strip())
    unknown = set(overrides) - set(WenLMConfig().to_dict()) - {"rope_theta"}
    if unknown:
        raise ValueError(f"--config_overrides: unknown config fields {sorted(unknown)}.")
    for name, value in overrides.items():
        annotation = _OVERRIDE_TYPES.get(name)
        if (
            annotation is not None
            and not isinstance(annotation, str)
            and not _override_matches(value, annotation)
        ):
            kinds = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
            wanted = " or ".join(_TYPE_WORDS.get(typing.get_origin(k) or k, "null") for k in kinds)
            raise ValueError(
                f"--config_overrides: {name}={value!r} is not valid; {name} must be {wanted} "
                f"(e.g. --config_overrides {name}={WenLMConfig.from_preset(model_args.preset).to_dict().get(name)})."
            )
    return overrides


def build_config(
    model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, block_size: int
) -> WenLMConfig:
    overrides = parse_config_overrides(model_args)
    base = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = WenLMConfig.from_preset(model_args.preset, **{**base, **overrides})
    check_block_size(block_size, config, model_args.preset)
    return config


def check_block_size(block_size: int, config: WenLMConfig, preset: str) -> None:
    if block_size > config.max_position_embeddings:
        raise ValueError(
            f"--block_size {block_size} exceeds the context of preset {preset!r} (max_position_embeddings="
            f"{config.max_position_embeddings}); lower --block_size or pass "
            f"--config_overrides max_position_embeddings={block_size}."
        )


def check_settings(
    model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments
) -> None:
    """Refuse, by name, settings that would train nothing, run longer than asked or ignore an option; before any
    data is read or any file written."""
    check_model_arguments(model_args)
    if not training_args.learning_rate > 0:
        raise ValueError(
            f"--learning_rate must be positive, got {training_args.learning_rate}: the model would not learn."
        )
    if training_args.max_steps < -1 or training_args.max_steps == 0:
        raise ValueError(
            f"--max_steps must be a positive number of optimizer steps, or -1 (unset: --num_train_epochs decides); "
            f"got {training_args.max_steps}."
        )
    if training_args.max_steps == -1 and not training_args.num_train_epochs > 0:
        raise ValueError(
            f"--num_train_epochs {training_args.num_train_epochs} trains nothing; give a positive --num_train_epochs "
            "or --max_steps."
        )
    if model_args.tokenizer and model_args.vocab_size is not None:
        raise ValueError(
            f"--vocab_size {model_args.vocab_size} applies only to a tokenizer trained here, but --tokenizer "
            f"{model_args.tokenizer} is given and keeps its own vocabulary; drop one of the two options."
        )
    overrides = parse_config_overrides(model_args)
    check_block_size(
        data_args.block_size, WenLMConfig.from_preset(model_args.preset, **overrides), model_args.preset
    )


def check_tokenizer_matches(tokenizer: PreTrainedTokenizerBase, config: WenLMConfig) -> None:
    if len(tokenizer) > config.vocab_size:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but the model's vocab_size is {config.vocab_size}: ids "
            "past the embedding table would crash. Use the tokenizer the model was trained with, or call "
            "model.resize_token_embeddings(len(tokenizer))."
        )


def parse_pretrain_args(
    argv: list[str] | None = None,
) -> tuple[ModelArguments, DataArguments, WenLMTrainingArguments, CanaryArguments]:
    return parse_options(
        (ModelArguments, DataArguments, WenLMTrainingArguments, CanaryArguments),
        argv,
        defaults=PRETRAIN_DEFAULTS,
        command="pretrain",
    )


def check_output_dir(training_args: TrainingArguments) -> str | None:
    """Return the checkpoint to resume from (only a complete one), and refuse a run whose output folder holds
    another run's files, whatever the flags."""
    output_dir = Path(training_args.output_dir)
    resume = training_args.resume_from_checkpoint
    checkpoint = None
    if resume in ("True", "true", "last"):
        checkpoint = last_complete_checkpoint(output_dir)
        if checkpoint is None:
            raise ValueError(
                f"--resume_from_checkpoint last: no complete checkpoint-* folder found in {output_dir} (incomplete "
                "ones are named in the warnings above). Start the run anew with another --output_dir."
            )
    elif resume:
        checkpoint = check_checkpoint(resume)
    # Only the main process judges the folder: the others start while it may already be writing there.
    if training_args.process_index == 0:
        refuse_foreign_files(output_dir, checkpoint)
    return checkpoint


def load_or_train_tokenizer(model_args: ModelArguments, data_args: DataArguments, block_size: int):
    if model_args.tokenizer:
        tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer)
        if tokenizer.eos_token_id is None:
            raise ValueError(
                f"Tokenizer {model_args.tokenizer} has no eos token; documents could not be separated."
            )
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer, None

    def trainer(texts):
        return train_tokenizer(
            texts,
            vocab_size=model_args.vocab_size or DEFAULT_VOCAB_SIZE,
            min_frequency=model_args.tokenizer_min_frequency,
            use_jieba=model_args.use_jieba,
            split_rule=model_args.split_rule,
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


def prepare_data_and_tokenizer(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    resume_from: str | None,
    canaries: PretrainingCanaries | None = None,
):
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
        edit_raw = canaries.edit_raw if canaries is not None and canaries.options.canaries else None
        prepared = prepare_datasets(
            data_args, tokenizer=tokenizer, tokenizer_trainer=tokenizer_trainer, edit_raw=edit_raw
        )
        if edit_raw is not None and training_args.process_index == 0:
            canaries.record(iter(prepared.train_text["text"]), prepared.report)
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
    model.generation_config.eos_token_id = stop_token_ids(tokenizer)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def evaluation_data(prepared, tokenizer) -> tuple[datasets.Dataset, int]:
    """The validation blocks as a map-style dataset and the UTF-8 bytes of the tokens they predict."""
    eval_dataset = prepared.validation
    if isinstance(eval_dataset, datasets.IterableDataset):
        # The validation split is bounded (max_validation_docs); materialising it makes bits per byte exact.
        eval_dataset = datasets.Dataset.from_list(list(eval_dataset))
    return eval_dataset, count_bytes(eval_dataset, token_byte_lengths(tokenizer))


def pretrain(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    canary_args: CanaryArguments | None = None,
) -> dict:
    """Run the whole job and return the training report (also written to the output folder)."""
    started = time.time()
    # Before anything saves the arguments: the token must not reach training_args.bin, and only the validated
    # push at the end publishes (the Trainer's own hub sync is turned off).
    hub_push = take_hub_push_from_args(training_args)
    check_settings(model_args, data_args, training_args)
    canaries = PretrainingCanaries(canary_args, training_args.output_dir) if canary_args is not None else None
    if data_args.streaming and training_args.max_steps <= 0:
        raise ValueError(
            "--streaming needs --max_steps: the length of a streamed corpus is unknown in advance."
        )
    # Locked before the folder is judged, so that two runs started together cannot both find it free.
    with claim_output_folder(training_args.output_dir, main_process=training_args.process_index == 0):
        return run_pretraining(model_args, data_args, training_args, hub_push, started, canaries)


def run_pretraining(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    hub_push,
    started: float,
    canaries: PretrainingCanaries | None = None,
) -> dict:
    """The job itself, run while the output folder is held (see claim_output_folder)."""
    resume_from = check_output_dir(training_args)
    set_seed(training_args.seed)
    block_size = data_args.block_size
    prepared, tokenizer = prepare_data_and_tokenizer(
        model_args, data_args, training_args, resume_from, canaries
    )
    model = new_model(model_args, tokenizer, block_size)
    if training_args.process_index == 0:  # before the first checkpoint: a disk without room for one is named
        check_free_space(
            training_args.output_dir,
            checkpoint_bytes(model.num_parameters(), tokenizer_bytes=tokenizer_bytes(tokenizer)),
        )
    eval_dataset, eval_bytes = evaluation_data(prepared, tokenizer)
    prepared.report["tokenizer_stats_by_language"] = stats_by_language(tokenizer, prepared.validation_text)
    floor = builtin_entropy_floor(data_args.train_files)
    if floor is not None:
        prepared.report["entropy_floor_bpb"] = floor

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
    # A full or read-only disk mid-run is named with the last complete checkpoint to resume from.
    with disk_errors_named(training_args.output_dir):
        train_result = trainer.train(resume_from_checkpoint=resume_from)
        final_eval = trainer.evaluate() if eval_dataset is not None else {}
        report = {}
        if trainer.is_world_process_zero():
            save_model_folder(trainer, tokenizer, training_args.output_dir)
            report = build_report(
                trainer,
                model_args,
                data_args,
                prepared,
                train_result.metrics,
                final_eval,
                time.time() - started,
                eval_bytes,
            )
            write_outputs(Path(training_args.output_dir), report, trainer.state.log_history)
    if hub_push is not None and trainer.is_world_process_zero():
        commit_url = hub_push.push(training_args.output_dir)
        print(f"pushed to the Hub: {commit_url}")
    return report


def save_model_folder(trainer, tokenizer, output_dir: str | Path) -> None:
    """The trained model and its tokenizer, saved so that the files agree with each other and with inference:
    the Trainer turns the KV cache off for training, and the tokenizer's length limit is the model's context
    (training blocks may be shorter)."""
    trainer.model.config.use_cache = True
    tokenizer.model_max_length = trainer.model.config.max_position_embeddings
    trainer.save_model(output_dir)
    tokenizer.save_pretrained(output_dir)


def build_report(
    trainer,
    model_args: ModelArguments,
    data_args: DataArguments,
    prepared,
    train_metrics: dict,
    final_eval: dict,
    wall_time: float,
    eval_bytes: int,
) -> dict:
    model_part = model_section(trainer.model.config, model_args.preset)
    training = training_section(
        trainer.args, trainer, train_metrics, model_part["non_embedding_parameters"], wall_time
    )
    return finished_report(
        {
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
                # What bits per byte divide by; the loss curve converts training losses with it too.
                "validation_bytes_per_token": trainer.eval_bytes_per_token,
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
        }
    )


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
    model_args, data_args, training_args, canary_args = parse_pretrain_args(argv)
    return pretrain(model_args, data_args, training_args, canary_args)


if __name__ == "__main__":
    main()
