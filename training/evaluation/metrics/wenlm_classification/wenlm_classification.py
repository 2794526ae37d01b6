"""Accuracy, macro-F1 and per-class F1 for single-label classification with int or string labels."""

from collections import Counter

import datasets

from wenlm.training.evaluation.metrics import common

_DESCRIPTION = """\
Accuracy, macro-averaged F1 and the F1 of each class for single-label classification. Labels may be
integers or strings (both lists of the same kind). Per class c: precision = TP/(TP+FP), recall =
TP/(TP+FN), F1 = 2PR/(P+R), taken as 0 when undefined (no predictions or no examples of c), as
scikit-learn does with zero_division=0. Macro-F1 is the unweighted mean over the classes, by default every
label seen in references or predictions. All scores are percentages (0-100).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]` or `list[str]`): the predicted label of each example.
    references (`list[int]` or `list[str]`): the true label of each example.
    labels (`list`, optional): the classes to report and average over, e.g. to include a class that
        happens to be absent from this batch (its F1 is 0). Default: every label present in references
        or predictions, sorted.
Returns:
    accuracy (`float`): percentage of exact label matches.
    macro_f1 (`float`): mean per-class F1, 0-100.
    per_class_f1 (`dict`): label -> F1 (0-100).
Examples:
    >>> classification = evaluate.load("path/to/wenlm_classification")
    >>> classification.compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 66.66666666666667, 'macro_f1': 66.66666666666667, 'per_class_f1': {0: 66.66666666666667, 1: 66.66666666666667}}
"""


class WenlmClassification(common.CheckedMetric):
    DESCRIPTION, INPUTS_DESCRIPTION = _DESCRIPTION, _KWARGS_DESCRIPTION
    CITATION = common.bibtex("sokolova-lapalme-2009-systematic")
    REFERENCE_URLS = ("https://doi.org/10.1016/j.ipm.2009.03.002",)
    # String labels are tried first: an int fails the string check cleanly, whereas a string fed to an int64
    # column would only fail later, deep inside Arrow.
    FEATURES = [
        datasets.Features({"predictions": datasets.Value(kind), "references": datasets.Value(kind)})
        for kind in ("string", "int64")
    ]

    def _compute(self, predictions: list, references: list, labels: list | None = None) -> dict:
        if labels is None:
            classes = sorted(set(references) | set(predictions))
        else:
            classes = list(labels)
            if not classes:
                raise ValueError(
                    f"{self.name}: labels is empty; give the classes to average over or omit it."
                )
            if len(set(classes)) != len(classes):
                raise ValueError(f"{self.name}: labels contains duplicates: {classes!r}.")
        true_positives: Counter = Counter()
        predicted_counts: Counter = Counter(predictions)
        reference_counts: Counter = Counter(references)
        for predicted, true in zip(predictions, references, strict=True):
            if predicted == true:
                true_positives[true] += 1
        per_class_f1 = {}
        for label in classes:
            hits = true_positives[label]
            # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + actual): no separate P/R division needed,
            # and it is 0 exactly when precision or recall is 0 or undefined.
            denominator = predicted_counts[label] + reference_counts[label]
            per_class_f1[label] = 100.0 * 2 * hits / denominator if denominator else 0.0
        accuracy = 100.0 * sum(true_positives.values()) / len(references)
        return {
            "accuracy": accuracy,
            "macro_f1": sum(per_class_f1.values()) / len(classes),
            "per_class_f1": per_class_f1,
        }
