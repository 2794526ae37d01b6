"""`wenlm generate`: continue prompts (or answer them as chat turns, with `--chat true`) through
`pipeline("text-generation")` (see docs/finetune-evaluate.md)."""

from __future__ import annotations

import json
import sys
import typing
import warnings
from dataclasses import fields
from pathlib import Path

from wenlm.training.args import (
    OPTIONS_FILE_SUFFIXES,
    GenerateArguments,
    ModelSourceArguments,
    SamplingArguments,
    parse_options,
)
from wenlm.training.args.evaluation import SAMPLING_RENAMED
from wenlm.training.evaluation.generate import generate

ARGUMENTS = (ModelSourceArguments, GenerateArguments, SamplingArguments)


# The words HfArgumentParser reads as a boolean after a flag such as --json.
BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "t", "f", "y", "n", "1", "0"})


def read_prompts(options: GenerateArguments) -> list[str]:
    prompts = list(options.prompts)
    if options.prompts_file:
        path = Path(options.prompts_file)
        if not path.is_file():
            raise FileNotFoundError(f"--prompts_file {path}: no such file.")
        prompts += [
            line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
    if not prompts:
        raise ValueError(
            "No prompts: give them with --prompts P1 P2 ... or with --prompts_file (one per line)."
        )
    return prompts


def flag_values(dataclass_types: typing.Iterable[type]) -> dict[str, str]:
    """Every flag spelling of the options -> what follows it: 'switch' (an optional boolean), 'list' or 'one'."""
    kinds: dict[str, str] = {}
    for dataclass_type in dataclass_types:
        hints = typing.get_type_hints(dataclass_type)
        for option in fields(dataclass_type):
            hint = hints[option.name]
            kind = "switch" if hint is bool else "list" if typing.get_origin(hint) is list else "one"
            kinds[f"--{option.name}"] = kinds[f"--{option.name.replace('_', '-')}"] = kind
    return kinds


def split_positional_prompts(argv: list[str]) -> tuple[list[str], list[str]]:
    """(options, prompts): the old positional prompts (`wenlm generate --model M "prompt"`) apart from the options.

    A bare boolean flag keeps the next word only when it reads as a boolean, so that in the old
    `--json "Once upon a time"` the text stays a prompt.
    """
    kinds = flag_values(ARGUMENTS)
    options: list[str] = []
    prompts: list[str] = []
    expecting: str | None = None  # what the last flag still takes
    for index, item in enumerate(argv):
        if index == 0 and item.endswith(OPTIONS_FILE_SUFFIXES) and not item.startswith("-"):
            options.append(item)  # an options file, read by parse_options
        elif item.startswith("-"):
            options.append(item)
            expecting = None if "=" in item else kinds.get(item)
        elif expecting in ("one", "list") or (expecting == "switch" and item.lower() in BOOLEAN_WORDS):
            options.append(item)
            expecting = "list" if expecting == "list" else None
        else:
            prompts.append(item)
            expecting = None
    return options, prompts


def parse_args(argv: list[str] | None) -> tuple[ModelSourceArguments, GenerateArguments, SamplingArguments]:
    options, prompts = split_positional_prompts(list(sys.argv[1:] if argv is None else argv))
    if prompts:
        warnings.warn(
            "wenlm generate: positional prompts are deprecated and will be removed in the next release; "
            "use --prompts P1 P2 ...",
            FutureWarning,
            stacklevel=3,
        )
    source, generate_options, sampling = parse_options(
        ARGUMENTS, options, renamed=SAMPLING_RENAMED, command="generate"
    )
    generate_options.prompts = [*generate_options.prompts, *prompts]
    return source, generate_options, sampling


def main(argv: list[str] | None = None) -> list[str]:
    source, options, sampling = parse_args(argv)
    prompts = read_prompts(options)
    texts = generate(source, sampling, prompts, chat=options.chat)
    for prompt, text in zip(prompts, texts, strict=True):
        if options.json:
            print(json.dumps({"prompt": prompt, "generated_text": text}, ensure_ascii=False))
        else:
            print(text if not options.chat else f"{prompt}\n→ {text}")
            print()
    return texts


if __name__ == "__main__":
    main()
