"""Options of the commands that train: `wenlm pretrain`, `finetune`, `quickstart`, and the corpus options every
command that reads text shares (the built-in corpus writer included)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments

from wenlm.modeling import PRESETS
from wenlm.tokenization.bpe import DEFAULT_SPLIT_RULE, SPLIT_RULES
from wenlm.training.args.retrieval import POOLINGS

# Defaults suited to a small model on a CPU, shared by every command that trains; any of them can still be set
# on the command line.
_CPU_ONLY = not torch.cuda.is_available()
CPU_TRAINING_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 16,
    "learning_rate": 2e-3,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.05,
    "weight_decay": 0.1,
    "adam_beta2": 0.95,
    "max_grad_norm": 1.0,
    "num_train_epochs": 1.0,
    "logging_steps": 10,
    "logging_first_step": True,
    # A fraction of the run's steps (the Trainer reads eval_steps < 1 so): ten evaluations draw a validation curve
    # whatever the run's length, where a fixed 100 steps gave the quickstart's 369 steps three points.
    "eval_strategy": "steps",
    "eval_steps": 0.1,
    "save_strategy": "steps",
    "save_steps": 100,
    "save_total_limit": 2,
    "prediction_loss_only": True,
    "report_to": "none",
    "include_num_input_tokens_seen": True,
    "dataloader_num_workers": 0,
    "dataloader_pin_memory": not _CPU_ONLY,
    "seed": 42,
    # Without use_cpu and gloo the Trainer ignores a torchrun launch on a CPU-only machine and trains each
    # process alone; gloo is named only when launched distributed, since naming it starts a process group.
    "use_cpu": _CPU_ONLY,
    "ddp_backend": "gloo" if _CPU_ONLY and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
}


# ------------------------------------------------------------------------------ optimizer, schedule, precision

# TrainingArguments' own default optimizer (adamw_torch_fused on torch >= 2.8), kept where wenlm widens the choice.
DEFAULT_OPTIM = str(TrainingArguments.__dataclass_fields__["optim"].default)
MUON = "muon"
# Keller Jordan's Muon defaults (github.com/KellerJordan/Muon): lr 0.02 with torch's "original" shape adjustment.
# Weight decay 0.01 shrinks the matrices by lr x wd = 2e-4 per step, as AdamW's 2e-3 x 0.1 does at wenlm's defaults.
DEFAULT_MUON_LEARNING_RATE = 0.02
DEFAULT_MUON_WEIGHT_DECAY = 0.01
MUON_ADJUST_LR_FNS = ("original", "match_rms_adamw")
# Share of the steps the warmup_stable_decay schedule spends decaying: 20 % matched a cosine schedule's loss in
# Hägele et al. 2024 ("Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations").
DEFAULT_LR_DECAY_FRACTION = 0.2
PRECISIONS = ("auto", "fp32", "bf16")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_tile")


def muon_unavailable_message() -> str | None:
    """Why --optim muon cannot run here, or None where torch has torch.optim.Muon."""
    if hasattr(torch.optim, "Muon"):
        return None
    return (
        f"--optim muon needs torch.optim.Muon, which torch has since 2.9; this is torch {torch.__version__}. "
        "Upgrade torch (pip install 'torch>=2.9') or train with --optim adamw_torch."
    )


def cpu_bf16_flags() -> list[str]:
    """The CPU features that compute bfloat16 natively here (AVX512-BF16 dot products, AMX tiles); empty where
    bf16 autocast would emulate it in float32 at a loss of speed."""
    probes = {
        "avx512_bf16": getattr(torch.cpu, "_is_avx512_bf16_supported", None),
        "amx_tile": getattr(torch.cpu, "_is_amx_tile_supported", None),
    }
    if all(probes.values()):
        return [flag for flag, probe in probes.items() if probe()]
    # A torch without the (private) probes: the kernel's list of CPU flags, on Linux.
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    flags = next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())
    return [flag for flag in CPU_BF16_FLAGS if flag in flags]


def native_bf16(device: str) -> tuple[bool, str]:
    """(whether `device`, "cpu" or "cuda", computes bfloat16 natively, the evidence in words)."""
    if device != "cpu":
        supported = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        return supported, f"torch.cuda.is_bf16_supported() is {supported}"
    flags = cpu_bf16_flags()
    return bool(flags), f"CPU flags {', '.join(flags)}" if flags else "no avx512_bf16 or amx_tile CPU flag"


def training_device(args: TrainingArguments) -> str:
    return "cpu" if args.use_cpu or not torch.cuda.is_available() else "cuda"


@dataclass
class WenLMTrainingArguments(TrainingArguments):
    """TrainingArguments with what wenlm adds to training: `--optim muon` (the Trainer's optimizer names cannot
    hold it), Muon's own learning rate and weight decay, the decay share of warmup_stable_decay, and
    `--precision auto|fp32|bf16`. Every other option is TrainingArguments' own."""

    optim: str = field(
        default=DEFAULT_OPTIM,
        metadata={
            "help": f"The optimizer: '{MUON}' (torch.optim.Muon for the 2-D weight matrices inside the decoder "
            "layers, AdamW with --learning_rate/--weight_decay/--adam_* for embeddings, output head and "
            "norms; needs torch >= 2.9) or any of transformers' OptimizerNames."
        },
    )
    muon_learning_rate: float = field(
        default=DEFAULT_MUON_LEARNING_RATE,
        metadata={
            "help": "--optim muon: peak learning rate of the Muon matrices; the schedule scales it and "
            "--learning_rate (AdamW's) alike, so their ratio holds throughout."
        },
    )
    muon_weight_decay: float = field(
        default=DEFAULT_MUON_WEIGHT_DECAY,
        metadata={
            "help": "--optim muon: decoupled weight decay of the Muon matrices (each step shrinks them by "
            "learning rate x weight decay)."
        },
    )
    muon_adjust_lr_fn: str = field(
        default="original",
        metadata={
            "help": "--optim muon: torch's per-shape learning-rate adjustment: 'original' (sqrt(max(1, rows/"
            "cols)), Keller Jordan's) or 'match_rms_adamw' (0.2 sqrt(max(rows, cols)), Moonshot's; "
            "then --muon_learning_rate near AdamW's)."
        },
    )
    lr_decay_fraction: float = field(
        default=DEFAULT_LR_DECAY_FRACTION,
        metadata={
            "help": "--lr_scheduler_type warmup_stable_decay: share of the steps spent decaying at the end "
            "(unless --lr_scheduler_kwargs gives num_decay_steps)."
        },
    )
    precision: str | None = field(
        default=None,
        metadata={
            "help": "auto: bf16 autocast where the device computes bf16 natively (CPU: AVX512-BF16 or AMX; "
            "GPU: torch.cuda.is_bf16_supported), float32 otherwise; fp32; bf16 (as --bf16 true). "
            "`wenlm pretrain` and `quickstart` default to auto, which an explicit --bf16/--fp16 "
            "overrides. Weights and optimizer states stay float32 either way."
        },
    )

    def __post_init__(self):
        self._check_wenlm_options()
        self._resolve_precision()
        # TrainingArguments checks optim against its own names; Muon is built by LanguageModelTrainer instead.
        muon = self.optim == MUON
        if muon:
            self.optim = "adamw_torch"
        super().__post_init__()
        if muon:
            self.optim = MUON

    def _check_wenlm_options(self) -> None:
        if self.optim == MUON and (message := muon_unavailable_message()):
            raise ValueError(message)
        if not self.muon_learning_rate > 0:
            raise ValueError(f"--muon_learning_rate must be positive, got {self.muon_learning_rate}")
        if not self.muon_weight_decay >= 0:
            raise ValueError(f"--muon_weight_decay must be >= 0, got {self.muon_weight_decay}")
        if self.muon_adjust_lr_fn not in MUON_ADJUST_LR_FNS:
            raise ValueError(
                f"--muon_adjust_lr_fn must be one of {', '.join(MUON_ADJUST_LR_FNS)}, "
                f"got {self.muon_adjust_lr_fn!r}"
            )
        if not 0 < self.lr_decay_fraction <= 1:
            raise ValueError(
                f"--lr_decay_fraction must be a share of the steps in (0, 1], got {self.lr_decay_fraction}"
            )
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def _resolve_precision(self) -> None:
        """Turn --precision into the --bf16 flag before TrainingArguments reads it (it picks the autocast)."""
        if self.precision is None:
            return
        if self.precision == "auto" and (self.bf16 or self.fp16):
            # auto is pretraining's default, so an explicit --bf16/--fp16 decides (and the report names it).
            self.precision = None
            return
        if self.fp16 or (self.bf16 and self.precision != "bf16"):
            given = "--fp16 true" if self.fp16 else "--bf16 true"
            raise ValueError(f"--precision {self.precision} and {given} disagree; give only --precision.")
        self.bf16 = self.precision == "bf16" or (
            self.precision == "auto" and native_bf16(training_device(self))[0]
        )


# Rows of logits per chunk of the fused training loss: fast on CPU at every preset (BENCHMARKS.md, section 1).
DEFAULT_LOSS_CHUNK_SIZE = 256


# Vocabulary of a tokenizer trained by `wenlm pretrain` when --vocab_size is not given.
DEFAULT_VOCAB_SIZE = 8192


@dataclass
class ModelArguments:
    preset: str = field(default="micro", metadata={"help": f"Model size: one of {', '.join(PRESETS)}."})
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated config fields overriding the preset, e.g. 'num_hidden_layers=4,dropout=0.1'."
        },
    )
    tokenizer: str | None = field(
        default=None,
        metadata={
            "help": "An existing tokenizer (folder or Hub id). Without it a byte-level BPE is trained on the corpus."
        },
    )
    vocab_size: int | None = field(
        default=None,
        metadata={
            "help": f"Vocabulary size of the tokenizer trained here (unset: {DEFAULT_VOCAB_SIZE}). Refused "
            "together with --tokenizer, which keeps its own vocabulary."
        },
    )
    tokenizer_min_frequency: int = field(
        default=2, metadata={"help": "Minimum pair frequency for a BPE merge."}
    )
    use_jieba: bool = field(
        default=False, metadata={"help": "Pre-segment Chinese with jieba (needs wenlm[zh])."}
    )
    split_rule: str = field(
        default=DEFAULT_SPLIT_RULE,
        metadata={
            "choices": tuple(SPLIT_RULES),
            "help": "How the trained tokenizer cuts text before BPE: qwen2 (llama.cpp implements it, so the "
            "model exports to GGUF) or wenlm (CJK apart from Latin, digits in threes; no GGUF).",
        },
    )
    attn_implementation: str = field(
        default="sdpa", metadata={"help": "sdpa, eager, flash_attention_2 or flex_attention."}
    )
    scaling_study: str | None = field(
        default=None,
        metadata={"help": "Folder of a `wenlm scaling` study whose table and plot go into the model card."},
    )
    license: str = field(
        default="apache-2.0", metadata={"help": "License written into the model card metadata."}
    )
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
            "help": "Processes for PII scrubbing. Tokenization always runs on all cores "
            "in the tokenizer's own thread pool."
        },
    )
    strict_utf8: bool = field(
        default=False, metadata={"help": "Fail on invalid UTF-8 instead of replacing the bytes with U+FFFD."}
    )
    allow_binary_files: bool = field(
        default=False,
        metadata={
            "help": "Train on files that look binary or not UTF-8 (NUL bytes, or over a tenth of the bytes invalid), "
            "which are refused by default; invalid bytes become U+FFFD."
        },
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


# -------------------------------------------------------------------------------------------- wenlm finetune

FINETUNE_TASKS = ("sft", "classification", "embedding")
# InfoNCE temperature of --task embedding: similarities are cosines divided by it before the softmax.
DEFAULT_EMBEDDING_TEMPERATURE = 0.05
DEFAULT_MAX_BLOCK_SIZE = 512
DEFAULT_LORA_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
# Pretraining and the quickstart compute in bf16 where the device does it natively: on this project's CPU that
# was 1.3x (micro) to 2.3x (small) the float32 step and no worse in loss (BENCHMARKS.md section 9). Scaling
# studies keep float32 unless told, so that a study's cells stay comparable with those it already recorded.

PRETRAIN_DEFAULTS: dict[str, Any] = {**CPU_TRAINING_DEFAULTS, "precision": "auto"}

# Fine-tuning starts from trained weights: a lower peak learning rate and more frequent evaluation than pretraining.
FINETUNE_TRAINING_DEFAULTS: dict[str, Any] = {
    **CPU_TRAINING_DEFAULTS,
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "eval_steps": 50,
    "save_steps": 200,
}
FINETUNE_RENAMED = {"--train_file": "--train_files", "--validation_file": "--validation_files"}


@dataclass
class FinetuneArguments:
    model: str = field(metadata={"help": "The pretrained wenlm model: a local folder or a Hub id."})
    task: str = field(
        metadata={
            "help": f"One of {', '.join(FINETUNE_TASKS)}: chat/instruction rows (sft), "
            "{'text', 'label'} rows (classification), or {'query', 'positive'[, "
            "'negative']} rows or a `wenlm corpus --kind retrieval` file (embedding)."
        }
    )
    train_files: list[str] = field(
        metadata={
            "help": "Training rows: JSON Lines, or any file `datasets` loads; several files are concatenated."
        }
    )
    validation_files: list[str] | None = field(
        default=None, metadata={"help": "Validation rows, same formats; several files are concatenated."}
    )
    revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a Hub model."})
    block_size: int | None = field(
        default=None,
        metadata={
            "help": f"Longest sequence in tokens; longer rows are truncated (beginning kept). Default: the "
            f"model's max_position_embeddings, at most {DEFAULT_MAX_BLOCK_SIZE}."
        },
    )
    skip_bad_rows: bool = field(
        default=False, metadata={"help": "Train without malformed rows instead of stopping."}
    )
    text_column: str = field(default="text", metadata={"help": "Text column for classification."})
    label_column: str = field(
        default="label", metadata={"help": "Label column for classification (str or int)."}
    )
    lora_r: int = field(
        default=0, metadata={"help": "LoRA rank; 0 trains every weight (needs wenlm[lora] if > 0)."}
    )
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: str = field(
        default=DEFAULT_LORA_TARGETS, metadata={"help": "Comma-separated module names that get adapters."}
    )
    pooling: str = field(
        default="mean",
        metadata={
            "choices": POOLINGS,
            "help": "--task embedding: how a text's last hidden states become one vector, as `wenlm embed "
            "--pooling` (mean: over its tokens; last: its last token's state).",
        },
    )
    temperature: float = field(
        default=DEFAULT_EMBEDDING_TEMPERATURE,
        metadata={
            "help": "--task embedding: the InfoNCE temperature, by which cosine similarities are divided "
            "before the softmax over the micro-batch's documents (in-batch negatives: per micro-batch "
            "and process)."
        },
    )
    license: str = field(
        default="apache-2.0", metadata={"help": "License written into the model card metadata."}
    )

    def __post_init__(self):
        if isinstance(self.train_files, str):
            self.train_files = [self.train_files]
        if isinstance(self.validation_files, str):
            self.validation_files = [self.validation_files]
        if self.pooling not in POOLINGS:
            raise ValueError(f"--pooling {self.pooling!r} is unknown; choose {' or '.join(POOLINGS)}.")
        if not self.temperature > 0:
            raise ValueError(
                f"--temperature must be positive (e.g. {DEFAULT_EMBEDDING_TEMPERATURE}), got "
                f"{self.temperature}."
            )


# ------------------------------------------------------------------------------------------ wenlm quickstart

# The quickstart's tokenizer vocabulary, used only when it trains one (an explicit --tokenizer keeps its own).
QUICKSTART_VOCAB_SIZE = 4096

# Sized to finish in under 10 minutes on 2 CPU cores (README records the measured time and bits per byte). Every
# pretrain option can still be given; train_files stays unset so that --num_docs decides the built-in corpus.
QUICKSTART_DEFAULTS: dict[str, Any] = {
    **PRETRAIN_DEFAULTS,
    "output_dir": "wenlm-quickstart",
    "train_files": None,
    "preset": "micro",
    "block_size": 256,
    "learning_rate": 3e-3,
    "save_steps": 200,
    "logging_steps": 25,
}


@dataclass
class QuickstartArguments:
    num_docs: int = field(
        default=32000,
        metadata={
            "help": "Documents of the built-in corpus to generate and train on (unless --train_files is given)."
        },
    )
    max_new_tokens: int = field(
        default=48, metadata={"help": "Tokens generated for each sample prompt after training."}
    )

    def __post_init__(self):
        if self.num_docs < 2:
            raise ValueError(
                f"--num_docs must be at least 2 (training and validation documents), got {self.num_docs}"
            )
