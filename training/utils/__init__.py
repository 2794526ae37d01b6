"""Small helpers every command shares, each written once: atomic file writes, JSON that stays valid, markdown
tables, number formatting and the language-model metrics derived from a loss."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MISSING = "–"
# exp() of a loss above this overflows to inf in float64 long before it means anything.
_MAX_PERPLEXITY_LOSS = 50.0


def write_atomically(path: str | os.PathLike, content: str | bytes) -> Path:
    """Write through a temporary file in the same folder and rename it over `path`, so a killed process never
    leaves a half-written file where a complete one was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(content, bytes) else "w"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": ""})) as out:
            out.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def json_ready(value: Any) -> Any:
    """Plain JSON values; non-finite floats become None (JSON has no NaN) rather than invalid output."""
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return json_ready(value.item())
    return value


def write_json(path: str | os.PathLike, payload: Any, indent: int | None = 2) -> Path:
    """`payload` as UTF-8 JSON (Chinese kept readable), written atomically."""
    text = json.dumps(json_ready(payload), indent=indent, ensure_ascii=False, default=str) + "\n"
    return write_atomically(path, text)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def format_number(value: Any, digits: int = 4) -> str:
    """A number as a person reads it in a table: thousands separators for integers, `digits` significant digits
    for floats, MISSING for None or a non-finite value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.3e}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    """A GitHub-flavoured markdown table; cells that are not strings go through `format_number`, and a `|` inside
    a cell is escaped so it cannot split the row."""

    def cell(value: Any) -> str:
        text = value if isinstance(value, str) else format_number(value, digits)
        return (text or MISSING).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def perplexity(mean_loss_nats: float) -> float:
    return math.exp(min(mean_loss_nats, _MAX_PERPLEXITY_LOSS))


def bits_per_byte(loss_nats: float, bytes_per_token: float) -> float:
    """Mean loss per token (nats) → bits per UTF-8 byte of the predicted text: comparable across tokenizers.
    For a total over a text pass the total nats and bytes_per_token = total bytes (one "token")."""
    return loss_nats / bytes_per_token / math.log(2)
