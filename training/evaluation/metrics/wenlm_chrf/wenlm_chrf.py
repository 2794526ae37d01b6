"""chrF / chrF++ through sacrebleu; character n-grams need no word segmentation, so Chinese works as is."""

from wenlm.training.evaluation.metrics import common

_DESCRIPTION = """\
Corpus-level chrF (character n-gram F-score) computed by sacrebleu's CHRF (install with:
pip install 'wenlm[metrics]'). With word_order=2 it is chrF++, which adds word n-grams; those are split on
whitespace, so for unsegmented Chinese keep the default word_order=0. The score is a percentage (0-100).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): one system output per segment.
    references (`list[str]` or `list[list[str]]`): the reference of each segment, or a non-empty list of
        references per segment.
    char_order (`int`, default 6): longest character n-gram.
    word_order (`int`, default 0): longest word n-gram; 2 gives chrF++.
    beta (`int`, default 2): weight of recall relative to precision.
    lowercase (`bool`, default False): compare case-insensitively.
    whitespace (`bool`, default False): keep whitespace inside character n-grams.
    eps_smoothing (`bool`, default False): the epsilon smoothing of chrF++.py / NLTK / Moses.
Returns:
    chrf (`float`): corpus chrF, 0-100.
    char_order, word_order, beta: the configuration used.
    signature (`str`): sacrebleu's signature of the configuration.
Examples:
    >>> chrf = evaluate.load("path/to/wenlm_chrf")
    >>> chrf.compute(predictions=["ab"], references=["ac"], char_order=1)["chrf"]
    50.0
"""


class WenlmChrf(common.CheckedMetric):
    DESCRIPTION, INPUTS_DESCRIPTION = _DESCRIPTION, _KWARGS_DESCRIPTION
    CITATION = common.bibtex("popovic-2015-chrf", "popovic-2017-chrf", "post-2018-call")
    CODEBASE_URLS = ("https://github.com/mjpost/sacrebleu",)
    REFERENCE_URLS = ("https://aclanthology.org/W15-3049/", "https://aclanthology.org/W17-4770/")

    def _compute(
        self,
        predictions: list[str],
        references: list,
        char_order: int = 6,
        word_order: int = 0,
        beta: int = 2,
        lowercase: bool = False,
        whitespace: bool = False,
        eps_smoothing: bool = False,
    ) -> dict:
        sacrebleu = common.import_sacrebleu(self.name)
        for parameter, value in (("char_order", char_order), ("word_order", word_order)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{self.name}: {parameter} must be a non-negative integer, got {value!r}.")
        if char_order + word_order == 0:
            raise ValueError(f"{self.name}: char_order and word_order cannot both be 0.")
        if not isinstance(beta, int) or beta < 1:
            raise ValueError(f"{self.name}: beta must be a positive integer, got {beta!r}.")
        grouped = common.reference_lists(references, self.name)
        scorer = sacrebleu.CHRF(
            char_order=char_order,
            word_order=word_order,
            beta=beta,
            lowercase=lowercase,
            whitespace=whitespace,
            eps_smoothing=eps_smoothing,
        )
        result, signature = common.corpus_score(scorer, predictions, grouped)
        return {
            "chrf": result.score,
            "char_order": char_order,
            "word_order": word_order,
            "beta": beta,
            "signature": signature,
        }
