"""`wenlm embed`: one vector per text from a model's hidden states, to a parquet file; with
`--sentence_transformers true` the files that load the folder in sentence-transformers (see docs/retrieval.md)."""

from __future__ import annotations

from pathlib import Path

from wenlm.training.args import ModelSourceArguments, parse_options
from wenlm.training.args.retrieval import EmbedArguments
from wenlm.training.model_folder import check_model_folder
from wenlm.training.retrieval.embed import embed_file
from wenlm.training.retrieval.sentence_transformers_files import (
    sentence_transformers_files,
    write_sentence_transformers_config,
)

ARGUMENTS = (ModelSourceArguments, EmbedArguments)


def check_sentence_transformers_target(model: str, options: EmbedArguments) -> None:
    """Before any work: the files can go into `model` (a local folder whose own files they do not contradict)."""
    if check_model_folder(model) is None:
        raise ValueError(
            f"--sentence_transformers true writes files into a local model folder, and --model {model} is a Hub "
            "id: download it first (e.g. `hf download ID --local-dir DIR`) and give --model DIR."
        )
    sentence_transformers_files(model, options.pooling, options.normalize, options.max_length)


def main(argv: list[str] | None = None) -> Path | None:
    source, options = parse_options(ARGUMENTS, argv, command="embed")
    if options.sentence_transformers:
        check_sentence_transformers_target(source.model, options)
    path = embed_file(source, options) if options.input is not None else None
    if options.sentence_transformers:
        written = write_sentence_transformers_config(
            source.model, options.pooling, options.normalize, options.overwrite, options.max_length
        )
        print(
            f"wrote the sentence-transformers files {', '.join(p.name for p in written)} into {source.model}"
        )
    return path
