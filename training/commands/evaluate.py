"""`wenlm evaluate`: measure a model on a task (lm, qa, translate, summarize, classification, retrieval, or
lm-evaluation-harness tasks), print the metrics and record them in a local model folder (see
docs/finetune-evaluate.md)."""

from __future__ import annotations

import json
from pathlib import Path

from wenlm.training.args import EvaluateArguments, ModelSourceArguments, parse_options
from wenlm.training.cards.card import write_model_card
from wenlm.training.evaluation.evaluate import evaluate_model
from wenlm.training.model_folder import TRAINING_REPORT

ARGUMENTS = (ModelSourceArguments, EvaluateArguments)
# Old flag spellings, still accepted for one release with a FutureWarning.
RENAMED = {
    "--data": "--validation_files",
    "--batch_size": "--per_device_eval_batch_size",
    "--no_save": ("--save_results", "false"),
}


def parse_args(argv: list[str] | None) -> tuple[ModelSourceArguments, EvaluateArguments]:
    return parse_options(ARGUMENTS, argv, renamed=RENAMED, command="evaluate")


def main(argv: list[str] | None = None) -> dict:
    source, options = parse_args(argv)
    metrics = evaluate_model(source, options)
    folder = Path(source.model)
    # The card shows eval_results.json, which evaluate_model has just updated.
    if options.save_results and (folder / TRAINING_REPORT).is_file():
        write_model_card(folder)
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    return metrics
