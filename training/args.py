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
_CPU_ONLY = not torch.cuda.is_available()
CPU_TRAINING_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 16, "per_device_eval_batch_size": 16, "learning_rate": 2e-3,
    "lr_scheduler_type": "cosine", "warmup_steps": 0.05, "weight_decay": 0.1, "adam_beta2": 0.95,
    "max_grad_norm": 1.0, "num_train_epochs": 1.0, "logging_steps": 10, "logging_first_step": True,
    "eval_strategy": "steps", "eval_steps": 100, "save_strategy": "steps", "save_steps": 100, "save_total_limit": 2,
    "prediction_loss_only": True, "report_to": "none", "include_num_input_tokens_seen": True,
    "dataloader_num_workers": 0, "dataloader_pin_memory": not _CPU_ONLY, "seed": 42,
    # Without use_cpu and gloo the Trainer ignores a torchrun launch on a CPU-only machine and trains each
    # process alone; gloo is named only when launched distributed, since naming it starts a process group.
    "use_cpu": _CPU_ONLY,
    "ddp_backend": "gloo" if _CPU_ONLY and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
}


# Rows of logits per chunk of the fused training loss: fast on CPU at every preset (BENCHMARKS.md, section 1).
DEFAULT_LOSS_CHUNK_SIZE = 256


# Vocabulary of a tokenizer trained by `wenlm pretrain` when --vocab_size is not given.
DEFAULT_VOCAB_SIZE = 8192


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
    vocab_size: int | None = field(
        default=None,
        metadata={"help": f"Vocabulary size of the tokenizer trained here (unset: {DEFAULT_VOCAB_SIZE}). Refused "
                          "together with --tokenizer, which keeps its own vocabulary."},
    )
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
    text_column: str = field(default="text", metadata={"help": "Column holding the text in jsonl/json/csv/parquet/hub."})
    txt_document_mode: str = field(
        default="block", metadata={"help": "How .txt files split into documents: 'block' (blank-line separated) or 'line'."}
    )
    txt_document_separator: str | None = field(
        default=None, metadata={"help": "Extra .txt document boundary: a line equal to this marker, e.g. '<|endoftext|>'."}
    )
    min_doc_chars: int = field(default=1, metadata={"help": "Drop documents shorter than this after stripping."})
    dedup: bool = field(default=True, metadata={"help": "Drop exact duplicate documents (keep the first)."})
    scrub_pii: bool = field(
        default=False, metadata={"help": "Replace e-mails, phones, ID/card numbers and IPs with placeholder tokens."}
    )
    validation_split: float = field(
        default=0.05, metadata={"help": "Held-out documents: a fraction (< 1) or an integer count (>= 1) of documents."}
    )
    max_validation_docs: int | None = field(default=None, metadata={"help": "Upper bound on the number of validation documents."})
    streaming: bool = field(
        default=False, metadata={"help": "Read sources lazily as IterableDatasets instead of materialising them."}
    )
    tokenizer_sample_docs: int = field(
        default=100000, metadata={"help": "In streaming mode, train the tokenizer on at most this many training documents."}
    )
    num_proc: int = field(default=1, metadata={"help": "Processes for PII scrubbing. Tokenization always runs on all cores "
                                                       "in the tokenizer's own thread pool."})
    strict_utf8: bool = field(default=False, metadata={"help": "Fail on invalid UTF-8 instead of replacing the bytes with U+FFFD."})
    allow_binary_files: bool = field(
        default=False,
        metadata={"help": "Train on files that look binary or not UTF-8 (NUL bytes, or over a tenth of the bytes invalid), "
                          "which are refused by default; invalid bytes become U+FFFD."},
    )
    block_size: int = field(default=256, metadata={"help": "Tokens per packed training block."})
    corpus_seed: int = field(default=0, metadata={"help": "Seed for the validation split and the builtin corpus."})
    cache_dir: str | None = field(
        default=None, metadata={"help": "Cache folder for loaded, cleaned and packed data (default: <HF datasets cache>/wenlm)."}
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



# -------------------------------------------------------------------------------------------- wenlm finetune

FINETUNE_TASKS = ("sft", "classification")
DEFAULT_MAX_BLOCK_SIZE = 512
DEFAULT_LORA_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
# Fine-tuning starts from trained weights: a lower peak learning rate and more frequent evaluation than pretraining.
FINETUNE_TRAINING_DEFAULTS: dict[str, Any] = {
    **CPU_TRAINING_DEFAULTS, "learning_rate": 1e-3, "weight_decay": 0.0, "eval_steps": 50, "save_steps": 200,
}
FINETUNE_RENAMED = {"--train_file": "--train_files", "--validation_file": "--validation_files"}


@dataclass
class FinetuneArguments:
    model: str = field(metadata={"help": "The pretrained wenlm model: a local folder or a Hub id."})
    task: str = field(metadata={"help": f"One of {', '.join(FINETUNE_TASKS)}: chat/instruction rows (sft) or "
                                        "{'text', 'label'} rows (classification)."})
    train_files: list[str] = field(
        metadata={"help": "Training rows: JSON Lines, or any file `datasets` loads; several files are concatenated."}
    )
    validation_files: list[str] | None = field(
        default=None, metadata={"help": "Validation rows, same formats; several files are concatenated."}
    )
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

    def __post_init__(self):
        if isinstance(self.train_files, str):
            self.train_files = [self.train_files]
        if isinstance(self.validation_files, str):
            self.validation_files = [self.validation_files]



# ------------------------------------------------------------------------------------------ wenlm quickstart

# The quickstart's tokenizer vocabulary, used only when it trains one (an explicit --tokenizer keeps its own).
QUICKSTART_VOCAB_SIZE = 4096

# Sized to finish in under 10 minutes on 2 CPU cores (README records the measured time and bits per byte). Every
# pretrain option can still be given; train_files stays unset so that --num_docs decides the built-in corpus.
QUICKSTART_DEFAULTS: dict[str, Any] = {
    **CPU_TRAINING_DEFAULTS, "output_dir": "wenlm-quickstart", "train_files": None, "preset": "micro",
    "block_size": 256, "learning_rate": 3e-3, "eval_steps": 200, "save_steps": 200,
    "logging_steps": 25,
}


@dataclass
class QuickstartArguments:
    num_docs: int = field(
        default=32000,
        metadata={"help": "Documents of the built-in corpus to generate and train on (unless --train_files is given)."},
    )
    max_new_tokens: int = field(default=48, metadata={"help": "Tokens generated for each sample prompt after training."})

    def __post_init__(self):
        if self.num_docs < 2:
            raise ValueError(f"--num_docs must be at least 2 (training and validation documents), got {self.num_docs}")



# ---------------------------------------------------------------------------- wenlm evaluate, generate, chat

EVALUATE_TASKS = ("lm", "qa", "translate", "summarize", "classification")
PROMPT_FORMATS = ("auto", "chat", "plain")


def check_at_least_one(**values: int | None) -> None:
    """Raise naming the option when a count that may be unset (None) is set below 1."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be at least 1, got {value}.")


@dataclass
class ModelSourceArguments:
    """The model a command loads (evaluate, generate, chat)."""

    model: str = field(metadata={"help": "Model folder or Hugging Face Hub id."})
    revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a Hub model."})


@dataclass
class EvaluateArguments:
    task: str = field(
        metadata={
            "help": "lm (loss, perplexity, bits per byte), qa, translate, summarize (generation scored against "
            "references) or classification.",
            "choices": EVALUATE_TASKS,
        }
    )
    validation_files: list[str] = field(
        metadata={
            "help": "Evaluation data: .txt (lm only: documents separated by blank lines), .jsonl, .json, .csv or "
            ".parquet. Several files are read in order as one set."
        }
    )
    max_samples: int | None = field(default=None, metadata={"help": "Evaluate only the first N rows/documents."})
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "Rows or windows per forward pass."})
    max_new_tokens: int = field(default=64, metadata={"help": "Generation tasks: the longest answer, in tokens."})
    prompt_format: str = field(
        default="auto",
        metadata={
            "help": "Generation tasks: chat renders the prompt as a user turn with the chat template; plain feeds "
            "it as text and cuts the answer at the first newline; auto picks chat for models fine-tuned on chat "
            "turns (their training_report.json says task sft) and plain for the rest.",
            "choices": PROMPT_FORMATS,
        },
    )
    text_column: str = field(default="text", metadata={"help": "lm/classification: the text column."})
    label_column: str = field(default="label", metadata={"help": "classification: the label column."})
    save_results: bool = field(
        default=True,
        metadata={
            "help": "For a local model folder, merge the metrics into its eval_results.json and re-render its "
            "model card; false only prints them."
        },
    )

    def __post_init__(self):
        if isinstance(self.validation_files, str):
            self.validation_files = [self.validation_files]
        check_at_least_one(
            max_samples=self.max_samples,
            per_device_eval_batch_size=self.per_device_eval_batch_size,
            max_new_tokens=self.max_new_tokens,
        )


@dataclass
class SamplingArguments:
    """How `wenlm generate` and `wenlm chat` pick tokens (one definition, so both spell them the same)."""

    max_new_tokens: int = field(default=64, metadata={"help": "The longest continuation or reply, in tokens."})
    do_sample: bool = field(
        default=True, metadata={"help": "Sample with the options below; false always takes the likeliest token."}
    )
    temperature: float = field(default=0.8, metadata={"help": "Sampling temperature (> 0)."})
    top_k: int = field(default=50, metadata={"help": "Sample among the k likeliest tokens; 0 turns it off."})
    top_p: float = field(default=0.9, metadata={"help": "Nucleus sampling: the smallest set with this mass, (0, 1]."})
    repetition_penalty: float = field(default=1.0, metadata={"help": "Above 1 discourages repeated tokens."})
    seed: int = field(default=0, metadata={"help": "Same seed and options, same samples."})

    def __post_init__(self):
        check_at_least_one(max_new_tokens=self.max_new_tokens)
        if self.temperature <= 0:
            raise ValueError(
                f"--temperature must be positive (use --do_sample false for deterministic output), "
                f"got {self.temperature}."
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"--top_p must be in (0, 1], got {self.top_p}.")
        if self.top_k < 0:
            raise ValueError(f"--top_k must be 0 (off) or positive, got {self.top_k}.")
        if self.repetition_penalty <= 0:
            raise ValueError(f"--repetition_penalty must be positive, got {self.repetition_penalty}.")


@dataclass
class GenerateArguments:
    prompts: list[str] = field(default_factory=list, metadata={"help": "Texts to continue (or to answer, with --chat)."})
    prompts_file: str | None = field(default=None, metadata={"help": "A UTF-8 file with one prompt per line."})
    chat: bool = field(
        default=False,
        metadata={"help": "Send each prompt as a user turn through the chat template; print only the reply."},
    )
    json: bool = field(default=False, metadata={"help": "Print one JSON object per prompt."})


@dataclass
class ChatArguments:
    system: str | None = field(default=None, metadata={"help": "A system message that starts every conversation."})


# --------------------------------------------------------------------------------------------- wenlm scaling

# The default grid finishes in under 30 minutes on 2 CPU cores (see benchmarks/results/scaling_builtin).
SCALING_DEFAULT_DATA_SIZES = "1e5,2e5,5e5,1e6"
SCALING_DEFAULT_PRESETS = "nano:num_hidden_layers=2,nano,micro"
SCALING_DEFAULT_VALIDATION_DOCS = 1000
SCALING_METRICS = ("val_bpb", "val_loss")


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


@dataclass
class ScalingArguments:
    """`wenlm scaling`: the grid of (model size, training tokens D) cells, how each cell trains, and the fit."""

    output_dir: str = field(metadata={"help": "Study folder (created; an existing study there is resumed)."})
    train_files: list[str] = field(
        default_factory=lambda: ["builtin"],
        metadata={
            "help": "Text sources as for `wenlm pretrain` (files, globs, folders, hub:NAME, builtin[:N])."
        },
    )
    data_sizes: str = field(
        default=SCALING_DEFAULT_DATA_SIZES, metadata={"help": "Comma-separated training token counts D."}
    )
    presets: str = field(
        default=SCALING_DEFAULT_PRESETS,
        metadata={
            "help": "Comma-separated model sizes: a preset, optionally with its own overrides as "
            "preset:field=value[:field=value]."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Config fields overriding every model, e.g. 'hidden_size=32,num_hidden_layers=1'."},
    )
    num_train_epochs: float = field(
        default=CPU_TRAINING_DEFAULTS["num_train_epochs"],
        metadata={"help": "Passes over each cell's data. Default 1: every token seen once."},
    )
    report_only: bool = field(
        default=False,
        metadata={
            "help": "Re-render results, fits, plots and REPORT.md from the stored cells without training."
        },
    )
    vocab_size: int = field(default=1024, metadata={"help": "Size of the study's BPE tokenizer."})
    block_size: int = field(default=128, metadata={"help": "Tokens per training block (context length)."})
    validation_docs: int | None = field(
        default=None,
        metadata={
            "help": f"Held-out validation documents (default {SCALING_DEFAULT_VALIDATION_DOCS}; with "
            "--validation_split: an upper bound)."
        },
    )
    validation_split: float | None = field(
        default=None, metadata={"help": "Held-out fraction of documents instead of a count."}
    )
    learning_rate: float = field(
        default=CPU_TRAINING_DEFAULTS["learning_rate"],
        metadata={"help": "Peak learning rate (cosine decay)."},
    )
    per_device_train_batch_size: int = field(
        default=CPU_TRAINING_DEFAULTS["per_device_train_batch_size"],
        metadata={"help": "Blocks per optimisation step."},
    )
    warmup_steps: float = field(
        default=CPU_TRAINING_DEFAULTS["warmup_steps"],
        metadata={"help": "Warmup as a fraction of each cell's steps, in [0, 1)."},
    )
    weight_decay: float = field(
        default=CPU_TRAINING_DEFAULTS["weight_decay"], metadata={"help": "AdamW weight decay."}
    )
    # 0, not the trainers' 42: every stored study was run with 0, and a changed seed refuses to resume them.
    seed: int = field(
        default=0, metadata={"help": "Seed for the validation split, the shuffle and model init."}
    )
    bootstrap: int = field(
        default=1000, metadata={"help": "Bootstrap refits for the 95%% intervals (0: none)."}
    )
    metric: str = field(
        default="val_bpb",
        metadata={
            "help": "Metric to fit: val_bpb (bits per byte, comparable with the built-in corpus's entropy floor "
            "and across tokenizers) or val_loss (nats per token)."
        },
    )
    text_column: str = field(
        default="text", metadata={"help": "Column holding the text in jsonl/json/csv/parquet."}
    )
    txt_document_mode: str = field(
        default="block",
        metadata={"help": "How .txt files split into documents: 'block' (blank-line separated) or 'line'."},
    )
    txt_document_separator: str | None = field(
        default=None, metadata={"help": "Extra .txt document boundary: a line equal to this marker."}
    )
    min_doc_chars: int = field(
        default=1, metadata={"help": "Drop documents shorter than this after stripping."}
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "Cache folder for the prepared data (default: HF datasets cache)."}
    )
    save_models: str | None = field(
        default=None,
        metadata={"help": "Folder to save each cell's trained model in (default: weights are discarded)."},
    )
    torch_threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads for torch (default: torch's own choice). On a machine shared with other jobs, 1 "
            "thread can be several times faster than 2: threads of one process spin-wait for each other when the "
            "cores are busy. Affects speed only, not the cells' results beyond float rounding."
        },
    )
    discussion: bool = field(
        default=True, metadata={"help": "Discuss the published exponents against this study's in REPORT.md."}
    )

    def __post_init__(self):
        if isinstance(self.train_files, str):
            self.train_files = [self.train_files]
        parse_data_sizes(self.data_sizes)
        positive = ("vocab_size", "per_device_train_batch_size", "num_train_epochs", "learning_rate")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.block_size < 2:
            raise ValueError(f"--block_size must be at least 2, got {self.block_size}")
        if not 0 <= self.warmup_steps < 1:
            raise ValueError(
                f"--warmup_steps must be a fraction of each cell's steps in [0, 1), got {self.warmup_steps}"
            )
        if self.validation_docs is not None and self.validation_docs < 1:
            raise ValueError(f"--validation_docs must be >= 1, got {self.validation_docs}")
        if self.validation_split is not None and not 0 < self.validation_split < 1:
            raise ValueError(f"--validation_split must be a fraction in (0, 1), got {self.validation_split}")
        if self.metric not in SCALING_METRICS:
            raise ValueError(f"--metric must be one of {', '.join(SCALING_METRICS)}, got {self.metric!r}")
        if self.txt_document_mode not in ("block", "line"):
            raise ValueError(f"--txt_document_mode must be 'block' or 'line', got {self.txt_document_mode!r}")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"--torch_threads must be >= 1, got {self.torch_threads}")
        if self.bootstrap < 0:
            raise ValueError(f"--bootstrap must be >= 0, got {self.bootstrap}")

    @property
    def grid_data_sizes(self) -> list[int]:
        """The training token counts D of the grid, smallest first."""
        return parse_data_sizes(self.data_sizes)


# ---------------------------------------------------------------------------------- wenlm push, card, corpus
@dataclass
class PushArguments:
    model: str = field(metadata={"help": "Model folder written by wenlm pretrain / finetune."})
    repo_id: str = field(metadata={"help": "Hub repository, NAME/MODEL (created if it does not exist)."})
    private: bool = field(default=False, metadata={"help": "Create the repository as private."})
    revision: str | None = field(
        default=None, metadata={"help": "Branch to push to (created from main if missing)."}
    )
    commit_message: str | None = field(
        default=None, metadata={"help": "Commit message; without one, 'Upload DIR with wenlm'."}
    )
    validate: bool = field(
        default=True,
        metadata={
            "help": "Check the folder first (clean load with trust_remote_code, auto_map, remote-code imports, "
            "weights, tokenizer, card metadata, no tokens in files); false may publish what nobody can load."
        },
    )
    update_card: bool = field(
        default=True,
        metadata={"help": "Re-render a wenlm-generated README.md with the repo id; false uploads it as it is."},
    )
    check_only: bool = field(default=False, metadata={"help": "Run the checks and stop; nothing is uploaded."})
    # repr=False: options objects get printed and logged; the token must never be.
    hub_token: str | None = field(
        default=None,
        repr=False,
        metadata={
            "help": "Hub access token; without one, HF_TOKEN or the `hf auth login` token. Never printed or saved."
        },
    )


@dataclass
class CardArguments:
    model: str = field(metadata={"help": "Model folder holding training_report.json."})
    repo_id: str | None = field(
        default=None,
        metadata={"help": "Hub id NAME/MODEL the card's usage code loads from; without one, the folder."},
    )
    backup: bool = field(
        default=False,
        metadata={"help": "Replace a hand-written README.md after moving it to README.md.bak (else: refuse)."},
    )


@dataclass
class CorpusArguments:
    output: str = field(metadata={"help": "The JSONL file to write (an existing one is kept unless --overwrite)."})
    kind: str = field(
        default="stories",
        metadata={"help": "stories: pretraining documents; qa, translate or classify: fine-tuning task rows."},
    )
    num_docs: int = field(default=1000, metadata={"help": "Number of documents or rows."})
    seed: int = field(default=0, metadata={"help": "Same seed, same file (use another seed for validation)."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing output file."})

    def __post_init__(self):
        if self.num_docs < 1:
            raise ValueError(f"--num_docs must be at least 1, got {self.num_docs}.")


def positional_model_to_flag(argv: Sequence[str] | None, command: str) -> list[str]:
    """The old `wenlm push DIR ...` / `wenlm card DIR` form: a leading folder becomes `--model DIR`, with a warning
    (HfArgumentParser has no positionals, and `renamed=` only renames flags)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and not argv[0].endswith(OPTIONS_FILE_SUFFIXES):
        warnings.warn(
            f"wenlm {command}: the model folder as a first argument is deprecated and will be removed in the next "
            f"release; use --model {argv[0]}.",
            FutureWarning,
            stacklevel=2,
        )
        argv = ["--model", *argv]
    return argv



# ==== wenlm export (section owned by the export helper) ====
# Formats `wenlm export --to` writes; each has a writer in training/export.py.
EXPORT_FORMATS = ("llama",)


@dataclass
class ExportArguments:
    model: str = field(metadata={"help": "The wenlm model to convert: a local folder or a Hub id."})
    output_dir: str = field(metadata={"help": "Folder to write (created; refused if it already holds files)."})
    to: str = field(
        default="llama",
        metadata={"choices": EXPORT_FORMATS,
                  "help": "Target format. llama: a stock LlamaForCausalLM folder (no remote code) with the same "
                          "weights, tokenizer and generation settings."},
    )
    revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a Hub model."})


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
    description: str | None = None,
) -> tuple:
    """Parse `argv` (an options file may come first) into one instance of each dataclass."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith(OPTIONS_FILE_SUFFIXES) and not argv[0].startswith("-"):
        argv = options_file_to_argv(Path(argv[0])) + argv[1:]
    if renamed:
        argv = rename_deprecated(argv, renamed, command)
    parser = HfArgumentParser(
        dataclass_types, prog=prog or (f"wenlm {command}" if command else None), description=description
    )
    if defaults:
        parser.set_defaults(**defaults)
    return parser.parse_args_into_dataclasses(args=argv)
