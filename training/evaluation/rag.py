"""Retrieval-augmented QA prompts for `wenlm evaluate --task qa --context oracle|retrieved|none`.

The questions are the question rows ``{"kind": "question", "text", "answer", "story_id"}`` of --validation_files
(a `wenlm corpus --kind retrieval` set). Each prompt has the form the QA model was fine-tuned on, context + "\\n" +
question (rendered as a chat turn or plain text exactly like any qa prompt), where the context is

- ``oracle``: the question's own story;
- ``retrieved``: the --top_k stories --retriever ranks highest for the question, best first, joined by a blank
  line; the share of questions whose own story is among them is reported as ``retrieval_recall@K``;
- ``none``: nothing (the prompt is the question alone): what the model answers without reading.

The stories come from --retrieve_from (its story rows, or every row of a file without 'kind' rows, each with an
'id' and a 'text') or else from the story rows of --validation_files. Generation and scoring (exact match, F1) are
those of every qa run; the entry is named after the context source (qa_oracle, qa_retrieved_bm25_jieba_top3,
qa_none).
"""

from __future__ import annotations

from wenlm.training.args import EvaluateArguments, ModelSourceArguments
from wenlm.training.evaluation.retrieval_task import (
    collection_rows,
    gold_rows,
    load_retriever,
    story_and_question_rows,
)

CONTEXT_SEPARATOR = "\n\n"  # between retrieved stories: a blank line, as between documents of a text file


def qa_prompt(context: str, question: str) -> str:
    """The prompt of a qa row: its context, a newline and the question (the question alone without context)."""
    return f"{context}\n{question}" if context else question


def retrieved_contexts(
    source: ModelSourceArguments,
    options: EvaluateArguments,
    questions: list[dict],
    stories: list[dict],
    gold: list[int],
    model,
    tokenizer,
) -> tuple[list[str], float]:
    """Each question's --top_k stories joined best first, and the percentage of questions whose own story is
    among them."""
    retriever = load_retriever(source, options, [story["text"] for story in stories], model, tokenizer)
    hits = retriever.search([question["text"] for question in questions], options.top_k)
    contexts = [CONTEXT_SEPARATOR.join(stories[row]["text"] for row in rows) for rows in hits]
    recall = 100.0 * sum(right in rows for right, rows in zip(gold, hits, strict=True)) / len(questions)
    return contexts, recall


def rag_prompts(
    source: ModelSourceArguments,
    options: EvaluateArguments,
    file_rows: list[tuple[str, int, dict]],
    collection: list[tuple[str, int, dict]] | None,
    model,
    tokenizer,
) -> tuple[list[str], list[str], dict]:
    """The prompts and reference answers of the question rows in `file_rows` (the first --max_samples), with
    --context stories from `collection` (the rows of --retrieve_from; None: the story rows of `file_rows`), and
    the metrics the retrieval adds (``retrieval_recall@K`` for --context retrieved)."""
    stories, questions = story_and_question_rows(file_rows, question_fields=("text", "story_id", "answer"))
    if not questions:
        raise ValueError(
            f"--validation_files {' '.join(options.validation_files)}: no question rows ('kind': "
            "'question', with 'text', 'answer' and 'story_id') for --context; give a retrieval set as "
            "`wenlm corpus --kind retrieval` writes."
        )
    questions = questions[: options.max_samples]
    references = [str(question["answer"]) for question in questions]
    metrics: dict = {"context": options.context}
    if options.context == "none":
        return [qa_prompt("", question["text"]) for question in questions], references, metrics
    if collection is not None:
        stories, stories_from = (
            collection_rows(collection, "--retrieve_from"),
            f"--retrieve_from {options.retrieve_from}",
        )
    else:
        stories_from = f"--validation_files {' '.join(options.validation_files)} (or give --retrieve_from)"
    gold = gold_rows(questions, stories, stories_from)
    if options.context == "oracle":
        contexts = [stories[row]["text"] for row in gold]
    else:
        contexts, recall = retrieved_contexts(source, options, questions, stories, gold, model, tokenizer)
        metrics.update({f"retrieval_recall@{options.top_k}": recall, "retriever": options.retriever})
    prompts = [
        qa_prompt(context, question["text"]) for context, question in zip(contexts, questions, strict=True)
    ]
    return prompts, references, metrics
