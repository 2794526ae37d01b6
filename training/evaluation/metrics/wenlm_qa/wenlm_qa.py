"""Exact match and token F1 for extractive question answering, for Chinese and English answers."""

from collections import Counter

import evaluate

from wenlm.training.evaluation.metrics import common
from wenlm.training.evaluation.metrics.text import qa_tokens

_CITATION = """\
@inproceedings{rajpurkar-etal-2016-squad,
    title = "{SQ}u{AD}: 100,000+ Questions for Machine Comprehension of Text",
    author = "Rajpurkar, Pranav and Zhang, Jian and Lopyrev, Konstantin and Liang, Percy",
    booktitle = "Proceedings of the 2016 Conference on Empirical Methods in Natural Language Processing",
    year = "2016",
    pages = "2383--2392",
}
@inproceedings{cui-etal-2019-span,
    title = "A Span-Extraction Dataset for {C}hinese Machine Reading Comprehension",
    author = "Cui, Yiming and Liu, Ting and Che, Wanxiang and Xiao, Li and Chen, Zhipeng and Ma, Wentao
              and Wang, Shijin and Hu, Guoping",
    booktitle = "Proceedings of EMNLP-IJCNLP 2019",
    year = "2019",
    pages = "5883--5889",
}
"""

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


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class WenlmQa(common.CheckedMetric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=common.reference_features(),
            reference_urls=[
                "https://rajpurkar.github.io/SQuAD-explorer/",
                "https://github.com/ymcui/cmrc2018",
            ],
        )

    def _compute(self, predictions: list[str], references: list) -> dict[str, float]:
        grouped = common.reference_lists(references, self.name)
        exact_total = 0.0
        f1_total = 0.0
        for prediction, golds in zip(predictions, grouped, strict=True):
            predicted_tokens = qa_tokens(prediction)
            gold_tokens = [qa_tokens(gold) for gold in golds]
            exact_total += max(float(predicted_tokens == tokens) for tokens in gold_tokens)
            f1_total += max(token_f1(predicted_tokens, tokens) for tokens in gold_tokens)
        count = len(grouped)
        return {"exact_match": 100.0 * exact_total / count, "f1": 100.0 * f1_total / count}
