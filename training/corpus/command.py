"""`wenlm corpus`: write the built-in corpus or one of its task sets as JSON lines."""

from __future__ import annotations

import argparse

from wenlm.training.corpus.grammar import TASK_KINDS, write_jsonl


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="wenlm corpus", description=__doc__)
    parser.add_argument("--kind", choices=TASK_KINDS, default="stories",
                        help="stories: pretraining documents; qa/translate/classify: fine-tuning task rows")
    parser.add_argument("--num_docs", type=int, default=1000, help="number of documents or rows")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same file (use another seed for validation)")
    parser.add_argument("--output", required=True, help="the JSONL file to write (never overwritten)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    args = parser.parse_args(argv)
    if args.num_docs < 1:
        raise ValueError(f"--num_docs must be at least 1, got {args.num_docs}.")
    written = write_jsonl(args.kind, args.num_docs, args.seed, args.output, overwrite=args.overwrite)
    print(f"wrote {written} {args.kind} rows to {args.output}")
