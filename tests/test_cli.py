"""The `wenlm` dispatcher: every command lives in training/commands/<name>.py and answers --help, listing each
option with its default; docs/cli.md is that reference, current."""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

import pytest

from wenlm.training.cli import COMMANDS, command_module, main, reference, usage


def option_entries(help_text: str) -> dict[str, str]:
    """Each option of an argparse help text (its first flag) -> its help, white space folded."""
    entries: dict[str, str] = {}
    current = None
    for line in help_text.splitlines():
        match = re.match(r"^  (-[-\w]+)", line)
        if match:
            current = match.group(1)
            entries[current] = line
        elif current and line.startswith("   "):
            entries[current] += " " + line
        else:
            current = None
    return {flag: " ".join(text.split()) for flag, text in entries.items()}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_help_lists_each_option_with_its_default(command, capsys):
    assert main([command, "--help"]) == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith(f"usage: wenlm {command}"), help_text[:200]
    entries = {flag: text for flag, text in option_entries(help_text).items() if flag not in ("-h", "--help")}
    assert entries, help_text
    missing = [flag for flag, text in entries.items() if "(default:" not in text]
    assert not missing, f"options without a listed default: {missing}\n{help_text}"


def test_usage_names_every_command_and_unknown_commands_fail(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out == usage() + "\n" and all(f"  {name}" in out for name in COMMANDS)
    assert main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


ROOT = Path(__file__).resolve().parent.parent
COMMANDS_DIR = ROOT / "training" / "commands"


def test_every_command_lives_in_its_own_module_and_nothing_else_does():
    modules = {path.stem for path in COMMANDS_DIR.glob("*.py") if path.stem != "__init__"}
    assert modules == set(COMMANDS)
    for name in COMMANDS:
        module = importlib.import_module(command_module(name))
        assert callable(module.main) and module.ARGUMENTS, name
        assert all(dataclasses.is_dataclass(options) for options in module.ARGUMENTS), name


def test_the_cli_reference_in_docs_is_current():
    """docs/cli.md is generated (`make docs`); an option added, renamed or re-documented without regenerating it
    fails here."""
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == reference()


def test_the_reference_lists_an_option_with_its_command_default_and_help():
    page = reference()
    scaling = page[page.index("## wenlm scaling") : page.index("## wenlm push")]
    # DataArguments composed into the study: its default is the study's, not pretrain's.
    assert "| `--train_files` | str ... | builtin:16000:words=2 |" in scaling
    pretrain = page[page.index("## wenlm pretrain") : page.index("## wenlm corpus")]
    assert "| `--learning_rate` | float | 0.002 |" in pretrain
    # TrainingArguments' options that wenlm leaves alone are not repeated.
    assert "`--gradient_checkpointing`" not in pretrain and "Every other option of transformers'" in pretrain


def documented_command_lines() -> list[tuple[str, str, list[str]]]:
    """(file, command, flags) of every `wenlm COMMAND ...` line in README.md and docs/*.md code blocks."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        in_code = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("```"):
                in_code = not in_code
                continue
            match = re.match(r"\s*(?:\$ )?wenlm (\w+)\b(.*)", line) if in_code else None
            if match and match.group(1) in COMMANDS:
                flags = re.findall(r"(?<![\w-])--([a-z][\w-]*)", match.group(2))
                found.append((path.name, match.group(1), flags))
    return found


def test_every_flag_a_document_shows_is_an_option_of_its_command():
    known: dict[str, set[str]] = {}
    for name in COMMANDS:
        module = importlib.import_module(command_module(name))
        fields = [option for options in module.ARGUMENTS for option in dataclasses.fields(options)]
        aliases = {alias.lstrip("-") for option in fields for alias in option.metadata.get("aliases", [])}
        known[name] = {option.name for option in fields} | aliases | {"help"}
        known[name] |= {renamed.lstrip("-").replace("-", "_") for renamed in getattr(module, "RENAMED", {})}
    unknown = [
        f"{file}: wenlm {command} --{flag}"
        for file, command, flags in documented_command_lines()
        for flag in flags
        if flag.replace("-", "_") not in known[command]
    ]
    assert unknown == []
