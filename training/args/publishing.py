"""Options of `wenlm push`, `card`, `export` and `corpus`."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

from wenlm.training.args.parsing import OPTIONS_FILE_SUFFIXES


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
        metadata={
            "help": "Re-render a wenlm-generated README.md with the repo id; false uploads it as it is."
        },
    )
    check_only: bool = field(
        default=False, metadata={"help": "Run the checks and stop; nothing is uploaded."}
    )
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
        metadata={
            "help": "Replace a hand-written README.md after moving it to README.md.bak (else: refuse)."
        },
    )


@dataclass
class CorpusArguments:
    output: str = field(
        metadata={"help": "The JSONL file to write (an existing one is kept unless --overwrite)."}
    )
    kind: str = field(
        default="stories",
        metadata={
            "help": "stories: pretraining documents; qa, translate or classify: fine-tuning task rows; "
            "retrieval: a story collection and questions with their right story's id; retrieval_qa: "
            "the same questions (same --num_docs and --seed) after their own story, as qa rows to "
            "fine-tune the model that answers after retrieval."
        },
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
# Formats `wenlm export --to` writes; each has a writer in training/export/command.py.
EXPORT_FORMATS = ("llama", "gguf")
GGUF_OUTTYPES = ("f32", "f16", "q8_0")


@dataclass
class ExportArguments:
    model: str = field(metadata={"help": "The wenlm model to convert: a local folder or a Hub id."})
    output_dir: str = field(
        metadata={"help": "Folder to write (created; refused if it already holds files)."}
    )
    to: str = field(
        default="llama",
        metadata={
            "choices": EXPORT_FORMATS,
            "help": "Target format. llama: a stock LlamaForCausalLM folder (no remote code) with the same "
            "weights, tokenizer and generation settings. gguf: a llama.cpp file (+ Ollama Modelfile); "
            "needs a tokenizer trained with --split_rule qwen2 (the default).",
        },
    )
    revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a Hub model."})
    outtype: str | None = field(
        default=None,
        metadata={
            "choices": GGUF_OUTTYPES,
            "help": "Weight type of --to gguf (default f16): f32 exact, f16, q8_0 (8-bit blocks of 32; rows "
            "whose width 32 does not divide stay f32). Norms are float32 in all three.",
        },
    )
