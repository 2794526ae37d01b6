"""Options of `wenlm scaling`."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from wenlm.training.args.training import (
    CPU_TRAINING_DEFAULTS,
    DEFAULT_MUON_LEARNING_RATE,
    DEFAULT_MUON_WEIGHT_DECAY,
    DEFAULT_OPTIM,
    MUON,
    PRECISIONS,
    DataArguments,
)

# --------------------------------------------------------------------------------------------- wenlm scaling

# The default study is the control of issue 12: a variant of the built-in corpus (2 entries per word list, exact
# entropy floor 0.1584 bits/byte) that nano-sized models learn close to its floor within the 30 minutes the default
# grid may take on 2 CPU cores. The 4-word variant was tried first: its loss falls by a step, not a power law, in
# this range (benchmarks/results/scaling_builtin_words4 and BENCHMARKS.md).
SCALING_DEFAULT_TRAIN_FILES = "builtin:16000:words=2"
SCALING_DEFAULT_DATA_SIZES = "3.125e4,6.25e4,1.25e5,2.5e5,5e5"
SCALING_DEFAULT_PRESETS = "nano:num_hidden_layers=1,nano:num_hidden_layers=2,nano"
# Optimizer steps per pass a cell gets at least (through smaller batches): Chinchilla-style single passes need
# ~300 to measure data rather than under-training; converged cells make up steps with passes.
DEFAULT_MIN_STEPS = {"converged": 100, "single_epoch": 300}
SCALING_DEFAULT_VALIDATION_DOCS = 1000
# DataArguments' defaults in a study: the control corpus, short blocks for nano-sized models, and validation
# documents as a count (a study's cells are scored on the same documents whatever the corpus size).
SCALING_DATA_DEFAULTS = {
    "train_files": [SCALING_DEFAULT_TRAIN_FILES],
    "block_size": 128,
    "validation_split": SCALING_DEFAULT_VALIDATION_DOCS,
}
SCALING_METRICS = ("val_bpb", "val_loss")
SCALING_REGIMES = ("converged", "single_epoch")
# Passes over a cell's data at most, per regime: converged cells stop earlier when the held-out loss stops falling.
DEFAULT_MAX_EPOCHS = {"converged": 16.0, "single_epoch": 1.0}


def parse_epochs_list(text: str | None) -> list[int]:
    """``"1,2,4,8,16"`` -> ``[1, 2, 4, 8, 16]`` for the repetition sub-study (empty or None: no sub-study)."""
    if text is None or not str(text).strip():
        return []
    epochs = []
    for item in (part.strip() for part in str(text).split(",") if part.strip()):
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"--epochs: {item!r} is not a number (expected e.g. 1,2,4,8,16)") from None
        if value != int(value) or value < 1:
            raise ValueError(f"--epochs: {item!r} must be a whole number of passes >= 1")
        epochs.append(int(value))
    if len(set(epochs)) != len(epochs):
        raise ValueError(f"--epochs lists a value twice: {text}")
    if len(epochs) < 3 or 1 not in epochs:
        raise ValueError(
            f"--epochs {text}: the repetition sub-study needs 1 (every token once) and at least two repeat counts, "
            "e.g. 1,2,4,8,16"
        )
    return sorted(epochs)


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
    regime: str = field(
        default="converged",
        metadata={
            "help": "converged: each cell trains on its D unique tokens for as many epochs as help (early stopping on "
            "held-out training documents, best checkpoint evaluated): the question of a user whose corpus is fixed. "
            "single_epoch: every token seen once (Chinchilla-style), batch shrunk so every cell gets --min_steps."
        },
    )
    num_train_epochs: float | None = field(
        default=None,
        metadata={"help": "Most passes over a cell's data (default 16 for converged, 1 for single_epoch)."},
    )
    converged_min_steps: int = field(
        default=4000,
        metadata={
            "help": "converged: optimizer steps a cell may take at least, in as many passes as that needs (early "
            "stopping still ends it sooner), so that small cells are not cut off before their loss stops falling."
        },
    )
    min_steps: int | None = field(
        default=None,
        metadata={
            "help": "Optimizer steps per pass every cell gets at least (default 300 for single_epoch, 100 for "
            "converged): a cell with fewer blocks than min_steps x batch trains with a smaller batch (learning rate "
            "scaled by the square root of the batch ratio)."
        },
    )
    early_stopping_patience: int = field(
        default=3,
        metadata={"help": "converged: passes without a new best held-out loss before stopping."},
    )
    early_stopping_tokens: int = field(
        default=32768,
        metadata={
            "help": "converged: tokens of training documents held out from every cell (the tail of the training "
            "stream) to decide when to stop; never the study's validation set."
        },
    )
    epochs: str | None = field(
        default=None,
        metadata={
            "help": "Repetition sub-study (Muennighoff et al. 2023): passes over a fixed unique budget, e.g. "
            "1,2,4,8,16; each is paired with a single-pass cell of the same total tokens. Default: none."
        },
    )
    repetition_tokens: int | None = field(
        default=None,
        metadata={"help": "Unique tokens U of the repetition sub-study (default: the smallest D)."},
    )
    repetition_model: str | None = field(
        default=None,
        metadata={"help": "Model of the repetition sub-study (default: the first of --presets)."},
    )
    constrain_floor: bool = field(
        default=False,
        metadata={
            "help": "Also fit with E >= the corpus's known entropy floor (built-in corpus only); the report shows "
            "the constrained and the free fit."
        },
    )
    workers: int | None = field(
        default=None,
        metadata={
            "help": "Cells trained at once, each in its own process with one torch thread. Tiny models use two "
            "cores poorly from one process (its threads wait for each other), so on 2 cores --workers 2 trains "
            "a grid faster than one 2-thread process. Default: 2 where the machine has 2 or more cores."
        },
    )
    worker_cells: str | None = field(
        default=None,
        metadata={"help": "Internal: the cell files this worker process trains (set by --workers)."},
    )
    budget_minutes: float | None = field(
        default=None,
        metadata={
            "help": "Time budget: cells whose estimated time does not fit are dropped before training, largest "
            "first, and listed in the report."
        },
    )
    report_only: bool = field(
        default=False,
        metadata={
            "help": "Re-render results, fits, plots and REPORT.md from the stored cells without training."
        },
    )
    vocab_size: int = field(default=1024, metadata={"help": "Size of the study's BPE tokenizer."})
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
    optim: str = field(
        default=DEFAULT_OPTIM,
        metadata={
            "help": f"Every cell's optimizer, as for `wenlm pretrain`: '{MUON}' (Muon on the decoder's matrices, "
            "AdamW on the rest) or one of transformers' OptimizerNames."
        },
    )
    muon_learning_rate: float = field(
        default=DEFAULT_MUON_LEARNING_RATE,
        metadata={
            "help": "--optim muon: Muon's peak learning rate at the reference width and batch; a cell scales it by "
            "the same batch and width rules as --learning_rate."
        },
    )
    muon_weight_decay: float = field(
        default=DEFAULT_MUON_WEIGHT_DECAY, metadata={"help": "--optim muon: Muon's decoupled weight decay."}
    )
    precision: str | None = field(
        default=None,
        metadata={
            "help": f"Every cell's precision, as for `wenlm pretrain`: one of {', '.join(PRECISIONS)} "
            "(unset: float32)."
        },
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

    # The corpus options, parsed beside these from DataArguments (with SCALING_DATA_DEFAULTS) and attached by the
    # command, as run_clm composes its dataclasses: one declaration and one check of every data option.
    data: DataArguments | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        parse_data_sizes(self.data_sizes)
        if self.regime not in SCALING_REGIMES:
            raise ValueError(f"--regime must be one of {', '.join(SCALING_REGIMES)}, got {self.regime!r}")
        if self.num_train_epochs is None:
            self.num_train_epochs = DEFAULT_MAX_EPOCHS[self.regime]
        parse_epochs_list(self.epochs)
        positive = (
            "vocab_size",
            "per_device_train_batch_size",
            "num_train_epochs",
            "learning_rate",
            "min_steps",
        )
        positive += ("early_stopping_patience", "early_stopping_tokens", "converged_min_steps")
        if self.min_steps is None:
            self.min_steps = DEFAULT_MIN_STEPS[self.regime]
        if self.workers is None:
            self.workers = min(2, os.cpu_count() or 1)
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"--workers must be an integer >= 1, got {self.workers}")
        if self.budget_minutes is not None:
            positive += ("budget_minutes",)
        if self.repetition_tokens is not None:
            positive += ("repetition_tokens",)
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.warmup_steps < 1:
            raise ValueError(
                f"--warmup_steps must be a fraction of each cell's steps in [0, 1), got {self.warmup_steps}"
            )
        if self.metric not in SCALING_METRICS:
            raise ValueError(f"--metric must be one of {', '.join(SCALING_METRICS)}, got {self.metric!r}")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"--torch_threads must be >= 1, got {self.torch_threads}")
        if self.bootstrap < 0:
            raise ValueError(f"--bootstrap must be >= 0, got {self.bootstrap}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    @property
    def repetition_epochs(self) -> list[int]:
        return parse_epochs_list(self.epochs)

    @property
    def grid_data_sizes(self) -> list[int]:
        """The training token counts D of the grid, smallest first."""
        return parse_data_sizes(self.data_sizes)
