"""`wenlm pretrain`: train a tokenizer and a model on a corpus with the stock Trainer (see docs/pretrain.md)."""

from __future__ import annotations

from wenlm.training.args import PRETRAIN_DEFAULTS, DataArguments, ModelArguments, parse_options
from wenlm.training.args.inspection import CanaryArguments
from wenlm.training.args.training import WenLMTrainingArguments
from wenlm.training.pretraining import pretrain

ARGUMENTS = (ModelArguments, DataArguments, WenLMTrainingArguments, CanaryArguments)
DEFAULTS = PRETRAIN_DEFAULTS


def parse_args(
    argv: list[str] | None = None,
) -> tuple[ModelArguments, DataArguments, WenLMTrainingArguments, CanaryArguments]:
    return parse_options(ARGUMENTS, argv, defaults=DEFAULTS, command="pretrain")


def main(argv: list[str] | None = None) -> dict:
    model_args, data_args, training_args, canary_args = parse_args(argv)
    return pretrain(model_args, data_args, training_args, canary_args)
