"""`wenlm quickstart`: the main job. Trains a tokenizer and a small model on the built-in bilingual corpus as
`wenlm pretrain` does, then samples Chinese and English continuations through `pipeline("text-generation")`.

Takes every `wenlm pretrain` option as well (`--max_steps`, `--preset`, ...), with the defaults of
`QUICKSTART_DEFAULTS`."""

from __future__ import annotations

import json
from pathlib import Path

from wenlm.training.args import (
    QUICKSTART_DEFAULTS,
    QUICKSTART_VOCAB_SIZE,
    DataArguments,
    ModelArguments,
    QuickstartArguments,
    parse_options,
)
from wenlm.training.args.training import WenLMTrainingArguments
from wenlm.training.evaluation.generate import sample_continuations
from wenlm.training.pretraining import pretrain

PROMPTS = ("小明在", "一天早上，", "Once upon a time,", "Tom said:")
ARGUMENTS = (QuickstartArguments, ModelArguments, DataArguments, WenLMTrainingArguments)
DEFAULTS = QUICKSTART_DEFAULTS


def parse_args(argv: list[str] | None = None) -> tuple:
    """(QuickstartArguments, ModelArguments, DataArguments, WenLMTrainingArguments) with the quickstart's
    defaults."""
    quick, model_args, data_args, training_args = parse_options(
        ARGUMENTS, argv, defaults=DEFAULTS, command="quickstart"
    )
    if not data_args.train_files:
        data_args.train_files = [f"builtin:{quick.num_docs}"]
    if model_args.vocab_size is None and not model_args.tokenizer:
        model_args.vocab_size = QUICKSTART_VOCAB_SIZE
    return quick, model_args, data_args, training_args


def main(argv: list[str] | None = None) -> dict:
    quick, model_args, data_args, training_args = parse_args(argv)
    report = pretrain(model_args, data_args, training_args)
    if not report:  # non-main process under torchrun
        return report
    output_dir = Path(training_args.output_dir).resolve()
    print("\nSamples from pipeline('text-generation'):")
    for text in sample_continuations(output_dir, PROMPTS, max_new_tokens=quick.max_new_tokens):
        print("  " + text.replace("\n", " ⏎ "))
    results = report["results"]
    floor = report.get("entropy_floor_bpb")
    print(
        f"\nvalidation bits per byte: {results['eval_bpb']:.4f}"
        + (f" (corpus entropy floor {floor:.4f})" if floor is not None else "")
    )
    print(f"model, tokenizer and remote code: {output_dir}")
    print(f"model card: {output_dir / 'README.md'}")
    print(
        f"report: {json.dumps({k: report['training'][k] for k in ('steps', 'tokens_seen', 'wall_time_seconds')})}"
    )
    return report
