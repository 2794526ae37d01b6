"""`wenlm evaluate --task retrieval`: the question rows of a retrieval set searched against its story rows.

The files are `wenlm corpus --kind retrieval` sets, or any rows in that form: stories ``{"id", "kind": "story",
"text", "lang"}`` and questions ``{"id", "kind": "question", "text", "story_id", "lang"}`` whose ``story_id`` names
the one right story. Every question of every file is searched against every story of every file (the first
``--max_samples`` questions only, against all stories). The rank of the right story (ties counted against the
question) gives recall@1, recall@5, recall@10 and MRR (percentages, from the ``retrieval`` metric), overall and per
language (``recall@1_zh``, ...). ``--retriever`` picks the method: ``dense`` embeds with ``--embedding_model``
(default ``--model``) and ``--pooling``; the BM25 retrievers load no model, and ``--model`` only names the folder
whose eval_results.json receives the scores (entry ``retrieval_<method>``, so methods sit side by side).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter

from wenlm.training.args import EvaluateArguments, ModelSourceArguments
from wenlm.training.evaluation.metrics import compute_metric
from wenlm.training.retrieval.embed import load_encoder
from wenlm.training.retrieval.retrievers import Retriever, build_retriever

RETRIEVAL_KS = (1, 5, 10)
CORPUS_HINT = "as `wenlm corpus --kind retrieval` writes"


def checked_row(path: str, number: int, row: dict, fields: Sequence[str]) -> dict:
    """`row` with a ``where`` (file and line, for later messages), after checking it has `fields`: a non-empty
    string ``text``, and ``id``/``story_id`` as a string or a whole number."""
    where = f"{path} row/line {number}"
    for name in fields:
        value = row.get(name)
        usable = isinstance(value, str) and value.strip() if name == "text" else isinstance(value, (str, int))
        if not usable or isinstance(value, bool):
            kind = "a non-empty string" if name == "text" else "a string or number"
            raise ValueError(
                f"{where}: needs {kind} {name!r} ({row.get('kind', 'document')} rows {CORPUS_HINT})."
            )
    return {**row, "where": where}


def unique_ids(stories: list[dict]) -> list[dict]:
    seen: dict = {}
    for story in stories:
        if story["id"] in seen:
            raise ValueError(
                f"{story['where']}: story id {story['id']!r} is also the id of {seen[story['id']]}; "
                "give every story its own id."
            )
        seen[story["id"]] = story["where"]
    return stories


def story_and_question_rows(
    file_rows: list[tuple[str, int, dict]],
    option: str = "--validation_files",
    question_fields: Sequence[str] = ("text", "story_id"),
) -> tuple[list[dict], list[dict]]:
    """The story rows and the question rows of (file, line, row) triples; every file must hold one or the other."""
    stories, questions = [], []
    for path, rows in groupby(file_rows, key=itemgetter(0)):
        rows = list(rows)
        kinds = {row.get("kind") for _, _, row in rows}
        if not kinds & {"story", "question"}:
            raise ValueError(
                f"{option} {path}: no rows with 'kind' 'story' or 'question'; give a retrieval set "
                f"{CORPUS_HINT}."
            )
        stories += [
            checked_row(path, number, row, ("id", "text"))
            for _, number, row in rows
            if row.get("kind") == "story"
        ]
        questions += [
            checked_row(path, number, row, question_fields)
            for _, number, row in rows
            if row.get("kind") == "question"
        ]
    return unique_ids(stories), questions


def collection_rows(file_rows: list[tuple[str, int, dict]], option: str) -> list[dict]:
    """The documents of a collection file: its story rows when its rows have a 'kind', otherwise every row (each
    with an 'id' and a 'text')."""
    if any("kind" in row for _, _, row in file_rows):
        stories, _ = story_and_question_rows(file_rows, option)
        if not stories:
            raise ValueError(f"{option} {file_rows[0][0]}: no story rows ('kind': 'story') to retrieve from.")
        return stories
    return unique_ids([checked_row(path, number, row, ("id", "text")) for path, number, row in file_rows])


def gold_rows(questions: list[dict], stories: list[dict], stories_from: str) -> list[int]:
    """The row in `stories` of each question's ``story_id``."""
    row_of = {story["id"]: row for row, story in enumerate(stories)}
    for question in questions:
        if question["story_id"] not in row_of:
            raise ValueError(
                f"{question['where']}: story_id {question['story_id']!r} is not the id of any story "
                f"row of {stories_from}."
            )
    return [row_of[question["story_id"]] for question in questions]


def load_retriever(
    source: ModelSourceArguments, options: EvaluateArguments, documents: list[str], model=None, tokenizer=None
) -> Retriever:
    """The --retriever over `documents`. Dense embeds with --embedding_model, or else with `model` and `tokenizer`
    when given (already loaded) or with --model."""
    if options.retriever == "dense" and (model is None or options.embedding_model is not None):
        name, option = (
            options.embedding_model or source.model,
            "--embedding_model" if options.embedding_model else "--model",
        )
        revision = None if options.embedding_model else source.revision
        model, tokenizer = load_encoder(name, revision, option)
    return build_retriever(
        options.retriever, documents, model, tokenizer, options.pooling, options.per_device_eval_batch_size
    )


def evaluate_retrieval(
    source: ModelSourceArguments, options: EvaluateArguments, file_rows: list[tuple[str, int, dict]]
) -> tuple[dict, int]:
    """recall@1/5/10 and MRR (overall and per language) of --retriever on the retrieval set, and the number of
    questions scored."""
    stories, questions = story_and_question_rows(file_rows)
    files = " ".join(options.validation_files)
    if not stories or not questions:
        missing = "story" if not stories else "question"
        raise ValueError(
            f"--validation_files {files}: no {missing} rows ('kind': '{missing}'); --task retrieval "
            f"searches question rows against story rows {CORPUS_HINT}."
        )
    questions = questions[: options.max_samples]
    gold = gold_rows(questions, stories, f"--validation_files {files}")
    retriever = load_retriever(source, options, [story["text"] for story in stories])
    ranks = retriever.ranks([question["text"] for question in questions], gold)
    languages = [str(question.get("lang") or "") for question in questions]
    metrics = compute_metric("retrieval", ranks.tolist(), languages, ks=list(RETRIEVAL_KS))
    metrics.update(documents=len(stories), retriever=options.retriever)
    return metrics, len(questions)
