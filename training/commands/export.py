"""`wenlm export --model M --to llama|gguf --output_dir OUT`: the command; one writer per format."""

from __future__ import annotations

from pathlib import Path

from wenlm.training.args import ExportArguments, parse_options
from wenlm.training.export.gguf_file import export_gguf
from wenlm.training.export.llama import export_llama


def _gguf(args: ExportArguments) -> Path:
    return export_gguf(args.model, args.output_dir, revision=args.revision, outtype=args.outtype or "f16")


def _llama(args: ExportArguments) -> Path:
    if args.outtype is not None:
        raise ValueError(
            f"--outtype {args.outtype} applies to --to gguf; the Llama folder keeps the model's own dtype."
        )
    return export_llama(args.model, args.output_dir, revision=args.revision)


ARGUMENTS = (ExportArguments,)


# --to -> the writer of that format (args.EXPORT_FORMATS lists the same names).
WRITERS = {"llama": _llama, "gguf": _gguf}


def main(argv: list[str] | None = None) -> Path:
    (args,) = parse_options(ARGUMENTS, argv, command="export")
    output_dir = WRITERS[args.to](args)
    print(f"wenlm export: wrote {output_dir} ({args.to})")
    return output_dir
