"""`wenlm finetune`: chat/instruction SFT, classification or embedding fine-tuning of a wenlm model, optionally
with LoRA (see docs/finetune-evaluate.md)."""

from __future__ import annotations

from transformers import TrainingArguments

from wenlm.training.args import FINETUNE_RENAMED, FINETUNE_TRAINING_DEFAULTS, FinetuneArguments, parse_options
from wenlm.training.finetuning import finetune

ARGUMENTS = (FinetuneArguments, TrainingArguments)
DEFAULTS = FINETUNE_TRAINING_DEFAULTS


def parse_args(argv: list[str] | None = None) -> tuple[FinetuneArguments, TrainingArguments]:
    return parse_options(ARGUMENTS, argv, defaults=DEFAULTS, renamed=FINETUNE_RENAMED, command="finetune")


def main(argv: list[str] | None = None) -> dict:
    args, training_args = parse_args(argv)
    return finetune(args, training_args)
