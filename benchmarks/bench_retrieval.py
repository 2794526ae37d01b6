"""Retrieval baselines on the built-in retrieval set, and retrieval-augmented QA.

Writes a `wenlm corpus --kind retrieval` set (``--num_docs`` stories, one question per story that only that story
answers, Chinese and English) and scores, with `wenlm evaluate --task retrieval --save_results false`:

- BM25 over jieba words and BM25 over CJK characters + character pairs (no model);
- dense retrieval with ``--model``'s mean-pooled hidden states (a pretrained model: "untrained" for retrieval);
- with ``--embedding_model``, dense retrieval with that (e.g. contrastively fine-tuned) model.

Columns: recall@1/5/10 and MRR (percentages) for Chinese and English questions separately. With ``--qa_model``
(a model fine-tuned on qa), a second table gives exact match and F1 of `wenlm evaluate --task qa` on the first
``--qa_samples`` questions, with each context source: the question's own story (oracle), the ``--top_k`` stories
of each retriever, or nothing; retrieved rows also give the share of questions whose story was in the context.

Prints both tables and writes them with the raw numbers to benchmarks/results/retrieval/ (``--output_dir``).

    python benchmarks/bench_retrieval.py --model /work/qs [--embedding_model DIR] [--qa_model DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import platform
import sys
import time
from pathlib import Path

from wenlm.training.commands import evaluate as evaluate_cli
from wenlm.training.corpus.tasks import write_jsonl
from wenlm.training.report import hardware_description
from wenlm.training.utils import markdown_table, write_atomically, write_json

RESULTS = Path(__file__).resolve().parent / "results" / "retrieval"
LANGUAGES = ("zh", "en")
SCORES = ("recall@1", "recall@5", "recall@10", "mrr")


def evaluate(argv: list[str]) -> tuple[dict, float]:
    """`wenlm evaluate` with argv (its JSON printout swallowed), and the seconds it took."""
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        metrics = evaluate_cli.main([*argv, "--save_results", "false"])
    return metrics, time.perf_counter() - started


def retrieval_methods(args) -> list[tuple[str, list[str]]]:
    """(row label, evaluate options) of each retrieval method benchmarked."""
    methods = [
        ("BM25, jieba words", ["--model", str(args.model), "--retriever", "bm25_jieba"]),
        ("BM25, character 1+2-grams", ["--model", str(args.model), "--retriever", "bm25_char_ngrams"]),
        (
            f"dense, untrained ({args.pooling} pooling)",
            ["--model", str(args.model), "--pooling", args.pooling],
        ),
    ]
    if args.embedding_model:
        methods.append(
            (
                f"dense, fine-tuned ({args.pooling} pooling)",
                ["--model", str(args.embedding_model), "--pooling", args.pooling],
            )
        )
    return methods


def retrieval_table(args, data: Path) -> tuple[str, list[dict]]:
    results = []
    for label, options in retrieval_methods(args):
        metrics, seconds = evaluate(["--task", "retrieval", "--validation_files", str(data), *options])
        results.append(
            {"method": label, "options": options, "metrics": metrics, "seconds": round(seconds, 1)}
        )
        print(
            f"{label}: recall@1 {metrics['recall@1']:.1f}, MRR {metrics['mrr']:.1f} ({seconds:.0f} s)",
            flush=True,
        )
    header = ["method", *(f"{score} {lang}" for lang in LANGUAGES for score in SCORES), "seconds"]
    rows = [
        [
            result["method"],
            *(result["metrics"][f"{score}_{lang}"] for lang in LANGUAGES for score in SCORES),
            result["seconds"],
        ]
        for result in results
    ]
    return markdown_table(header, rows, digits=3), results


def rag_sources(args) -> list[tuple[str, list[str]]]:
    """(row label, evaluate options) of each context source for the QA model."""
    retrieved = ["--context", "retrieved", "--top_k", str(args.top_k)]
    dense = ["--retriever", "dense", "--pooling", args.pooling]
    if args.embedding_model:
        dense += ["--embedding_model", str(args.embedding_model)]
    return [
        ("oracle (own story)", ["--context", "oracle"]),
        (f"dense top {args.top_k}", [*retrieved, *dense]),
        (f"BM25 jieba top {args.top_k}", [*retrieved, "--retriever", "bm25_jieba"]),
        (f"BM25 char n-grams top {args.top_k}", [*retrieved, "--retriever", "bm25_char_ngrams"]),
        ("none (question only)", ["--context", "none"]),
    ]


def rag_table(args, data: Path) -> tuple[str, list[dict]]:
    results = []
    base = [
        "--model",
        str(args.qa_model),
        "--task",
        "qa",
        "--validation_files",
        str(data),
        "--max_samples",
        str(args.qa_samples),
        "--max_new_tokens",
        "16",
    ]
    for label, options in rag_sources(args):
        metrics, seconds = evaluate([*base, *options])
        metrics.pop("examples", None)
        results.append(
            {"context": label, "options": options, "metrics": metrics, "seconds": round(seconds, 1)}
        )
        print(
            f"{label}: EM {metrics['exact_match']:.1f}, F1 {metrics['f1']:.1f} ({seconds:.0f} s)", flush=True
        )
    recall = f"retrieval_recall@{args.top_k}"
    rows = [
        [
            result["context"],
            result["metrics"]["exact_match"],
            result["metrics"]["f1"],
            result["metrics"].get(recall, ""),
        ]
        for result in results
    ]
    return markdown_table(["context", "exact match", "F1", f"story in context ({recall})"], rows, 3), results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, required=True, help="a pretrained model folder (dense, untrained)"
    )
    parser.add_argument("--embedding_model", type=Path, help="a contrastively fine-tuned model folder")
    parser.add_argument("--qa_model", type=Path, help="a model fine-tuned on qa: adds the RAG table")
    parser.add_argument("--num_docs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pooling", default="mean", choices=("mean", "last"))
    parser.add_argument("--top_k", type=int, default=3)
    parser.add_argument("--qa_samples", type=int, default=200, help="questions answered per context source")
    parser.add_argument("--work_dir", type=Path, default=Path("/tmp/wenlm_bench_retrieval"))
    parser.add_argument("--output_dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    data = args.work_dir / f"retrieval_{args.num_docs}_seed{args.seed}.jsonl"
    rows = write_jsonl("retrieval", args.num_docs, args.seed, data, overwrite=True)
    title = f"Retrieval, {args.num_docs} stories and {rows - args.num_docs} questions (seed {args.seed})"
    table, results = retrieval_table(args, data)
    report = f"## {title}\n\nrecall@k and MRR in percent; model {args.model}.\n\n{table}\n"
    record = {"retrieval": results}
    if args.qa_model:
        qa_table, record["rag"] = rag_table(args, data)
        report += (
            f"\n## Retrieval-augmented QA, {args.qa_model}, first {args.qa_samples} questions\n\n{qa_table}\n"
        )
    record.update(
        {
            "command": "python benchmarks/bench_retrieval.py "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": {**hardware_description(), "python": platform.python_version()},
            "num_docs": args.num_docs,
            "num_questions": rows - args.num_docs,
            "seed": args.seed,
        }
    )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    stem = f"retrieval_{args.num_docs}_seed{args.seed}"
    write_json(args.output_dir / f"{stem}.json", record)
    write_atomically(args.output_dir / f"{stem}.md", report)
    print(report)
    print(f"wrote {args.output_dir / stem}.md and .json")


if __name__ == "__main__":
    main()
