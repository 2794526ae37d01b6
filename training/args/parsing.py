"""The one way every `wenlm` command parses its options."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser

# ----------------------------------------------------------------------------------------------- parsing

OPTIONS_FILE_SUFFIXES = (".json", ".yaml", ".yml")


def options_file_to_argv(path: Path) -> list[str]:
    """A YAML/JSON mapping of option names to values, as command-line flags (JSON is a subset of YAML)."""
    if not path.is_file():
        raise FileNotFoundError(f"Options file {path} does not exist.")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML/JSON: {error}") from None
    if not isinstance(loaded, dict):
        raise ValueError(
            f"{path}: expected a mapping of option names to values, e.g. 'output_dir: my-model'."
        )
    argv: list[str] = []
    for name, value in loaded.items():
        values = value if isinstance(value, list) else [value]
        argv += [
            f"--{name}",
            *(str(item).lower() if isinstance(item, bool) else str(item) for item in values),
        ]
    return argv


def rename_deprecated(
    argv: Sequence[str], renamed: Mapping[str, str | tuple[str, str]], command: str
) -> list[str]:
    """Rewrite old flag spellings to the current ones, warning once per flag.

    `renamed` maps an old flag (`--data`) to its new name (`--validation_files`), or to a (new flag, value) pair
    for an old switch that now takes a value (`--no_save` -> (`--save`, `false`)).
    """
    result: list[str] = []
    for item in argv:
        flag, equals, value = item.partition("=")
        new = renamed.get(flag) if flag.startswith("-") else None
        if new is None:
            result.append(item)
            continue
        if isinstance(new, tuple):
            new_flag, new_value = new
            replacement = [new_flag, new_value]
            spelled = f"{new_flag} {new_value}"
        else:
            replacement = [new, value] if equals else [new]
            spelled = new
        warnings.warn(
            f"wenlm {command}: {flag} is deprecated and will be removed in the next release; use {spelled}.",
            FutureWarning,
            stacklevel=3,
        )
        result += replacement
    return result


def parse_options(
    dataclass_types: Sequence[type],
    argv: Sequence[str] | None,
    *,
    defaults: Mapping[str, Any] | None = None,
    renamed: Mapping[str, str | tuple[str, str]] | None = None,
    command: str = "",
    prog: str | None = None,
    description: str | None = None,
) -> tuple:
    """Parse `argv` (an options file may come first) into one instance of each dataclass."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith(OPTIONS_FILE_SUFFIXES) and not argv[0].startswith("-"):
        argv = options_file_to_argv(Path(argv[0])) + argv[1:]
    if renamed:
        argv = rename_deprecated(argv, renamed, command)
    parser = HfArgumentParser(
        dataclass_types, prog=prog or (f"wenlm {command}" if command else None), description=description
    )
    if defaults:
        parser.set_defaults(**defaults)
    return parser.parse_args_into_dataclasses(args=argv)
