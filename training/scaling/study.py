"""`wenlm scaling`: a data-scale study.

Trains a grid of (model size, training tokens D) cells with the stock Trainer, evaluates every cell on the
same held-out documents, then fits and plots scaling laws with :mod:`wenlm.training.scaling.fit` and
:mod:`wenlm.training.scaling.report`.

Design decisions:

* One tokenizer for the whole study, trained once on the training documents and saved in the study folder,
  so every cell sees the same token ids and a resumed study keeps them.
* One token stream: the training documents are shuffled with a fixed seed, tokenized and packed into
  blocks; the cell with D tokens trains on the first ceil(D / block_size) blocks.  Cells are therefore nested
  (a smaller cell's data is a prefix of a larger cell's), which removes data-sampling noise from the
  comparison between data sizes.  The shuffle matters for real corpora, whose files are usually ordered
  (by author, era, topic), so a prefix of the raw order would not be a sample of the corpus.
* Validation documents are held out by document (see wenlm.training.data.pipeline) and are identical for every cell.
* Each cell runs ``epochs`` passes (default 1: every token seen once) with a cosine schedule whose warmup is a
  fraction of that cell's own steps, i.e. the schedule is scaled to the run length (Hoffmann et al. 2022
  showed that a schedule tuned for a longer run overestimates the loss of shorter ones).
* Every finished cell is written at once to ``cells/<model>_<D>.json`` (atomically), so a killed study
  resumes where it stopped; model weights are not kept unless ``--save_models`` names a folder for them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import platform
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wenlm.training.scaling.fit import METRIC_UNITS, PUBLISHED_EXPONENTS, fit_study
from wenlm.training.scaling.report import load_records, write_report

logger = logging.getLogger(__name__)

# The default grid: finishes in under 30 minutes on 2 CPU cores (see benchmarks/results/scaling_builtin).
DEFAULT_TRAIN_FILES = ("builtin",)
DEFAULT_DATA_SIZES = "1e5,2e5,5e5,1e6"
DEFAULT_PRESETS = "nano:num_hidden_layers=2,nano,micro"
DEFAULT_VOCAB_SIZE = 1024
DEFAULT_BLOCK_SIZE = 128
DEFAULT_BATCH_SIZE = 16
DEFAULT_LEARNING_RATE = 2e-3
DEFAULT_VALIDATION_DOCS = 1000

STUDY_FILE = "study.json"
CELLS_DIR = "cells"
TOKENIZER_DIR = "tokenizer"
METRICS = ("val_bpb", "val_loss")

# Settings that change what a cell measures: a study folder's cells are only comparable if these agree, so a
# rerun with different values is refused instead of mixing incomparable cells in one fit.
_CELL_SETTINGS = (
    "train_files",
    "text_column",
    "txt_document_mode",
    "txt_document_separator",
    "min_doc_chars",
    "validation_split",
    "validation_docs",
    "vocab_size",
    "block_size",
    "seed",
    "epochs",
    "learning_rate",
    "batch_size",
    "warmup_ratio",
    "weight_decay",
    "config_overrides",
)


# ------------------------------------------------------------------------------------------- options


@dataclass
class ModelSpec:
    """One model size of the grid: a preset plus optional config overrides of its own."""

    label: str
    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """The label made safe for a file name (``nano:num_hidden_layers=2`` -> ``nano-num_hidden_layers-2``)."""
        return re.sub(r"[^A-Za-z0-9._]+", "-", self.label).strip("-")


@dataclass
class StudyOptions:
    output_dir: str
    train_files: list[str] = field(default_factory=lambda: list(DEFAULT_TRAIN_FILES))
    data_sizes: list[int] = field(default_factory=lambda: parse_data_sizes(DEFAULT_DATA_SIZES))
    presets: str = DEFAULT_PRESETS
    config_overrides: str | None = None
    epochs: float = 1.0
    vocab_size: int = DEFAULT_VOCAB_SIZE
    block_size: int = DEFAULT_BLOCK_SIZE
    validation_docs: int | None = None
    validation_split: float | None = None
    learning_rate: float = DEFAULT_LEARNING_RATE
    batch_size: int = DEFAULT_BATCH_SIZE
    warmup_ratio: float = 0.05
    weight_decay: float = 0.1
    seed: int = 0
    bootstrap: int = 1000
    metric: str = "val_bpb"
    text_column: str = "text"
    txt_document_mode: str = "block"
    txt_document_separator: str | None = None
    min_doc_chars: int = 1
    cache_dir: str | None = None
    save_models: str | None = None
    report_only: bool = False
    discussion: bool = True
    torch_threads: int | None = None

    def settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _CELL_SETTINGS}


def parse_data_sizes(text: str) -> list[int]:
    """``"1e5,3e5,1e6"`` -> ``[100000, 300000, 1000000]`` (sorted, duplicates refused)."""
    sizes = []
    for item in (part.strip() for part in str(text).split(",")):
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"--data_sizes: {item!r} is not a number (expected e.g. 1e5,3e5,1e6)") from None
        if not math.isfinite(value) or value < 1 or value != int(value):
            raise ValueError(f"--data_sizes: {item!r} must be a whole number of tokens >= 1")
        sizes.append(int(value))
    if not sizes:
        raise ValueError("--data_sizes is empty; give comma-separated token counts such as 1e5,3e5,1e6")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"--data_sizes lists a size twice: {text}")
    return sorted(sizes)


def parse_model_specs(text: str) -> list[ModelSpec]:
    """``"nano,micro:num_hidden_layers=3"``: presets, each optionally followed by ``:field=value`` overrides."""
    from wenlm.modeling import PRESETS
    from wenlm.training.pretrain import parse_override_value

    specs = []
    for entry in (part.strip() for part in str(text).split(",")):
        if not entry:
            continue
        preset, *assignments = entry.split(":")
        if preset not in PRESETS:
            raise ValueError(
                f"--presets: {preset!r} (in {entry!r}) is not a preset; valid: {', '.join(PRESETS)}"
            )
        overrides = {}
        for assignment in assignments:
            name, equals, value = assignment.partition("=")
            if not equals or not name.strip():
                raise ValueError(
                    f"--presets: {assignment!r} in {entry!r} is not of the form field=value "
                    "(e.g. nano:num_hidden_layers=2)"
                )
            overrides[name.strip()] = parse_override_value(value.strip())
        specs.append(ModelSpec(label=entry, preset=preset, overrides=overrides))
    if not specs:
        raise ValueError("--presets is empty; give e.g. nano,micro")
    slugs = [spec.slug for spec in specs]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"--presets lists the same model twice: {text}")
    return specs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wenlm scaling",
        description="Data-scale study: train every (model, data size) cell with the stock Trainer on nested "
        "subsets of one shuffled token stream, evaluate on one held-out set, fit L(D) = E + B/D^beta per "
        "model and L(N, D) jointly, and write results, plots and REPORT.md. Reruns resume: finished cells "
        "are skipped.",
    )
    arg = parser.add_argument
    arg(
        "--train_files",
        nargs="+",
        default=list(DEFAULT_TRAIN_FILES),
        help="Text sources as for `wenlm pretrain` (files, globs, folders, hub:NAME, builtin[:N]). Default: builtin.",
    )
    arg(
        "--data_sizes",
        default=DEFAULT_DATA_SIZES,
        help=f"Comma-separated training token counts D. Default: {DEFAULT_DATA_SIZES}.",
    )
    arg(
        "--presets",
        default=DEFAULT_PRESETS,
        help="Comma-separated model sizes: a preset, optionally with its own overrides as "
        f"preset:field=value[:field=value]. Default: {DEFAULT_PRESETS}.",
    )
    arg(
        "--config_overrides",
        default=None,
        help="Config fields overriding every model, e.g. 'hidden_size=32,num_hidden_layers=1'.",
    )
    arg("--output_dir", required=True, help="Study folder (created; an existing study there is resumed).")
    arg(
        "--epochs",
        type=float,
        default=1.0,
        help="Passes over each cell's data. Default 1: every token seen once.",
    )
    arg(
        "--report-only",
        "--report_only",
        dest="report_only",
        action="store_true",
        help="Re-render results, fits, plots and REPORT.md from the stored cells without training.",
    )
    arg("--vocab_size", type=int, default=DEFAULT_VOCAB_SIZE, help="Size of the study's BPE tokenizer.")
    arg(
        "--block_size",
        type=int,
        default=DEFAULT_BLOCK_SIZE,
        help="Tokens per training block (context length).",
    )
    arg(
        "--validation_docs",
        type=int,
        default=None,
        help=f"Held-out validation documents (default {DEFAULT_VALIDATION_DOCS}; with --validation_split: "
        "an upper bound).",
    )
    arg(
        "--validation_split",
        type=float,
        default=None,
        help="Held-out fraction of documents instead of a count.",
    )
    arg(
        "--learning_rate",
        type=float,
        default=DEFAULT_LEARNING_RATE,
        help="Peak learning rate (cosine decay).",
    )
    arg("--batch_size", type=int, default=DEFAULT_BATCH_SIZE, help="Blocks per optimisation step.")
    arg("--warmup_ratio", type=float, default=0.05, help="Warmup as a fraction of each cell's steps.")
    arg("--weight_decay", type=float, default=0.1)
    arg("--seed", type=int, default=0, help="Seed for the validation split, the shuffle and model init.")
    arg("--bootstrap", type=int, default=1000, help="Bootstrap refits for the 95%% intervals (0: none).")
    arg(
        "--metric",
        choices=METRICS,
        default="val_bpb",
        help="Metric to fit: val_bpb (bits per byte, comparable with the built-in corpus's entropy floor and "
        "across tokenizers) or val_loss (nats per token).",
    )
    arg("--text_column", default="text")
    arg(
        "--txt_document_mode",
        choices=("block", "line"),
        default="block",
        help="How .txt files split into documents: blank-line separated blocks or single lines.",
    )
    arg("--txt_document_separator", default=None)
    arg("--min_doc_chars", type=int, default=1)
    arg("--cache_dir", default=None, help="Cache folder for the prepared data (default: HF datasets cache).")
    arg(
        "--save_models",
        default=None,
        help="Folder to save each cell's trained model in (default: weights are discarded after evaluation).",
    )
    arg(
        "--torch_threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's own choice). On a machine shared with other jobs, 1 thread "
        "can be several times faster than 2: threads of one process spin-wait for each other when the cores are "
        "busy. Affects speed only, not the cells' results beyond float rounding.",
    )
    arg(
        "--no_discussion",
        dest="discussion",
        action="store_false",
        help="Leave the discussion of published exponents out of REPORT.md.",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> StudyOptions:
    namespace = build_parser().parse_args(argv)
    values = vars(namespace)
    values["data_sizes"] = parse_data_sizes(values["data_sizes"])
    options = StudyOptions(**values)
    check_options(options)
    return options


def check_options(options: StudyOptions) -> None:
    parse_model_specs(options.presets)
    positive = {
        "vocab_size": options.vocab_size,
        "batch_size": options.batch_size,
        "epochs": options.epochs,
        "learning_rate": options.learning_rate,
    }
    for name, value in positive.items():
        if not value > 0:
            raise ValueError(f"--{name} must be positive, got {value}")
    if options.block_size < 2:
        raise ValueError(f"--block_size must be at least 2, got {options.block_size}")
    if not 0 <= options.warmup_ratio < 1:
        raise ValueError(f"--warmup_ratio must be in [0, 1), got {options.warmup_ratio}")
    if options.validation_docs is not None and options.validation_docs < 1:
        raise ValueError(f"--validation_docs must be >= 1, got {options.validation_docs}")
    if options.validation_split is not None and not 0 < options.validation_split < 1:
        raise ValueError(f"--validation_split must be a fraction in (0, 1), got {options.validation_split}")
    if options.metric not in METRICS:
        raise ValueError(f"--metric must be one of {', '.join(METRICS)}, got {options.metric!r}")
    if options.torch_threads is not None and options.torch_threads < 1:
        raise ValueError(f"--torch_threads must be >= 1, got {options.torch_threads}")
    if options.bootstrap < 0:
        raise ValueError(f"--bootstrap must be >= 0, got {options.bootstrap}")


# ---------------------------------------------------------------------------------------- study data


@dataclass
class StudyData:
    tokenizer: Any
    train: Any  # packed blocks of the shuffled training documents: the study's one token stream
    validation: Any  # packed blocks of the held-out documents, shared by every cell
    validation_bytes: int
    data_report: dict

    @property
    def train_blocks(self) -> int:
        return len(self.train)

    @property
    def validation_bytes_per_token(self) -> float:
        predicted = len(self.validation) * (len(self.validation[0]["input_ids"]) - 1)
        return self.validation_bytes / predicted


def uses_builtin_corpus(train_files) -> bool:
    """True when every source is the built-in corpus, the only one whose entropy floor is known."""
    return bool(train_files) and all(str(source).startswith("builtin") for source in train_files)


def blocks_for(tokens: int, block_size: int) -> int:
    return math.ceil(tokens / block_size)


def cell_dataset(train, tokens: int, block_size: int):
    """The first ceil(tokens / block_size) blocks of the stream: nested subsets across data sizes."""
    needed = blocks_for(tokens, block_size)
    if needed > len(train):
        raise ValueError(
            f"a cell of {tokens:,} tokens needs {needed:,} blocks but the training stream has {len(train):,}"
        )
    return train.select(range(needed))


def _data_arguments(options: StudyOptions):
    from wenlm.training.args import DataArguments

    if options.validation_split is not None:
        validation, max_docs = options.validation_split, options.validation_docs
    else:
        validation, max_docs = options.validation_docs or DEFAULT_VALIDATION_DOCS, None
    return DataArguments(
        train_files=list(options.train_files),
        text_column=options.text_column,
        txt_document_mode=options.txt_document_mode,
        txt_document_separator=options.txt_document_separator,
        min_doc_chars=options.min_doc_chars,
        validation_split=validation,
        max_validation_docs=max_docs,
        block_size=options.block_size,
        corpus_seed=options.seed,
        cache_dir=options.cache_dir,
    )


def prepare_study_data(options: StudyOptions, study_dir: Path) -> StudyData:
    """Clean and split the corpus, train (or reload) the study tokenizer, pack the shuffled stream."""
    from transformers import AutoTokenizer

    from wenlm.tokenization import train_tokenizer
    from wenlm.training.data.pipeline import (
        count_bytes,
        prepare_datasets,
        token_byte_lengths,
        tokenize_and_pack,
    )

    data_args = _data_arguments(options)
    tokenizer_dir = study_dir / TOKENIZER_DIR
    tokenizer, tokenizer_trainer = None, None
    if tokenizer_dir.is_dir():
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    else:

        def tokenizer_trainer(texts):
            return train_tokenizer(texts, vocab_size=options.vocab_size, model_max_length=options.block_size)

    # prepare_datasets trains the tokenizer on the training documents only, never on validation ones.
    prepared = prepare_datasets(data_args, tokenizer=tokenizer, tokenizer_trainer=tokenizer_trainer)
    tokenizer = prepared.tokenizer
    if not tokenizer_dir.is_dir():
        partial = Path(tempfile.mkdtemp(prefix=".tokenizer.", dir=study_dir))
        tokenizer.save_pretrained(str(partial))
        os.replace(partial, tokenizer_dir)

    shuffled = prepared.train_text.shuffle(seed=options.seed)
    stats: dict = {}
    train = tokenize_and_pack(
        shuffled, tokenizer, options.block_size, cache_dir=options.cache_dir, stats=stats
    )
    validation = prepared.validation
    validation_bytes = count_bytes(validation, token_byte_lengths(tokenizer))
    report = {
        "documents": prepared.report["documents"],
        "tokens": {"train": stats["tokens"], "validation": prepared.report["tokens"]["validation"]},
        "blocks": {"train": len(train), "validation": len(validation)},
        "bytes": {"train": prepared.report["bytes"]["train"], "validation": validation_bytes},
        "cleaning": prepared.report["cleaning"],
        "invalid_utf8_bytes": prepared.report["invalid_utf8_bytes"],
    }
    return StudyData(tokenizer, train, validation, validation_bytes, report)


def check_corpus_size(data: StudyData, options: StudyOptions) -> None:
    """Refuse (before any training) a grid whose largest cell needs more tokens than the stream holds."""
    largest = max(options.data_sizes)
    available_tokens = data.train_blocks * options.block_size
    if blocks_for(largest, options.block_size) > data.train_blocks:
        raise ValueError(
            f"the corpus has only {available_tokens:,} training tokens ({data.train_blocks:,} blocks of "
            f"{options.block_size}) after holding out validation documents, but --data_sizes asks for up to "
            f"{largest:,}; lower --data_sizes to at most {available_tokens:,} or add data (e.g. builtin:N with a "
            "larger N, more files, or a smaller --vocab_size, which makes more tokens of the same text)"
        )


# ------------------------------------------------------------------------------------------- one cell


def _write_json_atomically(path: Path, payload: Any) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cell_path(study_dir: Path, spec: ModelSpec, data_size: int) -> Path:
    return study_dir / CELLS_DIR / f"{spec.slug}_{data_size}.json"


def build_model_config(spec: ModelSpec, options: StudyOptions, tokenizer):
    from wenlm.training.args import ModelArguments
    from wenlm.training.pretrain import build_config

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


def train_cell(spec: ModelSpec, data_size: int, data: StudyData, options: StudyOptions) -> dict[str, Any]:
    """Train one (model, D) cell from scratch with the stock Trainer and evaluate it on the shared validation set."""
    from transformers import DataCollatorForLanguageModeling, TrainingArguments, set_seed

    from wenlm.modeling import WenLMForCausalLM
    from wenlm.training.args import DEFAULT_LOSS_CHUNK_SIZE
    from wenlm.training.trainer import LanguageModelTrainer

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    train = cell_dataset(data.train, data_size, options.block_size)
    config = build_model_config(spec, options, data.tokenizer)
    # The same seed for every data size: a model starts from the same weights in every cell of its row.
    set_seed(options.seed)
    model = WenLMForCausalLM._from_config(config)
    steps_per_epoch = math.ceil(len(train) / options.batch_size)
    total_steps = math.ceil(steps_per_epoch * options.epochs)
    with tempfile.TemporaryDirectory(prefix="wenlm-scaling-") as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            per_device_train_batch_size=options.batch_size,
            per_device_eval_batch_size=options.batch_size * 2,
            learning_rate=options.learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=options.warmup_ratio,
            weight_decay=options.weight_decay,
            adam_beta2=0.95,
            max_grad_norm=1.0,
            num_train_epochs=options.epochs,
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
        trainer = LanguageModelTrainer(
            model=model,
            args=args,
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
    tokens = len(train) * options.block_size * options.epochs
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
        "val_bpb": val_loss / data.validation_bytes_per_token / math.log(2),
        "val_perplexity": math.exp(min(val_loss, 50.0)),
        "wall_time_s": round(time.perf_counter() - started, 2),
        "train_runtime_s": round(runtime, 2),
        "tokens_per_s": round(tokens / runtime, 1) if runtime > 0 else None,
        "steps": int(trainer.state.global_step),
        "tokens_seen": int(trainer.state.num_input_tokens_seen),
        "load_avg_1min_start": round(load_before, 2),
        "load_avg_1min_end": round(os.getloadavg()[0], 2),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


# ------------------------------------------------------------------------------------------ the study


def _read_cell(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} line {error.lineno}: invalid JSON ({error.msg}); delete the file to re-train that cell"
        ) from error
    missing = [key for key in ("model", "n_params", "tokens", "val_loss") if key not in record]
    if missing:
        raise ValueError(f"{path} lacks {missing}; delete the file to re-train that cell")
    return record


def read_cells(study_dir: Path) -> list[dict[str, Any]]:
    """Every finished cell of the study folder, smallest model and data size first."""
    folder = Path(study_dir) / CELLS_DIR
    records = [_read_cell(path) for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted(records, key=lambda record: (float(record["n_params"]), float(record["tokens"])))


def _check_study_folder(study_dir: Path, options: StudyOptions) -> dict[str, Any]:
    """Create the study file, or check that an existing study was run with the same cell settings."""
    study_file = study_dir / STUDY_FILE
    if study_file.is_file():
        stored = json.loads(study_file.read_text(encoding="utf-8"))
        old = stored.get("settings", {})
        new = json.loads(json.dumps(options.settings()))
        changed = {key: (old.get(key), new[key]) for key in new if old.get(key) != new[key]}
        if changed:
            listed = "; ".join(
                f"{key}: study has {was!r}, this run asks {now!r}" for key, (was, now) in changed.items()
            )
            raise ValueError(
                f"{study_dir} holds a study run with other settings ({listed}). Its cells would not be comparable "
                "with new ones: rerun with the same settings, or choose another --output_dir"
            )
        return stored
    if study_dir.exists() and any(study_dir.iterdir()):
        raise FileExistsError(
            f"{study_dir} already holds files but no {STUDY_FILE}; choose an empty or new --output_dir "
            "(wenlm scaling never writes over other data)"
        )
    study_dir.mkdir(parents=True, exist_ok=True)
    stored = {"format": "wenlm-scaling-study", "version": 1, "settings": options.settings()}
    _write_json_atomically(study_file, stored)
    return stored


def _corpus_description(options: StudyOptions, data_report: dict) -> str:
    sources = ", ".join(options.train_files)
    documents, tokens, nbytes = data_report["documents"], data_report["tokens"], data_report["bytes"]
    mode = (
        "" if uses_builtin_corpus(options.train_files) else f", .txt documents by {options.txt_document_mode}"
    )
    return (
        f"{sources}{mode}. {documents['train']:,} training documents ({tokens['train']:,} tokens, "
        f"{nbytes['train']:,} bytes), shuffled with seed {options.seed} and packed into "
        f"{data_report['blocks']['train']:,} blocks of {options.block_size}; {documents['validation']:,} held-out "
        f"validation documents ({data_report['blocks']['validation']:,} blocks, {nbytes['validation']:,} bytes of "
        f"predicted tokens), the same for every cell. Byte-level BPE tokenizer of {options.vocab_size} tokens "
        "trained once on the training documents. Each cell: a fresh model trained with the stock Trainer for "
        f"{options.epochs:g} epoch(s) on the first ceil(D/{options.block_size}) blocks, batch "
        f"{options.batch_size} blocks, peak LR {options.learning_rate:g}, cosine schedule with "
        f"{options.warmup_ratio:.0%} warmup scaled to the cell's steps, weight decay {options.weight_decay:g}."
    )


def run_study(options: StudyOptions) -> dict[str, str]:
    """Train every missing cell, then write the report; returns {artefact: path}."""
    check_options(options)
    study_dir = Path(options.output_dir)
    if options.report_only:
        return render_report(study_dir, options)
    started = time.perf_counter()
    specs = parse_model_specs(options.presets)
    study = _check_study_folder(study_dir, options)
    data = prepare_study_data(options, study_dir)
    check_corpus_size(data, options)
    study["data"] = data.data_report
    study["validation_bytes_per_token"] = data.validation_bytes_per_token
    study["corpus_description"] = _corpus_description(options, data.data_report)
    study["presets"], study["data_sizes"] = options.presets, options.data_sizes
    _write_json_atomically(study_dir / STUDY_FILE, study)

    (study_dir / CELLS_DIR).mkdir(exist_ok=True)
    import torch

    threads_before = torch.get_num_threads()
    if options.torch_threads:
        torch.set_num_threads(options.torch_threads)
    try:
        trained = _train_missing_cells(study_dir, specs, data, options)
    finally:
        # The thread count is process-wide state; give the caller (a notebook, a test session) its own back.
        torch.set_num_threads(threads_before)
    study = json.loads((study_dir / STUDY_FILE).read_text(encoding="utf-8"))
    study.setdefault("runs", []).append(
        {
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "cells_trained": trained,
            "wall_time_s": round(time.perf_counter() - started, 1),
            "torch_threads": options.torch_threads or threads_before,
            "torch_threads_option": options.torch_threads,
            "load_avg_at_end": [round(value, 2) for value in os.getloadavg()],
            "machine": _machine(),
        }
    )
    _write_json_atomically(study_dir / STUDY_FILE, study)
    return render_report(study_dir, options)


def _train_missing_cells(
    study_dir: Path, specs: list[ModelSpec], data: StudyData, options: StudyOptions
) -> int:
    trained = 0
    for spec in specs:
        for data_size in options.data_sizes:
            path = cell_path(study_dir, spec, data_size)
            if path.is_file():
                record = _read_cell(path)
                print(
                    f"[scaling] {spec.label} D={data_size:,}: done earlier (val_loss {record['val_loss']:.4f})"
                )
                continue
            print(f"[scaling] {spec.label} D={data_size:,}: training", flush=True)
            record = train_cell(spec, data_size, data, options)
            _write_json_atomically(path, record)
            trained += 1
            print(
                f"[scaling] {spec.label} D={data_size:,}: val_loss {record['val_loss']:.4f}, val_bpb "
                f"{record['val_bpb']:.4f}, {record['wall_time_s']:.0f} s",
                flush=True,
            )
    return trained


def _machine() -> dict[str, Any]:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "torch": torch.__version__,
    }


# ---------------------------------------------------------------------------------------------- report


def entropy_floor(metric: str, train_files, bytes_per_token: float | None) -> tuple[float | None, str]:
    """The built-in corpus's entropy floor in the units of ``metric`` (None for other corpora)."""
    if not uses_builtin_corpus(train_files):
        return None, "entropy floor"
    from wenlm.training.corpus.grammar import exact_entropy_bits_per_byte

    bits_per_byte = exact_entropy_bits_per_byte()["bits_per_byte"]
    if metric == "val_bpb":
        return bits_per_byte, "entropy floor of the built-in corpus"
    if bytes_per_token:
        # Same floor, per token of this study's validation stream: bits/byte x bytes/token x ln 2 nats/bit.
        return bits_per_byte * bytes_per_token * math.log(2), (
            f"entropy floor of the built-in corpus ({bits_per_byte:.4f} bits/byte at "
            f"{bytes_per_token:.3f} bytes/token)"
        )
    return None, "entropy floor"


def render_report(study_dir: Path, options: StudyOptions) -> dict[str, str]:
    """Fit and write results.csv/json, fit.json, scaling.png, loss_vs_compute.png and REPORT.md."""
    study_dir = Path(study_dir)
    study_file = study_dir / STUDY_FILE
    study = json.loads(study_file.read_text(encoding="utf-8")) if study_file.is_file() else {}
    records = read_cells(study_dir)
    if not records:
        # A study copied without its cells/ folder still has results.json.
        records = load_records(study_dir)
    settings = study.get("settings", {})
    train_files = settings.get("train_files", options.train_files)
    floor, floor_label = entropy_floor(options.metric, train_files, study.get("validation_bytes_per_token"))
    fits = fit_study(records, metric=options.metric, bootstrap=options.bootstrap, seed=options.seed)
    paths = write_report(
        study_dir,
        records,
        fit_results=fits,
        floor=floor,
        floor_label=floor_label,
        corpus_description=study.get("corpus_description", ", ".join(train_files)),
        published=PUBLISHED_EXPONENTS,
        seed=options.seed,
    )
    extra = []
    if options.discussion:
        extra += discussion_section(fits, records, floor, floor_label)
    extra += reproduction_section(study, records, options)
    report_path = Path(paths["REPORT.md"])
    text = report_path.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + "\n".join(extra) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=".REPORT.md.", dir=study_dir)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, report_path)
    return paths


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def discussion_section(fits: dict, records: list[dict], floor: float | None, floor_label: str) -> list[str]:
    """Why exponents from a small CPU study differ from the published ones, with this study's numbers."""
    unit = METRIC_UNITS.get(fits["metric"], "")
    kaplan = PUBLISHED_EXPONENTS["Kaplan et al. 2020"]
    hoffmann = PUBLISHED_EXPONENTS["Hoffmann et al. 2022"]
    betas = {name: fit["params"]["beta"] for name, fit in fits.get("data_laws", {}).items()}
    n_values = sorted({float(record["n_params"]) for record in records})
    d_values = sorted({float(record["tokens"]) for record in records})
    lines = ["## Discussion: this study against the published exponents", ""]
    if betas:
        listed = ", ".join(f"{name} {beta:.3g}" for name, beta in betas.items())
        lines.append(
            f"The per-model data exponents β are {listed}, against α_D ≈ {kaplan['beta']} (Kaplan et al. 2020) "
            f"and β ≈ {hoffmann['beta']} (Hoffmann et al. 2022)."
        )
    joint = fits.get("joint")
    if joint is not None:
        params = joint["params"]
        status = (
            "identifiable from this design"
            if joint.get("identifiable", True) and joint["dof"] > 0
            else "NOT identifiable from this design (too few model or data sizes), so read them as one of many "
            "equally good solutions"
        )
        lines.append(
            f"The joint fit gives α = {params['alpha']:.3g} and β = {params['beta']:.3g} (Hoffmann et al.: "
            f"α ≈ {hoffmann['alpha']}, β ≈ {hoffmann['beta']}); these are {status}."
        )
        interval = (joint.get("ci95") or {}).get("alpha")
        if (
            interval
            and all(bound is not None and bound > 0 for bound in interval)
            and interval[1] / interval[0] > 5
        ):
            lines.append(
                f"The model-size exponent is poorly constrained (95% interval {interval[0]:.3g}–{interval[1]:.3g} "
                f"with {len(n_values)} model sizes spanning {n_values[-1] / n_values[0]:.0f}×), so the "
                "compute-optimal splits in the Extrapolations section are not usable as advice."
            )
    else:
        lines.append(f"No joint law was fitted: {fits.get('skipped', {}).get('joint', 'too few cells')}.")
    lines += [
        "",
        "Why numbers from this study need not match the papers:",
        "",
        f"- **Scale.** Models here have {_fmt(n_values[0])}–{_fmt(n_values[-1])} non-embedding parameters and "
        f"see {_fmt(d_values[0])}–{_fmt(d_values[-1])} tokens; Kaplan et al. fit 10^3–10^9 parameters on up to "
        "2·10^10 tokens and Hoffmann et al. 7·10^7–1.6·10^10 parameters on 5·10^9–5·10^11 tokens. Power laws "
        "are local descriptions of a curve whose slope changes with scale. "
        + _direction_note(betas, hoffmann["beta"], kaplan["beta"]),
        "- **Functional form.** Kaplan's α_D ≈ 0.095 comes from a pure power law without an irreducible term and "
        "with models large enough to be data-limited; fitting E as well (as here and in Hoffmann et al.) moves "
        "the curvature into E and gives larger β on the same points." + _zero_e_note(fits),
        "- **Model-limited cells.** When a small model saturates inside the measured range, its loss at the "
        "largest D is set by its capacity (A/N^α), which a per-model fit absorbs into E, and the data term left "
        "over can come out steep or flat depending on where saturation starts. "
        + _capacity_note(records, fits["metric"]),
        "- **Training recipe.** One epoch, one fixed peak learning rate and batch size (a few thousand tokens "
        "per step, against 0.5–4 M in the papers), a cosine schedule scaled to each run (as in Hoffmann et al.; "
        "Kaplan et al. used one schedule for all runs, which biases against short runs). Neither the learning "
        "rate nor the batch size was tuned per cell, and the smallest cells take only a few dozen optimiser "
        "steps, so part of the measured gain from more data is simply more optimisation steps.",
        "- **Units and data.** Tokens of a small byte-level BPE are not the papers' tokens (bits per byte "
        "removes the tokenizer's effect on the loss, not on D); the corpus is small and narrow next to the "
        "papers' web text; and each cell is one run with one seed, so run-to-run noise of about 1 % is in every "
        "point and the intervals above are a lower bound on the uncertainty.",
    ]
    if floor is not None:
        estimates = {name: fit["params"]["E"] for name, fit in fits.get("data_laws", {}).items()}
        if joint is not None:
            estimates["joint law"] = joint["params"]["E"]
        if estimates:
            listed = ", ".join(
                f"{name} {value:.4g} ({(value - floor) / floor:+.0%})" for name, value in estimates.items()
            )
            below = [name for name, value in estimates.items() if value < floor]
            lines.append(
                f"- **Entropy floor.** The {floor_label} is {floor:.4g} {unit}; the fitted irreducible losses are "
                f"{listed}. A true E cannot lie below the floor, and a per-model E also holds that model's "
                "capacity limit, so it should sit above it."
                + (
                    f" Where E lands below the floor ({', '.join(below)}), the losses measured are still far from "
                    "flattening: the range of D does not pin E down, and the fitted β is correspondingly uncertain. "
                    "More data per model (a wider range of D) is what would constrain it."
                    if below
                    else ""
                )
            )
    lines.append("")
    return lines


def _zero_e_note(fits: dict) -> str:
    at_zero = [name for name, fit in fits.get("data_laws", {}).items() if "E" in fit.get("at_bounds", [])]
    if not at_zero:
        return ""
    return (
        f" Here E sits at its bound 0 for {', '.join(at_zero)}: over the measured range the curve shows no "
        "flattening, so those fits reduce to a pure power law, Kaplan's form, and their β is the like-for-like "
        "comparison with α_D."
    )


def _capacity_note(records: list[dict], metric: str) -> str:
    largest_d = max(float(record["tokens"]) for record in records)
    at_largest = sorted(
        (float(record["n_params"]), float(record[metric]), str(record["model"]))
        for record in records
        if float(record["tokens"]) == largest_d and record.get(metric) is not None
    )
    if len(at_largest) < 2:
        return ""
    (_, small_loss, small_name), (_, large_loss, large_name) = at_largest[0], at_largest[-1]
    return (
        f"At the largest D here, {large_name} reaches {large_loss:.4g} against {small_loss:.4g} for {small_name} "
        f"({(large_loss - small_loss) / small_loss:+.0%}): the gap is what model size buys at this D."
    )


def _compact_count(value: int) -> str:
    """100000 -> '1e5', 2000000 -> '2e6', 123456 -> '123456': how a person would type --data_sizes."""
    exponent = len(str(value)) - 1
    mantissa, remainder = divmod(value, 10**exponent)
    return f"{mantissa}e{exponent}" if remainder == 0 and exponent >= 3 else str(value)


def _direction_note(betas: dict[str, float], hoffmann_beta: float, kaplan_beta: float) -> str:
    if not betas:
        return ""
    mean_beta = sum(betas.values()) / len(betas)
    if mean_beta > hoffmann_beta:
        return (
            f"Here β averages {mean_beta:.3g}, above both papers: with so few tokens a model is still learning "
            "the vocabulary, word frequencies and short-range structure, where each doubling of data (and of "
            "optimiser steps) removes much more loss than in the papers' regime, which steepens the local slope."
        )
    if mean_beta < kaplan_beta:
        return (
            f"Here β averages {mean_beta:.3g}, below both papers: the models are so small that capacity, not data, "
            "limits them over most of the measured range, so more data buys little and the slope flattens."
        )
    return (
        f"Here β averages {mean_beta:.3g}, between the two papers' values; with this few points and this far from "
        "their regime the agreement is partly coincidence."
    )


def reproduction_section(study: dict, records: list[dict], options: StudyOptions) -> list[str]:
    settings = study.get("settings", {})
    command = ["wenlm scaling --train_files " + " ".join(settings.get("train_files", options.train_files))]
    # The grid actually measured: a study resumed with other --data_sizes holds the union of both grids.
    data_sizes = sorted({int(record.get("data_size", record["tokens"])) for record in records})
    command.append("--data_sizes " + ",".join(_compact_count(size) for size in data_sizes))
    command.append(f"--presets {study.get('presets', options.presets)}")
    defaults = StudyOptions(output_dir="")
    for key in _CELL_SETTINGS:
        if key in ("train_files",) or key not in settings:
            continue
        value = settings[key]
        if value != getattr(defaults, key):
            command.append(f"--{key} {value}")
    if options.metric != defaults.metric:
        command.append(f"--metric {options.metric}")
    last_run = (study.get("runs") or [{}])[-1]
    if last_run.get("torch_threads_option"):
        command.append(f"--torch_threads {last_run['torch_threads_option']}")
    command.append("--output_dir STUDY_DIR")
    wall = sum(float(record.get("wall_time_s") or 0) for record in records)
    loads = [
        record[key]
        for record in records
        for key in ("load_avg_1min_start", "load_avg_1min_end")
        if key in record
    ]
    lines = ["## Reproduce", "", "```", " \\\n    ".join(command), "```", ""]
    lines.append(
        f"Training and evaluating the {len(records)} cells took {wall / 60:.1f} minutes of wall time in total"
        + (
            f" (1-minute load average between {min(loads):.1f} and {max(loads):.1f} while cells ran, on "
            f"{os.cpu_count()} CPUs)"
            if loads
            else ""
        )
        + "."
    )
    runs = study.get("runs") or []
    if runs:
        total = sum(float(run.get("wall_time_s") or 0) for run in runs)
        threads = last_run.get("torch_threads")
        load_at_end = (last_run.get("load_avg_at_end") or [None])[0]
        lines.append(
            f"The whole command (data preparation, tokenizer, all cells) took {total / 60:.1f} minutes over "
            f"{len(runs)} run(s)"
            + (f" with {threads} torch thread(s)" if threads else "")
            + (
                f"; 1-minute load average at the end of the last run: {load_at_end:.1f}"
                if load_at_end
                else ""
            )
            + "."
        )
    machine = last_run.get("machine")
    if machine:
        lines.append(
            f"Machine: {machine['cpu_count']} CPUs ({machine['processor']}), {machine['torch_threads']} torch "
            f"threads, torch {machine['torch']}, {machine['platform']}."
        )
    measured = {(str(record["model"]), int(record.get("data_size", record["tokens"]))) for record in records}
    models = sorted({model for model, _ in measured})
    missing = [(model, size) for model in models for size in data_sizes if (model, size) not in measured]
    if missing:
        listed = ", ".join(f"{model} at D={_compact_count(size)}" for model, size in missing)
        lines.append(
            f"Cells of the full grid that were not run: {listed}. Rerun the command above to add them; "
            "finished cells are skipped."
        )
    finished = [record["finished_at"] for record in records if record.get("finished_at")]
    if finished:
        lines.append(f"Cells finished between {min(finished)} and {max(finished)} (UTC).")
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> dict[str, str]:
    options = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = run_study(options)
    print(
        f"[scaling] wrote {', '.join(sorted(Path(path).name for path in paths.values()))} to {options.output_dir}"
    )
    return paths


__all__ = [
    "DEFAULT_DATA_SIZES",
    "DEFAULT_PRESETS",
    "ModelSpec",
    "StudyData",
    "StudyOptions",
    "blocks_for",
    "cell_dataset",
    "check_corpus_size",
    "main",
    "parse_args",
    "parse_data_sizes",
    "parse_model_specs",
    "prepare_study_data",
    "read_cells",
    "render_report",
    "run_study",
    "train_cell",
]

if __name__ == "__main__":
    main()
