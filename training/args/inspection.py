"""Options of `wenlm inspect`, `wenlm audit` and the canaries of `wenlm pretrain`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from wenlm.training.args.evaluation import check_at_least_one


@dataclass
class InspectArguments:
    """What `wenlm inspect` looks at (the model comes from ModelSourceArguments: --model, --revision)."""

    text: str = field(metadata={"help": "The text to run through the model (Chinese or English)."})
    output_dir: str = field(
        metadata={
            "help": "Folder for tokens.json/.html/.png, logit_lens.json/.md/.png, attention.png/.html and heads.json/.md."
        }
    )
    max_length: int = field(
        default=128,
        metadata={
            "help": "Inspect only the first N tokens of the text (the attention grid gets unreadable beyond)."
        },
    )
    top_k: int = field(default=5, metadata={"help": "Predictions shown for each token."})

    def __post_init__(self):
        if not self.text.strip():
            raise ValueError("--text is empty: give the text to inspect, e.g. --text '从前有一只小猫。'")
        check_at_least_one(max_length=self.max_length, top_k=self.top_k)


# ------------------------------------------------------------------------------------- canaries and audit

CANARY_FORMATS = ("digits", "phone")


def parse_canary_repeats(text: str | Sequence[int]) -> tuple[int, ...]:
    """'1,4,16' -> (1, 4, 16); every count must be a whole number of 1 or more."""
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        repeats = tuple(int(str(item).strip()) for item in items if str(item).strip())
    except ValueError:
        raise ValueError(
            f"--canary_repeats {text!r}: expected comma-separated whole numbers, e.g. 1,4,16"
        ) from None
    if not repeats or min(repeats) < 1:
        raise ValueError(f"--canary_repeats {text!r}: give at least one count, each 1 or more, e.g. 1,4,16")
    return repeats


@dataclass
class CanaryArguments:
    """`wenlm pretrain`'s canaries: random secrets inserted a known number of times, for `wenlm audit`."""

    canaries: int = field(
        default=0,
        metadata={
            "help": "Canaries inserted per repetition count of --canary_repeats (and as many never-inserted "
            "controls); 0: none. Their secrets go to --canary_file, outside the model folder."
        },
    )
    canary_repeats: str = field(
        default="1,4,16", metadata={"help": "Comma-separated copies of each group of canaries, e.g. 1,4,16."}
    )
    canary_format: str = field(
        default="digits",
        metadata={
            "help": "'digits': an access code of --canary_digits digits; 'phone': an 11-digit Chinese mobile "
            "number (which --scrub_pii replaces)."
        },
    )
    canary_digits: int = field(
        default=6,
        metadata={
            "help": "Digits of a 'digits' canary: 10^N possible secrets (up to 4 or 5 are enumerated "
            "exactly by wenlm audit; more are estimated from a sample)."
        },
    )
    canary_file: str | None = field(
        default=None,
        metadata={
            "help": "Where the canaries and their secrets are written (default: <output_dir>.canaries.json "
            "beside the model folder; never inside it)."
        },
    )
    canary_seed: int = field(default=0, metadata={"help": "Seed of the secrets and of where the copies go."})

    def __post_init__(self):
        if self.canaries < 0:
            raise ValueError(f"--canaries must be 0 (none) or more, got {self.canaries}")
        if self.canary_format not in CANARY_FORMATS:
            raise ValueError(
                f"--canary_format {self.canary_format!r} is unknown; choose {' or '.join(CANARY_FORMATS)}"
            )
        if not 1 <= self.canary_digits <= 18:
            raise ValueError(f"--canary_digits must be between 1 and 18, got {self.canary_digits}")
        parse_canary_repeats(self.canary_repeats)


@dataclass
class AuditArguments:
    """What `wenlm audit` measures (the model comes from ModelSourceArguments; the training files, for the
    extraction test, from DataArguments: --train_files and the reading and cleaning options pretrain used)."""

    output_dir: str = field(
        metadata={
            "help": "Folder for audit.json, audit.md and exposure.png (no secrets or training text in them)."
        }
    )
    canary_file: str | None = field(
        default=None,
        metadata={
            "aliases": ["--canaries"],
            "help": "The canary file `wenlm pretrain --canaries N` wrote: measure each canary's exposure.",
        },
    )
    exact_limit: int = field(
        default=20000, metadata={"help": "Enumerate every candidate secret when there are at most this many."}
    )
    candidates: int = field(
        default=2000,
        metadata={
            "help": "Random candidates scored per canary when the space is larger than --exact_limit (the "
            "exposure is then a skew-normal extrapolation, as in the paper)."
        },
    )
    prefix_tokens: int = field(
        default=32, metadata={"help": "Extraction: tokens of a training document given."}
    )
    suffix_tokens: int = field(
        default=16, metadata={"help": "Extraction: tokens that greedy decoding must reproduce exactly."}
    )
    samples: int = field(
        default=200,
        metadata={"help": "Extraction: training documents tested, spread over the copy-count groups."},
    )
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Sequences per forward pass."})
    seed: int = field(default=0, metadata={"help": "Seed of the candidates and documents sampled."})
    update_model_folder: bool = field(
        default=True,
        metadata={
            "help": "Write the results into the model folder's training_report.json ('audit') and re-render "
            "its generated model card."
        },
    )

    def __post_init__(self):
        check_at_least_one(
            exact_limit=self.exact_limit,
            candidates=self.candidates,
            prefix_tokens=self.prefix_tokens,
            suffix_tokens=self.suffix_tokens,
            samples=self.samples,
            per_device_eval_batch_size=self.per_device_eval_batch_size,
        )
        if self.candidates < 30:
            raise ValueError(
                f"--candidates {self.candidates} is too few to fit a distribution; give 30 or more"
            )
