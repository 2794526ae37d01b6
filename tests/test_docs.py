"""The documentation keeps its promises: README.md stays a front page, every relative link resolves, and every
shell example in docs/ either runs as written or says why it is not run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
# Generated from the option dataclasses (`make docs`), not written by hand: links to it are checked only once it
# exists, and it holds no worked example.
CLI_REFERENCE = DOCS / "cli.md"
# Pages that are not a workflow's guide: the index and a page kept for old links.
NOT_GUIDES = {DOCS / "README.md", DOCS / "INTEROP.md", CLI_REFERENCE}
README_MAX_LINES = 200
SETUP_COMMANDS = ["make quickstart", "make test"]

RUN_MARKER = "<!-- docs-test: run -->"
NOT_RUN_MARKER = re.compile(r"^<!-- docs-test: not run: (?P<reason>\S.*?) -->$")
# A block that trains, fine-tunes and evaluates on tiny settings takes well under a minute; ten minutes means hung.
BLOCK_TIMEOUT_S = 600
SHOWN_OUTPUT_CHARS = 6000

FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>\S*)")
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target><[^>]+>|[^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`\n]*`")


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    marker: str | None  # the line before the fence, if it is a docs-test marker
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[tuple[int, str, str, list[str]]]:
    """(line of the opening fence, info string, line before the fence, body lines) for every fenced block."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start, body = index, []
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        previous = lines[start - 1].strip() if start else ""
        blocks.append((start + 1, opening.group("info"), previous, body))
        index += 1
    return blocks


def bash_blocks(path: Path) -> list[Block]:
    found = []
    for line, info, previous, body in fenced_blocks(path):
        if info != "bash":
            continue
        is_marker = previous == RUN_MARKER or NOT_RUN_MARKER.match(previous)
        found.append(Block(path, line, previous if is_marker else None, "\n".join(body) + "\n"))
    return found


def outside_fences(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    inside = False
    kept = []
    for line in lines:
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            kept.append(line)
    return kept


def prose(path: Path) -> str:
    """The file without fenced blocks and inline code, where text in brackets is not a link."""
    return "\n".join(INLINE_CODE.sub("", line) for line in outside_fences(path))


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the file's headings: lower case, punctuation dropped, spaces as hyphens, and
    -1, -2, ... after repeated headings."""
    seen: dict[str, int] = {}
    found = set()
    for line in outside_fences(path):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*$", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).replace("`", "").lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def guides_with_run_blocks() -> list[Path]:
    return [
        path for path in sorted(DOCS.glob("*.md")) if any(b.marker == RUN_MARKER for b in bash_blocks(path))
    ]


# ------------------------------------------------------------------------------------------------ README.md


def test_readme_is_a_front_page_of_at_most_200_lines():
    count = len(README.read_text(encoding="utf-8").splitlines())
    assert count <= README_MAX_LINES, (
        f"README.md has {count} lines; move detail into docs/ (limit {README_MAX_LINES})"
    )


def test_readme_setup_section_names_exactly_the_two_commands():
    text = README.read_text(encoding="utf-8")
    heading = re.search(r"^## Set-up.*$", text, flags=re.MULTILINE)
    assert heading, "README.md has no '## Set-up' section"
    section = text[heading.end() :]
    section = section[: section.find("\n## ")] if "\n## " in section else section
    block = re.search(r"```bash\n(?P<body>.*?)```", section, flags=re.DOTALL)
    assert block, "the set-up section has no bash block"
    commands = [line.split("#")[0].strip() for line in block.group("body").splitlines()]
    assert [command for command in commands if command] == SETUP_COMMANDS


def test_readme_command_table_lists_every_wenlm_command_with_its_guide():
    from wenlm.training.cli import COMMANDS

    rows = re.findall(
        r"^\| `wenlm (\w+)` \|.*\]\((docs/[^)#]+)", README.read_text(encoding="utf-8"), re.MULTILINE
    )
    assert sorted(name for name, _ in rows) == sorted(COMMANDS)
    missing = [f"{name} -> {guide}" for name, guide in rows if not (ROOT / guide).is_file()]
    assert not missing, missing


# -------------------------------------------------------------------------------------------------- links


@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_that_exists(path):
    broken = []
    for match in LINK.finditer(prose(path)):
        target = match.group("target").strip("<>")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # a web address
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if resolved == CLI_REFERENCE and not CLI_REFERENCE.exists():
            continue
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{path.relative_to(ROOT)} has broken links: {broken}"


# ------------------------------------------------------------------------------------------ guide commands


def test_every_bash_block_in_the_guides_says_whether_it_runs():
    unmarked = [
        block.where for path in sorted(DOCS.glob("*.md")) for block in bash_blocks(path) if not block.marker
    ]
    assert not unmarked, (
        f"bash blocks without '{RUN_MARKER}' or '<!-- docs-test: not run: REASON -->' on the line before the "
        f"fence: {unmarked}"
    )


def test_every_guide_has_a_worked_example_that_runs():
    # Also guards the parsing: were no run block found, the test below would pass by running nothing.
    guides = [path for path in sorted(DOCS.glob("*.md")) if path not in NOT_GUIDES]
    assert guides
    without = [path.name for path in guides if path not in guides_with_run_blocks()]
    assert not without, f"guides without a '{RUN_MARKER}' block: {without}"


def guide_environment(tmp_path: Path) -> dict[str, str]:
    """The user's environment, offline, with `wenlm` and `python` from the Python running the tests."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "wenlm").is_file():  # a Python without the console script: the same module behind it
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        shim = bin_dir / "wenlm"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m wenlm.training.cli "$@"\n', encoding="utf-8")
        shim.chmod(0o755)
        (bin_dir / "python").symlink_to(sys.executable)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        # Each guide's data cache starts empty, as on a fresh machine, and nothing lands in the user's cache.
        "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache"),
        "MPLBACKEND": "Agg",
        # The examples train tiny models, which a second thread does not speed up; on a busy 2-core machine the
        # threads of one process wait on each other and make each step several times slower. pytest-xdist workers
        # have already set their share (tests/conftest.py), which wins.
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }


def run_block(block: Block, workdir: Path, env: dict[str, str]) -> None:
    try:
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block.text],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as timeout:
        output = timeout.output or ""
        output = output.decode(errors="replace") if isinstance(output, bytes) else output
        pytest.fail(
            f"{block.where}: still running after {BLOCK_TIMEOUT_S} s\n{block.text}\n{output[-SHOWN_OUTPUT_CHARS:]}"
        )
    if result.returncode != 0:
        pytest.fail(
            f"{block.where} exited with status {result.returncode}\n--- block\n{block.text}--- output (tail)\n"
            f"{result.stdout[-SHOWN_OUTPUT_CHARS:]}"
        )


@pytest.mark.slow
@pytest.mark.parametrize("guide", guides_with_run_blocks(), ids=lambda path: path.name)
def test_the_guides_commands_run(guide, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = guide_environment(tmp_path)
    for block in bash_blocks(guide):
        if block.marker == RUN_MARKER:
            run_block(block, workdir, env)
