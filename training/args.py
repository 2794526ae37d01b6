"""Every `wenlm` command's options as dataclasses, parsed one way: `HfArgumentParser`.

Each command accepts `--a_b` and `--a-b`, an options file (YAML or JSON) as its first argument with later flags
winning, `--help` listing every option with its default, booleans as `--flag true|false`, and the same name for the
same thing in every command (`--model`, `--output_dir`, `--train_files`, `--validation_files`, `--max_samples`, and
TrainingArguments' names wherever training happens). Old spellings keep working for one release through
`renamed=`, with a warning that names the new one.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import HfArgumentParser

from wenlm.modeling import PRESETS

OPTIONS_FILE_SUFFIXES = (".json", ".yaml", ".yml")

# Defaults suited to a small model on a CPU, shared by every command that trains; any of them can still be set
# on the command line.
CPU_TRAINING_DEFAULTS: dict[str, Any] = dict(
    per_device_train_batch_size=16,
    per_device_eval_batch_size=16,
    learning_rate=2e-3,
    lr_scheduler_type="cosine",
    warmup_steps=0.05,
    weight_decay=0.1,
    adam_beta2=0.95,
    max_grad_norm=1.0,
    num_train_epochs=1.0,
    logging_steps=10,
    logging_first_step=True,
    eval_strategy="steps",
    eval_steps=100,
    save_strategy="steps",
    save_steps=100,
    save_total_limit=2,
    prediction_loss_only=True,
    report_to="none",
    include_num_input_tokens_seen=True,
    dataloader_num_workers=0,
    dataloader_pin_memory=torch.cuda.is_available(),
    # Without use_cpu and gloo the Trainer ignores a torchrun launch on a CPU-only machine and trains each
    # process alone; gloo is named only when launched distributed, since naming it starts a process group.
    use_cpu=not torch.cuda.is_available(),
    ddp_backend="gloo" if not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
    seed=42,
)


# Rows of logits per chunk of the fused training loss: fast on CPU at every preset (BENCHMARKS.md, section 1).
DEFAULT_LOSS_CHUNK_SIZE = 256


@dataclass
class ModelArguments:
    preset: str = field(default="micro", metadata={"help": f"Model size: one of {', '.join(PRESETS)}."})
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Comma-separated config fields overriding the preset, e.g. 'num_hidden_layers=4,dropout=0.1'."},
    )
    tokenizer: str | None = field(
        default=None,
        metadata={"help": "An existing tokenizer (folder or Hub id). Without it a byte-level BPE is trained on the corpus."},
    )
    vocab_size: int = field(default=8192, metadata={"help": "Vocabulary size of the tokenizer trained here."})
    tokenizer_min_frequency: int = field(default=2, metadata={"help": "Minimum pair frequency for a BPE merge."})
    use_jieba: bool = field(default=False, metadata={"help": "Pre-segment Chinese with jieba (needs wenlm[zh])."})
    attn_implementation: str = field(default="sdpa", metadata={"help": "sdpa, eager, flash_attention_2 or flex_attention."})
    scaling_study: str | None = field(
        default=None, metadata={"help": "Folder of a `wenlm scaling` study whose table and plot go into the model card."}
    )
    license: str = field(default="apache-2.0", metadata={"help": "License written into the model card metadata."})
    loss_chunk_size: int = field(
        default=DEFAULT_LOSS_CHUNK_SIZE,
        metadata={
            "help": "Training loss computed this many token rows at a time, with its gradients, never building the "
            "full logits (measured 1.0-1.4x faster steps on CPU; see BENCHMARKS.md). 0: the stock loss. Not saved "
            "in the model's config."
        },
    )



@dataclass
class DataArguments:
    train_files: list[str] = field(
        default_factory=lambda: ["builtin"],
        metadata={
            "help": "Text sources: .txt/.jsonl/.json/.parquet/.csv paths, globs, directories, 'hub:NAME' or "
            "'hub:NAME:CONFIG' (Hugging Face Hub), 'builtin' or 'builtin:N' (synthetic corpus). Several "
            "sources are concatenated in the given order."
        },
    )
    text_column: str = field(
        default="text", metadata={"help": "Column holding the text in jsonl/json/csv/parquet/hub."}
    )
    txt_document_mode: str = field(
        default="block",
        metadata={"help": "How .txt files split into documents: 'block' (blank-line separated) or 'line'."},
    )
    txt_document_separator: str | None = field(
        default=None,
        metadata={"help": "Extra .txt document boundary: a line equal to this marker, e.g. '<|endoftext|>'."},
    )
    min_doc_chars: int = field(
        default=1, metadata={"help": "Drop documents shorter than this after stripping."}
    )
    dedup: bool = field(default=True, metadata={"help": "Drop exact duplicate documents (keep the first)."})
    scrub_pii: bool = field(
        default=False,
        metadata={"help": "Replace e-mails, phones, ID/card numbers and IPs with placeholder tokens."},
    )
    validation_split: float = field(
        default=0.05,
        metadata={"help": "Held-out documents: a fraction (< 1) or an integer count (>= 1) of documents."},
    )
    max_validation_docs: int | None = field(
        default=None, metadata={"help": "Upper bound on the number of validation documents."}
    )
    streaming: bool = field(
        default=False,
        metadata={"help": "Read sources lazily as IterableDatasets instead of materialising them."},
    )
    tokenizer_sample_docs: int = field(
        default=100000,
        metadata={"help": "In streaming mode, train the tokenizer on at most this many training documents."},
    )
    num_proc: int = field(
        default=1,
        metadata={
            "help": "Processes for PII scrubbing. Tokenization always runs on all cores in the tokenizer's own "
            "thread pool."
        },
    )
    strict_utf8: bool = field(
        default=False,
        metadata={"help": "Fail on invalid UTF-8 instead of replacing the bytes with U+FFFD."},
    )
    block_size: int = field(default=256, metadata={"help": "Tokens per packed training block."})
    corpus_seed: int = field(
        default=0, metadata={"help": "Seed for the validation split and the builtin corpus."}
    )
    cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Cache folder for loaded, cleaned and packed data (default: <HF datasets cache>/wenlm)."
        },
    )
    hub_split: str = field(default="train", metadata={"help": "Split to load from 'hub:' sources."})

    def __post_init__(self):
        if isinstance(self.train_files, str):
            self.train_files = [self.train_files]
        if self.txt_document_mode not in ("block", "line"):
            raise ValueError(f"txt_document_mode must be 'block' or 'line', got {self.txt_document_mode!r}")
        if self.block_size < 2:
            raise ValueError(
                f"block_size must be at least 2 (a causal LM predicts tokens 1..n-1), got {self.block_size}"
            )
        if self.num_proc < 1:
            raise ValueError(f"num_proc must be >= 1, got {self.num_proc}")
        validation_spec(self.validation_split)



def validation_spec(validation_split: float) -> tuple[str, float]:
    """Return ('fraction', f) or ('count', n) for a validation_split value, or raise."""
    if validation_split is None or validation_split <= 0 or math.isnan(validation_split):
        raise ValueError(
            f"validation_split must be a fraction in (0, 1) or a document count >= 1, got {validation_split!r}; "
            "bits-per-byte evaluation needs held-out documents"
        )
    if validation_split < 1:
        return "fraction", float(validation_split)
    if float(validation_split) != int(validation_split):
        raise ValueError(
            f"validation_split={validation_split} is >= 1, so it must be a whole number of documents "
            "(use a value below 1 for a fraction)"
        )
    return "count", int(validation_split)



# ==== finetune (section owned by the finetune work; add its dataclasses here) ====


# ==== quickstart (section owned by the quickstart work; add its dataclasses here) ====


# ==== evaluate, generate, chat (section owned by the evaluate, generate, chat work; add its dataclasses here) ====


# ==== scaling (section owned by the scaling work; add its dataclasses here) ====


# ==== push, card, corpus (section owned by the push, card, corpus work; add its dataclasses here) ====


# ----------------------------------------------------------------------------------------------- parsing


def options_file_to_argv(path: Path) -> list[str]:
    """A YAML/JSON mapping of option names to values, as command-line flags (JSON is a subset of YAML)."""
    if not path.is_file():
        raise FileNotFoundError(f"Options file {path} does not exist.")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML/JSON: {error}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of option names to values, e.g. 'output_dir: my-model'.")
    argv: list[str] = []
    for name, value in loaded.items():
        values = value if isinstance(value, list) else [value]
        argv += [f"--{name}", *(str(item).lower() if isinstance(item, bool) else str(item) for item in values)]
    return argv


def rename_deprecated(argv: Sequence[str], renamed: Mapping[str, str | tuple[str, str]], command: str) -> list[str]:
    """Rewrite old flag spellings to the current ones, warning once per flag.

    `renamed` maps an old flag (`--data`) to its new name (`--validation_files`), or to a (new flag, value) pair
    for an old switch that now takes a value (`--no_save` -> (`--save`, `false`)).
    """
    result: list[str] = []
    for item in argv:
        flag, equals, value = item.partition("=")
        new = renamed.get(flag) if flag.startswith("-") else None
        if new is None:
            result.append(item)
            continue
        if isinstance(new, tuple):
            new_flag, new_value = new
            replacement = [new_flag, new_value]
            spelled = f"{new_flag} {new_value}"
        else:
            replacement = [new, value] if equals else [new]
            spelled = new
        warnings.warn(
            f"wenlm {command}: {flag} is deprecated and will be removed in the next release; use {spelled}.",
            FutureWarning,
            stacklevel=3,
        )
        result += replacement
    return result


def parse_options(
    dataclass_types: Sequence[type],
    argv: Sequence[str] | None,
    *,
    defaults: Mapping[str, Any] | None = None,
    renamed: Mapping[str, str | tuple[str, str]] | None = None,
    command: str = "",
    prog: str | None = None,
) -> tuple:
    """Parse `argv` (an options file may come first) into one instance of each dataclass."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith(OPTIONS_FILE_SUFFIXES) and not argv[0].startswith("-"):
        argv = options_file_to_argv(Path(argv[0])) + argv[1:]
    if renamed:
        argv = rename_deprecated(argv, renamed, command)
    parser = HfArgumentParser(dataclass_types, prog=prog or (f"wenlm {command}" if command else None))
    if defaults:
        parser.set_defaults(**defaults)
    return parser.parse_args_into_dataclasses(args=argv)
