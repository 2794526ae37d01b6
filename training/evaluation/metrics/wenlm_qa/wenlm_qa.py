"""Exact match and token F1 for extractive question answering, for Chinese and English answers."""

from collections import Counter

from wenlm.training.evaluation.metrics import common
from wenlm.training.utils.text import qa_tokens

_DESCRIPTION = """\
SQuAD-style exact match (EM) and token-overlap F1 for extractive QA, with tokenisation that works for
Chinese. Answers are normalised as in SQuAD (lower case, punctuation removed, the English articles
"a"/"an"/"the" removed, whitespace collapsed) plus Unicode NFKC folding and removal of Chinese
punctuation. Tokens are individual CJK characters and whitespace-separated Latin words, so "北京大学" has
four tokens and "GPT-4 模型" has three ("gpt4", "模", "型"). With several references per question, the
best EM and the best F1 over them count (each maximised separately, as in SQuAD). Both scores are
percentages (0-100) averaged over the examples.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): one predicted answer string per question.
    references (`list[str]` or `list[list[str]]`): the gold answer of each question, or a non-empty list
        of acceptable gold answers per question (use `[""]` for an unanswerable question).
Returns:
    exact_match (`float`): percentage of predictions whose normalised tokens equal those of a reference.
    f1 (`float`): mean over questions of the best token F1 against the references, as a percentage.
Examples:
    >>> qa = evaluate.load("path/to/wenlm_qa")
    >>> qa.compute(predictions=["北京大学"], references=[["北京的大学。", "北大"]])
    {'exact_match': 0.0, 'f1': 88.8888888888889}
"""


def token_f1(predicted: list[str], gold: list[str]) -> float:
    """SQuAD token F1 as a fraction; two empty answers agree perfectly (the no-answer convention)."""
    if not predicted or not gold:
        return float(predicted == gold)
    shared = sum((Counter(predicted) & Counter(gold)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(predicted)
    recall = shared / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_and_f1(predicted: list[str], gold: list[str]) -> tuple[float, float]:
    """(exact match, token F1) of one answer's tokens against one gold answer's, as fractions."""
    return float(predicted == gold), token_f1(predicted, gold)


class WenlmQa(common.CheckedMetric):
    DESCRIPTION, INPUTS_DESCRIPTION = _DESCRIPTION, _KWARGS_DESCRIPTION
    CITATION = common.bibtex("rajpurkar-etal-2016-squad", "cui-etal-2019-span")
    REFERENCE_URLS = ("https://rajpurkar.github.io/SQuAD-explorer/", "https://github.com/ymcui/cmrc2018")

    def _compute(self, predictions: list[str], references: list) -> dict[str, float]:
        grouped = common.reference_lists(references, self.name)
        # EM and F1 each take their own best reference, as in SQuAD.
        exact_match, f1 = common.mean_best_scores(predictions, grouped, qa_tokens, exact_and_f1)
        return {"exact_match": exact_match, "f1": f1}
