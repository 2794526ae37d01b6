"""The `wenlm` dispatcher: every command answers --help, listing each option with its default."""

from __future__ import annotations

import re

import pytest

from wenlm.training.cli import COMMANDS, main, usage


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
