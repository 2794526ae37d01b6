"""Pieces shared by the wenlm metric modules: input checks, reference handling, the sacrebleu import.

The metric modules import this file as ``from wenlm.training.evaluation.metrics import common`` and subclass
``common.CheckedMetric`` through the module attribute. They must not import the class name itself:
``evaluate.load`` picks the *first* ``evaluate.Metric`` subclass in the loaded module's namespace, which
would then be this base class instead of the real metric.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

import datasets
import evaluate

__all__ = [
    "CheckedMetric",
    "INSTALL_HINT",
    "import_sacrebleu",
    "reference_features",
    "reference_lists",
    "transpose_references",
]

INSTALL_HINT = "pip install 'wenlm[metrics]'"


def reference_features() -> list[datasets.Features]:
    """Accepted input layouts for text metrics: one reference string, or a list of references, per example.

    The single-string layout comes first on purpose: evaluate tries the layouts in order, and a plain
    string would also pass the string-list check (it iterates over the characters).
    """
    return [
        datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        datasets.Features(
            {
                "predictions": datasets.Value("string"),
                "references": datasets.Sequence(datasets.Value("string")),
            }
        ),
    ]


def reference_lists(references: Sequence[str | Sequence[str]], metric: str) -> list[list[str]]:
    """Turn ``references`` into one non-empty list of reference strings per example."""
    grouped: list[list[str]] = []
    for index, entry in enumerate(references):
        refs = [entry] if isinstance(entry, str) else list(entry)
        if not refs:
            raise ValueError(
                f"{metric}: references[{index}] is an empty list; give at least one reference string per "
                "prediction (use [''] for an example whose correct answer is empty)."
            )
        grouped.append(refs)
    return grouped


def transpose_references(grouped: list[list[str]]) -> list[list[str | None]]:
    """Per-example reference lists -> sacrebleu's reference streams, padded with ``None``.

    sacrebleu wants one stream per reference slot, each as long as the corpus; ``None`` marks a missing
    reference so that examples may have different numbers of references.
    """
    width = max(len(refs) for refs in grouped)
    return [[refs[slot] if slot < len(refs) else None for refs in grouped] for slot in range(width)]


def import_sacrebleu(metric: str) -> ModuleType:
    """Import sacrebleu, or explain how to install it.

    Imported inside the metrics rather than at the top of their files, because evaluate scans a module's
    top-level imports when loading it and would fail with its own, less helpful, install message.
    """
    try:
        import sacrebleu
    except ImportError as error:
        raise ImportError(
            f"The {metric} metric needs the 'sacrebleu' package, which is not installed. "
            f"Install it with: {INSTALL_HINT}"
        ) from error
    return sacrebleu


def _value_kind(value: Any) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, numbers.Integral):
        return "an integer"
    if isinstance(value, Iterable):
        return "a list"
    return f"a {type(value).__name__}"


def _check_one_kind(column: Sequence[Any], column_name: str, metric: str) -> None:
    # evaluate infers the column type from the first entry only and then casts the rest, so a list of
    # references after a plain-string one would silently become the string "['a', 'b']".
    first_kind = _value_kind(column[0])
    for index, value in enumerate(column):
        kind = _value_kind(value)
        if kind != first_kind:
            raise ValueError(
                f"{metric}: {column_name}[{index}] is {kind} but {column_name}[0] is {first_kind}; "
                f"give every entry of {column_name} in the same form (e.g. wrap every single reference "
                "string in a list when some examples have several)."
            )


class CheckedMetric(evaluate.Metric):
    """An ``evaluate.Metric`` that rejects empty, mismatched or mixed-form batches with a clear message.

    Without this, evaluate fails on an empty batch with an ``IndexError`` from deep inside its feature
    inference, and silently stringifies entries whose form differs from the first one.
    """

    def add_batch(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> None:
        """Add a batch of predictions and references, after checking that they pair up and are non-empty."""
        if predictions is None or references is None:
            raise ValueError(
                f"{self.name}: both predictions and references are required "
                f"(got predictions={'None' if predictions is None else 'a value'}, "
                f"references={'None' if references is None else 'a value'})."
            )
        for column_name, column in (("predictions", predictions), ("references", references)):
            if isinstance(column, str):
                raise ValueError(
                    f"{self.name}: {column_name} is a single string; pass a list with one entry per example "
                    f"(e.g. {column_name}=[{column[:20]!r}])."
                )
        try:
            prediction_count, reference_count = len(predictions), len(references)
        except TypeError:
            raise ValueError(
                f"{self.name}: predictions and references must be lists (one entry per example), got "
                f"{type(predictions).__name__} and {type(references).__name__}."
            ) from None
        if prediction_count != reference_count:
            raise ValueError(
                f"{self.name}: got {prediction_count} predictions but {reference_count} references; "
                "they must pair up one to one."
            )
        if prediction_count == 0:
            raise ValueError(f"{self.name}: got no examples; pass at least one prediction/reference pair.")
        _check_one_kind(predictions, "predictions", self.name)
        _check_one_kind(references, "references", self.name)
        super().add_batch(predictions=predictions, references=references, **kwargs)
