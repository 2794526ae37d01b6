"""Corpus BLEU through sacrebleu, switching to sacrebleu's Chinese tokeniser for Chinese references."""

from wenlm.training.evaluation.metrics import common
from wenlm.training.utils.text import contains_cjk

_DESCRIPTION = """\
Corpus-level BLEU computed by sacrebleu (install with: pip install 'wenlm[metrics]'). Unless a
`tokenize` argument says otherwise, sacrebleu's "zh" tokeniser is used when any reference contains CJK
characters (BLEU over unsegmented Chinese would otherwise treat a whole sentence as one word) and the
standard "13a" tokeniser otherwise. The score is a percentage (0-100); the sacrebleu signature is returned
so the exact configuration can be reported.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): one detokenised system translation per segment.
    references (`list[str]` or `list[list[str]]`): the reference translation of each segment, or a
        non-empty list of references per segment (segments may have different numbers of references).
    tokenize (`str`, optional): a sacrebleu tokeniser name ("13a", "zh", "intl", "char", "none", ...).
        Default: "zh" if any reference contains CJK characters, else "13a".
    lowercase (`bool`, default False): compare case-insensitively.
    smooth_method (`str`, default "exp"): sacrebleu smoothing: "none", "floor", "add-k" or "exp".
    smooth_value (`float`, optional): parameter of the "floor" and "add-k" smoothing.
Returns:
    bleu (`float`): corpus BLEU, 0-100.
    precisions (`list[float]`): modified 1- to 4-gram precisions, 0-100.
    brevity_penalty (`float`), length_ratio (`float`), translation_length (`int`),
    reference_length (`int`): the usual BLEU statistics.
    tokenize (`str`): the tokeniser that was used.
    signature (`str`): sacrebleu's signature of the configuration.
Examples:
    >>> bleu = evaluate.load("path/to/wenlm_bleu")
    >>> bleu.compute(predictions=["猫坐在垫子上"], references=[["猫坐在垫子上"]])["bleu"]
    100.00000000000004
"""


class WenlmBleu(common.CheckedMetric):
    DESCRIPTION, INPUTS_DESCRIPTION = _DESCRIPTION, _KWARGS_DESCRIPTION
    CITATION = common.bibtex("papineni-etal-2002-bleu", "post-2018-call")
    CODEBASE_URLS = ("https://github.com/mjpost/sacrebleu",)
    REFERENCE_URLS = ("https://aclanthology.org/P02-1040/", "https://aclanthology.org/W18-6319/")

    def _compute(
        self,
        predictions: list[str],
        references: list,
        tokenize: str | None = None,
        lowercase: bool = False,
        smooth_method: str = "exp",
        smooth_value: float | None = None,
    ) -> dict:
        sacrebleu = common.import_sacrebleu(self.name)
        grouped = common.reference_lists(references, self.name)
        if tokenize is None:
            has_cjk = any(contains_cjk(reference) for refs in grouped for reference in refs)
            tokenize = "zh" if has_cjk else "13a"
        if smooth_method not in sacrebleu.BLEU.SMOOTH_DEFAULTS:
            raise ValueError(
                f"{self.name}: unknown smooth_method={smooth_method!r}; "
                f"choose one of {sorted(sacrebleu.BLEU.SMOOTH_DEFAULTS)}."
            )
        try:
            scorer = sacrebleu.BLEU(
                tokenize=tokenize, lowercase=lowercase, smooth_method=smooth_method, smooth_value=smooth_value
            )
        except KeyError:
            # sacrebleu reports an unknown tokeniser as a bare KeyError; its table of names is private,
            # so it is only listed when present.
            known = sorted(getattr(sacrebleu.metrics.bleu, "_TOKENIZERS", {}))
            raise ValueError(
                f"{self.name}: unknown tokenize={tokenize!r}"
                + (f"; choose one of {known}." if known else "; see sacrebleu's list of tokenisers.")
            ) from None
        result, signature = common.corpus_score(scorer, predictions, grouped)
        return {
            "bleu": result.score,
            "precisions": list(result.precisions),
            "brevity_penalty": result.bp,
            "length_ratio": result.ratio,
            "translation_length": result.sys_len,
            "reference_length": result.ref_len,
            "tokenize": tokenize,
            "signature": signature,
        }
