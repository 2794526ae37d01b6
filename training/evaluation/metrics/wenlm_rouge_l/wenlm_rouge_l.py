"""ROUGE-L (longest common subsequence) F-measure that counts Chinese characters as tokens.

Implemented here rather than through ``rouge_score`` on purpose: ``rouge_score``'s tokeniser keeps only
``[a-z0-9]`` and so deletes every Chinese character, scoring any Chinese summary 0. Re-tokenising before
calling it would also need a custom tokenizer object and a dependency for what is a short LCS computation.
On ASCII text the tokens, and therefore the scores, equal ``rouge_score``'s ``rougeL`` without stemming.
"""

from wenlm.training.evaluation.metrics import common
from wenlm.training.utils.text import lcs_length, rouge_tokens

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


class WenlmRougeL(common.CheckedMetric):
    DESCRIPTION, INPUTS_DESCRIPTION = _DESCRIPTION, _KWARGS_DESCRIPTION
    CITATION = common.bibtex("lin-2004-rouge")
    REFERENCE_URLS = ("https://aclanthology.org/W04-1013/",)

    def _compute(self, predictions: list[str], references: list) -> dict[str, float]:
        grouped = common.reference_lists(references, self.name)
        # The reference with the best F-measure counts, with its own precision and recall.
        precision, recall, f_measure = common.mean_best_scores(
            predictions, grouped, rouge_tokens, rouge_l_scores, pick_by=2
        )
        return {"rougeL": f_measure, "rougeL_precision": precision, "rougeL_recall": recall}
