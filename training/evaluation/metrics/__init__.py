"""Task metrics for wenlm, shipped as local ``evaluate`` modules so they load without the Hugging Face Hub.

``evaluate.load("accuracy")`` fetches the metric script from the Hub, which fails offline. Each metric
here is an ``evaluate.Metric`` in its own folder (``wenlm_qa/wenlm_qa.py`` ...) inside the installed
package; :func:`load_metric` passes evaluate the absolute path of that folder, so loading only reads the
file and copies it into evaluate's module cache (``HF_MODULES_CACHE``), also when the package itself is
installed read-only from a wheel, and with ``HF_HUB_OFFLINE=1``.

Every score is a percentage in [0, 100] (sacrebleu's convention), so a results table never mixes scales.

====================  =========================================================================
name                  scores
====================  =========================================================================
``qa``                exact_match, f1 (SQuAD normalisation; CJK characters are tokens)
``bleu``              bleu, precisions, ... (sacrebleu; tokenize="zh" for Chinese references)
``chrf``              chrf (sacrebleu CHRF; chrF++ with word_order=2)
``rouge_l``           rougeL, rougeL_precision, rougeL_recall (CJK characters are tokens)
``classification``    accuracy, macro_f1, per_class_f1
``retrieval``         recall@k, mrr and the same per group (recall@1_zh, ...), from gold ranks
====================  =========================================================================

``bleu`` and ``chrf`` need sacrebleu: ``pip install 'wenlm[metrics]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import evaluate

__all__ = ["METRIC_NAMES", "compute_metric", "load_metric", "metric_path"]

_METRICS_DIR = Path(__file__).resolve().parent

# Public name -> folder. The folders carry a "wenlm_" prefix so that evaluate's module cache, which is
# keyed by the script's file name, never mixes them up with the Hub's "bleu", "chrf" or "accuracy".
_MODULE_FOLDERS = {
    "qa": "wenlm_qa",
    "bleu": "wenlm_bleu",
    "chrf": "wenlm_chrf",
    "rouge_l": "wenlm_rouge_l",
    "classification": "wenlm_classification",
    "retrieval": "wenlm_retrieval",
}

METRIC_NAMES: tuple[str, ...] = tuple(_MODULE_FOLDERS)


def metric_path(name: str) -> Path:
    """Absolute path of the folder holding metric ``name``; ``evaluate.load(str(path))`` accepts it.

    Names are matched case-insensitively and "-" counts as "_" (so "ROUGE-L" is "rouge_l").
    """
    if not isinstance(name, str):
        raise TypeError(
            f"metric name must be a string, got {type(name).__name__}; valid names: {METRIC_NAMES}"
        )
    key = name.strip().lower().replace("-", "_")
    if key not in _MODULE_FOLDERS:
        raise ValueError(f"Unknown wenlm metric {name!r}; valid names are: {', '.join(METRIC_NAMES)}.")
    folder = _METRICS_DIR / _MODULE_FOLDERS[key]
    script = folder / f"{folder.name}.py"
    if not script.is_file():
        raise FileNotFoundError(
            f"The wenlm metric script {script} is missing; the wenlm installation is incomplete. "
            "Reinstall wenlm (its wheel ships training/evaluation/metrics/*/*.py as package data)."
        )
    return folder


def load_metric(name: str, **load_kwargs: Any) -> evaluate.EvaluationModule:
    """Load wenlm metric ``name`` (one of :data:`METRIC_NAMES`) with ``evaluate.load``, offline-safe.

    ``load_kwargs`` go to ``evaluate.load`` (e.g. ``keep_in_memory=True``, ``experiment_id``,
    ``num_process``/``process_id`` for distributed evaluation).
    """
    return evaluate.load(str(metric_path(name)), **load_kwargs)


def compute_metric(name: str, predictions: Any, references: Any, **compute_kwargs: Any) -> dict[str, Any]:
    """Load metric ``name`` and compute it in one call, keeping the inputs in memory (no cache files).

    ``compute_kwargs`` are the metric's own options, e.g. ``tokenize="zh"`` for ``bleu`` or ``labels``
    for ``classification``.
    """
    metric = load_metric(name, keep_in_memory=True)
    return metric.compute(predictions=predictions, references=references, **compute_kwargs)
