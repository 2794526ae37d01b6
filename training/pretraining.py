"""The pretraining job behind `wenlm pretrain` and `wenlm quickstart`: corpus → cleaned, packed datasets →
tokenizer → model trained by the stock Trainer → a folder that `from_pretrained` and `pipeline` load, with its
report, loss curve and model card."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import datasets
from transformers import (
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    TrainingArguments,
    set_seed,
)

from wenlm.modeling import WenLMConfig
from wenlm.tokenization import tokenizer_stats, train_tokenizer
from wenlm.training.args import (
    DEFAULT_VOCAB_SIZE,
    DataArguments,
    ModelArguments,
)
from wenlm.training.args.inspection import CanaryArguments
from wenlm.training.data.packing import count_bytes, token_byte_lengths
from wenlm.training.data.pipeline import prepare_datasets
from wenlm.training.data.sources import builtin_entropy_floor
from wenlm.training.hub.publish import take_hub_push_from_args
from wenlm.training.inspection.canaries import PretrainingCanaries
from wenlm.training.model_config import (
    check_block_size,
    check_model_arguments,
    new_model,
    parse_config_overrides,
)
from wenlm.training.report import (
    finished_report,
    last_logged,
    model_section,
    training_section,
    write_outputs,
)
from wenlm.training.run_folder import (
    check_free_space,
    check_output_dir,
    checkpoint_bytes,
    claim_output_folder,
    disk_errors_named,
    tokenizer_bytes,
)
from wenlm.training.trainer import LanguageModelTrainer
from wenlm.training.utils.secrets import redact_secrets
from wenlm.training.utils.text import is_mostly_chinese

LANGUAGE_SAMPLE_DOCS = 2000

logger = logging.getLogger(__name__)


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


def stats_by_language(tokenizer, texts) -> dict:
    """Bytes and characters per token on up to LANGUAGE_SAMPLE_DOCS validation documents, per language."""
    by_language: dict[str, list[str]] = {"zh": [], "en": []}
    for index, example in enumerate(texts):
        if index >= LANGUAGE_SAMPLE_DOCS:
            break
        text = example["text"]
        by_language["zh" if is_mostly_chinese(text) else "en"].append(text)
    return {language: tokenizer_stats(tokenizer, docs) for language, docs in by_language.items() if docs}
