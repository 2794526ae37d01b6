"""`wenlm corpus`: write the built-in corpus or one of its task sets as JSON lines."""

from __future__ import annotations

from wenlm.training.args import CorpusArguments, parse_options
from wenlm.training.corpus.tasks import write_jsonl

ARGUMENTS = (CorpusArguments,)


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_options(ARGUMENTS, argv, command="corpus")
    written = write_jsonl(args.kind, args.num_docs, args.seed, args.output, overwrite=args.overwrite)
    print(f"wrote {written} {args.kind} rows to {args.output}")
    return written
