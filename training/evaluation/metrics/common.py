"""Pieces shared by the wenlm metric modules: input checks, metadata, reference handling, scoring glue.

The metric modules import this file as ``from wenlm.training.evaluation.metrics import common`` and subclass
``common.CheckedMetric`` through the module attribute. They must not import the class name itself:
``evaluate.load`` picks the *first* ``evaluate.Metric`` subclass in the loaded module's namespace, which
would then be this base class instead of the real metric.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from types import ModuleType
from typing import Any

import datasets
import evaluate

__all__ = [
    "CheckedMetric",
    "INSTALL_HINT",
    "bibtex",
    "corpus_score",
    "import_sacrebleu",
    "mean_best_scores",
    "reference_features",
    "reference_lists",
    "transpose_references",
]

INSTALL_HINT = "pip install 'wenlm[metrics]'"

# The works the metrics cite, as BibTeX: key -> (entry type, title, author, booktitle or journal, year, pages,
# then any further (field, value) pairs).
_PUBLICATIONS: dict[str, tuple] = {
    "papineni-etal-2002-bleu": (
        "inproceedings",
        "{B}leu: a Method for Automatic Evaluation of Machine Translation",
        "Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing",
        "Proceedings of the 40th Annual Meeting of the Association for Computational Linguistics",
        "2002",
        "311--318",
    ),
    "post-2018-call": (
        "inproceedings",
        "A Call for Clarity in Reporting {BLEU} Scores",
        "Post, Matt",
        "Proceedings of the Third Conference on Machine Translation: Research Papers",
        "2018",
        "186--191",
    ),
    "popovic-2015-chrf": (
        "inproceedings",
        "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
        "Popovi{\\'c}, Maja",
        "Proceedings of the Tenth Workshop on Statistical Machine Translation",
        "2015",
        "392--395",
    ),
    "popovic-2017-chrf": (
        "inproceedings",
        "chr{F}++: words helping character n-grams",
        "Popovi{\\'c}, Maja",
        "Proceedings of the Second Conference on Machine Translation",
        "2017",
        "612--618",
    ),
    "rajpurkar-etal-2016-squad": (
        "inproceedings",
        "{SQ}u{AD}: 100,000+ Questions for Machine Comprehension of Text",
        "Rajpurkar, Pranav and Zhang, Jian and Lopyrev, Konstantin and Liang, Percy",
        "Proceedings of the 2016 Conference on Empirical Methods in Natural Language Processing",
        "2016",
        "2383--2392",
    ),
    "cui-etal-2019-span": (
        "inproceedings",
        "A Span-Extraction Dataset for {C}hinese Machine Reading Comprehension",
        "Cui, Yiming and Liu, Ting and Che, Wanxiang and Xiao, Li and Chen, Zhipeng and Ma, Wentao and Wang, Shijin "
        "and Hu, Guoping",
        "Proceedings of EMNLP-IJCNLP 2019",
        "2019",
        "5883--5889",
    ),
    "lin-2004-rouge": (
        "inproceedings",
        "{ROUGE}: A Package for Automatic Evaluation of Summaries",
        "Lin, Chin-Yew",
        "Text Summarization Branches Out",
        "2004",
        "74--81",
        ("address", "Barcelona, Spain"),
        ("publisher", "Association for Computational Linguistics"),
    ),
    "sokolova-lapalme-2009-systematic": (
        "article",
        "A systematic analysis of performance measures for classification tasks",
        "Sokolova, Marina and Lapalme, Guy",
        "Information Processing & Management",
        "2009",
        "427--437",
        ("volume", "45"),
        ("number", "4"),
    ),
}


def bibtex(*keys: str) -> str:
    """The BibTeX entries of the cited works ``keys`` (keys of the table above), for ``MetricInfo.citation``."""
    entries = []
    for key in keys:
        kind, title, author, venue, year, pages, *extra = _PUBLICATIONS[key]
        venue_field = "journal" if kind == "article" else "booktitle"
        fields = [
            ("title", title),
            ("author", author),
            (venue_field, venue),
            ("year", year),
            ("pages", pages),
        ]
        body = "".join(f'    {name} = "{value}",\n' for name, value in [*fields, *extra])
        entries.append(f"@{kind}{{{key},\n{body}}}\n")
    return "".join(entries)


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


def mean_best_scores(
    predictions: Sequence[str],
    grouped: list[list[str]],
    tokenize: Callable[[str], list[str]],
    score: Callable[[list[str], list[str]], tuple[float, ...]],
    pick_by: int | None = None,
) -> list[float]:
    """Each component of ``score(prediction tokens, reference tokens)``, best over an example's references,
    as a percentage averaged over the examples.

    ``pick_by``: the index of the component that chooses one reference per example (the others are that
    reference's); ``None`` takes each component's own best, possibly from different references.
    """
    bests: list[Sequence[float]] = []
    for prediction, references in zip(predictions, grouped, strict=True):
        predicted = tokenize(prediction)
        candidates = [score(predicted, tokenize(reference)) for reference in references]
        if pick_by is None:
            bests.append([max(values) for values in zip(*candidates, strict=True)])
        else:
            bests.append(max(candidates, key=itemgetter(pick_by)))
    return [100.0 * sum(column) / len(bests) for column in zip(*bests, strict=True)]


def corpus_score(scorer: Any, predictions: Sequence[str], grouped: list[list[str]]) -> tuple[Any, str]:
    """A sacrebleu scorer's corpus score for per-example reference lists, and its configuration signature."""
    return scorer.corpus_score(predictions, transpose_references(grouped)), scorer.get_signature().format()


def import_sacrebleu(metric: str) -> ModuleType:
    """Import sacrebleu, or explain how to install it.

    Imported inside the metrics rather than at the top of their files, because evaluate scans a module's
    top-level imports when loading it and would fail with its own, less helpful, install message.
    """
    try:
        import sacrebleu  # optional dependency (wenlm[metrics]); only bleu and chrf need it
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

    It also builds ``_info`` and the class docstring from the class attributes below, which a metric sets.
    """

    DESCRIPTION: str = ""
    INPUTS_DESCRIPTION: str = ""
    CITATION: str = ""
    # None: one prediction string per example against one reference string or a list of them.
    FEATURES: list[datasets.Features] | None = None
    CODEBASE_URLS: tuple[str, ...] = ()
    REFERENCE_URLS: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # What evaluate's add_start_docstrings decorator does in its own metrics.
        cls.__doc__ = f"{cls.DESCRIPTION}{cls.INPUTS_DESCRIPTION}\n\n{cls.__doc__ or ''}"

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self.DESCRIPTION,
            citation=self.CITATION,
            inputs_description=self.INPUTS_DESCRIPTION,
            features=self.FEATURES if self.FEATURES is not None else reference_features(),
            codebase_urls=list(self.CODEBASE_URLS),
            reference_urls=list(self.REFERENCE_URLS),
        )

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
