"""ROUGE-L (longest common subsequence) F-measure that counts Chinese characters as tokens.

Implemented here rather than through ``rouge_score`` on purpose: ``rouge_score``'s tokeniser keeps only
``[a-z0-9]`` and so deletes every Chinese character, scoring any Chinese summary 0. Re-tokenising before
calling it would also need a custom tokenizer object and a dependency for what is a short LCS computation.
On ASCII text the tokens, and therefore the scores, equal ``rouge_score``'s ``rougeL`` without stemming.
"""

import evaluate

from wenlm.training.evaluation.metrics import common
from wenlm.training.evaluation.metrics.text import lcs_length, rouge_tokens

_CITATION = """\
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew",
    booktitle = "Text Summarization Branches Out",
    year = "2004",
    address = "Barcelona, Spain",
    publisher = "Association for Computational Linguistics",
    pages = "74--81",
}
"""

_DESCRIPTION = """\
Sentence-level ROUGE-L: the longest common subsequence (LCS) of prediction and reference tokens gives
precision LCS/len(prediction), recall LCS/len(reference) and their harmonic mean (F-measure, beta=1).
Tokens are lower-cased runs of letters/digits plus single CJK characters, so Chinese summaries are scored
character by character (rouge_score would drop them). With several references the one with the best
F-measure counts. All three numbers are percentages (0-100) averaged over the examples. No stemming and no
summary-level (ROUGE-Lsum) splitting into sentences.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): one generated summary per example.
    references (`list[str]` or `list[list[str]]`): the reference summary of each example, or a non-empty
        list of references per example.
Returns:
    rougeL (`float`): mean ROUGE-L F-measure, 0-100.
    rougeL_precision (`float`), rougeL_recall (`float`): mean precision and recall of the reference chosen
        for each example, 0-100.
Examples:
    >>> rouge_l = evaluate.load("path/to/wenlm_rouge_l")
    >>> rouge_l.compute(predictions=["我喜欢苹果"], references=["我喜欢吃苹果"])["rougeL"]
    90.9090909090909
"""


def rouge_l_scores(predicted: list[str], reference: list[str]) -> tuple[float, float, float]:
    """(precision, recall, F-measure) as fractions; 0 when either side has no tokens."""
    common_length = lcs_length(predicted, reference)
    if common_length == 0:
        return 0.0, 0.0, 0.0
    precision = common_length / len(predicted)
    recall = common_length / len(reference)
    return precision, recall, 2 * precision * recall / (precision + recall)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class WenlmRougeL(common.CheckedMetric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=common.reference_features(),
            reference_urls=["https://aclanthology.org/W04-1013/"],
        )

    def _compute(self, predictions: list[str], references: list) -> dict[str, float]:
        grouped = common.reference_lists(references, self.name)
        precision_total = recall_total = f_total = 0.0
        for prediction, refs in zip(predictions, grouped, strict=True):
            predicted_tokens = rouge_tokens(prediction)
            precision, recall, f_measure = max(
                (rouge_l_scores(predicted_tokens, rouge_tokens(reference)) for reference in refs),
                key=lambda scores: scores[2],
            )
            precision_total += precision
            recall_total += recall
            f_total += f_measure
        count = len(grouped)
        return {
            "rougeL": 100.0 * f_total / count,
            "rougeL_precision": 100.0 * precision_total / count,
            "rougeL_recall": 100.0 * recall_total / count,
        }
