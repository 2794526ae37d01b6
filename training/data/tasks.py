"""Fine-tuning data: reading task rows with per-row problem reports, rendering chat rows with the chat template
and masking everything but the assistant's tokens, classification rows, and a padding collator.

Rows come from JSON Lines (line numbers are the file's 1-based lines) or any other file `datasets` loads
(.json arrays, .csv, .parquet, ...; numbers are then 1-based row numbers). Every problem found in a row is
collected as a :class:`BadRow`; :func:`raise_or_count_bad_rows` stops the run before training unless the user
chose to skip them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers.utils.chat_template_utils import render_jinja_template

from wenlm.training.data.packing import special_strings_pattern
from wenlm.training.data.reading import (
    COMPRESSIONS,
    check_decompresses,
    first_json_character,
    iter_json_lines,
    one_line,
    split_compression,
)

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
CHAT_ROLES = ("system", "user", "assistant")
MAX_LISTED_BAD_ROWS = 20
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
DATASETS_BUILDERS = {".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".arrow": "arrow"}


@dataclass(frozen=True)
class BadRow:
    number: int  # 1-based line (JSON Lines) or row (other formats)
    problem: str
    unit: str = "line"

    def __str__(self) -> str:
        return f"{self.unit} {self.number}: {self.problem}"


@dataclass
class RowSet:
    """The usable rows of one file, in file order, with the number each had in the file."""

    path: str
    rows: list[dict] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    unit: str = "line"
    rows_in_file: int = 0  # non-blank rows, usable or not

    def add_bad(self, number: int, problem: str) -> None:
        self.bad_rows.append(BadRow(number, problem, self.unit))


def read_rows(path: str | Path) -> RowSet:
    """Every row of a JSON Lines file (invalid JSON lines become bad rows) or of a `datasets`-loadable file; any of
    them may be compressed (.gz .bz2 .xz .zst), and a file that does not decompress is named."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Data file {path} does not exist.")
    suffix = split_compression(path)[0]
    if suffix in JSON_LINES_SUFFIXES or (suffix == ".json" and _looks_like_json_lines(path)):
        return _read_json_lines(path)
    if suffix not in DATASETS_BUILDERS:
        raise ValueError(
            f"{path}: unsupported file type {suffix!r}. Use JSON Lines (.jsonl) or one of "
            f"{', '.join(sorted(DATASETS_BUILDERS))}, the text formats optionally compressed "
            f"({', '.join(COMPRESSIONS)})."
        )
    check_decompresses(path)  # datasets would report a damaged archive in words that do not name the file
    kwargs = {"delimiter": "\t"} if suffix == ".tsv" else {}
    try:
        loaded = datasets.load_dataset(
            DATASETS_BUILDERS[suffix], data_files=str(path), split="train", **kwargs
        )
    # datasets wraps parser errors in several types; all mean "cannot read this file"
    except Exception as error:
        raise ValueError(
            f"{path}: `datasets` could not read it as {DATASETS_BUILDERS[suffix]}: {one_line(error)}"
        ) from error
    row_set = RowSet(str(path), unit="row")
    for index, row in enumerate(loaded):
        row_set.rows.append(dict(row))
        row_set.numbers.append(index + 1)
    row_set.rows_in_file = len(loaded)
    return row_set


def _looks_like_json_lines(path: Path) -> bool:
    return first_json_character(path) != "["


def _read_json_lines(path: Path) -> RowSet:
    row_set = RowSet(str(path), unit="line")
    for number, row, problem in iter_json_lines(path):
        row_set.rows_in_file += 1
        if problem is not None:
            row_set.add_bad(number, problem)
            continue
        row_set.rows.append(row)
        row_set.numbers.append(number)
    return row_set


# ----------------------------------------------------------------------------------------------------------
# Chat / instruction rows


def row_messages(row: dict) -> list[dict]:
    """The chat messages of an SFT row; raises ValueError naming the problem.

    Accepted: ``{"messages": [{"role", "content"}, ...]}`` ending with an assistant message, or
    ``{"prompt", "response"}`` (optionally with ``"system"``).
    """
    if "messages" in row and row["messages"] is not None:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError("'messages' must be a non-empty list of {'role', 'content'} objects")
        for position, message in enumerate(messages, start=1):
            if not isinstance(message, dict):
                raise ValueError(f"message {position} is not an object")
            role, content = message.get("role"), message.get("content")
            if role not in CHAT_ROLES:
                raise ValueError(f"message {position} has role {role!r}; roles are {', '.join(CHAT_ROLES)}")
            if role == "system" and position != 1:
                raise ValueError(f"message {position} is a system message; only the first message may be one")
            if not isinstance(content, str):
                raise ValueError(
                    f"message {position} ({role}) has non-string content ({type(content).__name__})"
                )
            if role == "assistant" and not content.strip():
                raise ValueError(f"message {position} is an empty assistant response")
        if messages[-1]["role"] != "assistant":
            raise ValueError(f"the last message must be the assistant's, got {messages[-1]['role']!r}")
        return [{"role": message["role"], "content": message["content"]} for message in messages]
    missing = [name for name in ("prompt", "response") if row.get(name) is None]
    if missing:
        raise ValueError(
            f"missing field(s) {', '.join(map(repr, missing))} (rows need 'prompt' and 'response', "
            "or 'messages')"
        )
    for name in ("prompt", "response", "system"):
        if name in row and row[name] is not None and not isinstance(row[name], str):
            raise ValueError(f"'{name}' must be a string, got {type(row[name]).__name__}")
    if not row["response"].strip():
        raise ValueError("empty response")
    messages = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    return messages + [
        {"role": "user", "content": row["prompt"]},
        {"role": "assistant", "content": row["response"]},
    ]


def render_chat(tokenizer, messages: list[dict], block_size: int) -> dict:
    """Token ids of a conversation rendered with the chat template, and labels that keep only the assistant
    tokens (their content and the closing <|end|>); everything else is IGNORE_INDEX.

    A special-token string inside a message (a row that says ``<|end|>`` or ``<|assistant|>``) stays text: only
    the template writes control tokens, so no row can forge a turn. ``special_token_strings`` says whether the
    row held one. Longer conversations keep their first `block_size` tokens; ``truncated`` says whether that
    happened.
    """
    pattern = special_strings_pattern(tokenizer)
    holds_special = pattern is not None and any(pattern.search(message["content"]) for message in messages)
    if holds_special:
        input_ids, mask = chat_ids_with_text_contents(tokenizer, messages, pattern)
    else:  # the common case: the tokenizer's own rendering, which cannot differ from the assembled one
        encoded = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        input_ids, mask = list(encoded["input_ids"]), list(encoded["assistant_masks"])
    if not any(mask):
        raise ValueError(
            "the chat template marks no assistant tokens: it needs {% generation %} around the assistant content "
            "(wenlm tokenizers have it; other tokenizers may not)"
        )
    truncated = len(input_ids) > block_size
    input_ids, mask = input_ids[:block_size], mask[:block_size]
    labels = [token if keep else IGNORE_INDEX for token, keep in zip(input_ids, mask)]
    return {
        "input_ids": input_ids,
        "attention_mask": [1] * len(input_ids),
        "labels": labels,
        "truncated": truncated,
        "special_token_strings": holds_special,
    }


def _unused_markers(messages: list[dict]) -> tuple[str, str]:
    """Two noncharacters that occur in no message, to wrap the special strings of the contents with."""
    text = "".join(message["content"] for message in messages)
    free = [chr(code) for code in range(0xFDD0, 0xFDF0) if chr(code) not in text]
    if len(free) < 2:
        raise ValueError("a message holds every character U+FDD0..U+FDEF; remove them (they are not text)")
    return free[0], free[1]


def chat_ids_with_text_contents(
    tokenizer, messages: list[dict], pattern: re.Pattern
) -> tuple[list[int], list[int]]:
    """(input ids, assistant mask) of a conversation whose message contents are encoded as text throughout.

    The contents' special strings are wrapped in markers before rendering, so that afterwards the template's own
    control tokens (unmarked) can be told from the contents' (marked). The text between two control tokens is
    encoded with special tokens read as text, which is how the tokenizer splits a rendered chat anyway; a token
    is an assistant token when its characters overlap a {% generation %} span.
    """
    start, end = _unused_markers(messages)
    marked = [
        {**message, "content": pattern.sub(lambda found: f"{start}{found.group(0)}{end}", message["content"])}
        for message in messages
    ]
    rendered, spans = render_jinja_template(
        conversations=[marked],
        chat_template=tokenizer.get_chat_template(),
        return_assistant_tokens_mask=True,
        **tokenizer.special_tokens_map,
    )
    rendered, spans = rendered[0], spans[0]
    pieces = re.compile(f"{re.escape(start)}(.*?){re.escape(end)}|({pattern.pattern})", re.DOTALL)
    input_ids: list[int] = []
    positions: list[list[int]] = []  # per token: the rendered characters it came from
    run, run_positions = [], []  # text since the last control token, and where each character was rendered

    def flush() -> None:
        if not run:
            return
        encoded = tokenizer(
            "".join(run), add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True
        )
        for token, (first, last) in zip(encoded["input_ids"], encoded["offset_mapping"]):
            input_ids.append(token)
            positions.append(run_positions[first:last])
        run.clear()
        run_positions.clear()

    def add_text(begin: int, stop: int) -> None:
        run.extend(rendered[begin:stop])
        run_positions.extend(range(begin, stop))

    cursor = 0
    for found in pieces.finditer(rendered):
        add_text(cursor, found.start())
        if found.group(2) is None:  # a content's special string, kept as text
            add_text(found.start(1), found.end(1))
        else:
            flush()
            input_ids.append(tokenizer.convert_tokens_to_ids(found.group(2)))
            positions.append(list(range(found.start(), found.end())))
        cursor = found.end()
    add_text(cursor, len(rendered))
    flush()
    mask = [
        int(any(first <= position < last for position in where for first, last in spans))
        for where in positions
    ]
    return input_ids, mask


@dataclass
class EncodedSplit:
    """Tokenized rows of one file, plus the counts that go into the training report."""

    examples: list[dict]
    report: dict


def encode_sft_rows(row_set: RowSet, tokenizer, block_size: int) -> EncodedSplit:
    """Validate and tokenize SFT rows. Bad rows are added to ``row_set.bad_rows``; rows whose assistant tokens
    were all cut off by truncation are counted and left out (they would carry no loss)."""
    examples, truncated, no_target_rows = [], 0, []
    tokens = target_tokens = special_rows = 0
    for row, number in zip(row_set.rows, row_set.numbers):
        try:
            messages = row_messages(row)
        except ValueError as error:
            row_set.add_bad(number, str(error))
            continue
        encoded = render_chat(tokenizer, messages, block_size)
        truncated += encoded.pop("truncated")
        special_rows += encoded.pop("special_token_strings")
        kept_targets = sum(label != IGNORE_INDEX for label in encoded["labels"])
        if kept_targets == 0:
            no_target_rows.append(number)
            continue
        tokens += len(encoded["input_ids"])
        target_tokens += kept_targets
        examples.append(encoded)
    if truncated:
        logger.warning(
            "%s: %d of %d rows are longer than --block_size %d tokens and were truncated (their beginning is kept).",
            row_set.path,
            truncated,
            len(row_set.rows),
            block_size,
        )
    if no_target_rows:
        logger.warning(
            "%s: %d rows lost every assistant token to truncation and are not trained on (%s %s); raise "
            "--block_size to keep them.",
            row_set.path,
            len(no_target_rows),
            row_set.unit,
            ", ".join(map(str, no_target_rows[:MAX_LISTED_BAD_ROWS])),
        )
    report = {
        **row_counts(row_set, examples, truncated),
        "assistant_tokens_truncated_away": len(no_target_rows),
        "tokens": tokens,
        "assistant_tokens": target_tokens,
        # Rows whose text holds a special-token string (kept as text), as pretraining counts documents.
        "special_token_strings_in_text": special_rows,
    }
    return EncodedSplit(examples, report)


# ----------------------------------------------------------------------------------------------------------
# Classification rows


def encode_classification_text(tokenizer, text: str, max_length: int) -> list[int]:
    """Token ids of a text to classify: its first `max_length - 1` tokens, then <|eos|>, so that the pooled
    last token is always the same marker whatever the text (training and `wenlm evaluate` share this). A
    special-token string in the text stays text, so that only the marker is <|eos|>."""
    ids = tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"][: max_length - 1]
    return ids + [tokenizer.eos_token_id]


def label_problem(label: Any) -> str | None:
    if label is None:
        return "missing label"
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        return f"label must be a string or an integer, got {type(label).__name__}"
    if isinstance(label, str) and not label.strip():
        return "empty label"
    return None


def collect_labels(row_sets: Iterable[RowSet], label_column: str) -> list:
    """Sorted distinct labels of the well-formed rows of every file; strings and integers must not be mixed."""
    row_sets = list(row_sets)
    paths = ", ".join(row_set.path for row_set in row_sets)
    labels = {
        row.get(label_column)
        for row_set in row_sets
        for row in row_set.rows
        if label_problem(row.get(label_column)) is None
    }
    kinds = {type(label) for label in labels}
    if len(kinds) > 1:
        raise ValueError(
            f"{paths}: labels mix strings and integers ({sorted(map(str, labels))[:10]}); use one kind."
        )
    if len(labels) < 2:
        raise ValueError(
            f"{paths}: classification needs at least two distinct labels, found {sorted(labels)}."
        )
    return sorted(labels)


def encode_classification_rows(
    row_set: RowSet,
    tokenizer,
    block_size: int,
    label2id: dict,
    text_column: str = "text",
    label_column: str = "label",
) -> EncodedSplit:
    examples, truncated, tokens, special_rows = [], 0, 0, 0
    pattern = special_strings_pattern(tokenizer)
    for row, number in zip(row_set.rows, row_set.numbers):
        text, label = row.get(text_column), row.get(label_column)
        if text is None:
            row_set.add_bad(number, f"missing field {text_column!r}")
            continue
        if not isinstance(text, str):
            row_set.add_bad(number, f"{text_column!r} must be a string, got {type(text).__name__}")
            continue
        if not text.strip():
            row_set.add_bad(number, f"empty {text_column!r}")
            continue
        problem = label_problem(label)
        if problem is None and str(label) not in label2id:
            problem = f"label {label!r} does not occur in the training file"
        if problem:
            row_set.add_bad(number, problem if "label" in problem else f"{label_column!r}: {problem}")
            continue
        full_length = (
            len(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]) + 1
        )
        ids = encode_classification_text(tokenizer, text, block_size)
        truncated += full_length > block_size
        special_rows += bool(pattern and pattern.search(text))
        tokens += len(ids)
        examples.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": label2id[str(label)]})
    if truncated:
        logger.warning(
            "%s: %d of %d texts are longer than --block_size %d tokens and were truncated.",
            row_set.path,
            truncated,
            len(row_set.rows),
            block_size,
        )
    report = {
        **row_counts(row_set, examples, truncated),
        "tokens": tokens,
        "special_token_strings_in_text": special_rows,
    }
    return EncodedSplit(examples, report)


def row_counts(row_set: RowSet, examples: list, truncated: int) -> dict:
    """The counts every task's split report starts with: the file, its rows, those kept, bad and truncated."""
    return {
        "file": row_set.path,
        "rows_in_file": row_set.rows_in_file,
        "rows": len(examples),
        "bad_rows": len(row_set.bad_rows),
        "truncated": truncated,
    }


def concatenate_splits(splits: list[EncodedSplit]) -> EncodedSplit:
    """Several files' encoded rows as one split: examples in file order, counts summed, "file" the list of files
    (one file keeps its split as it is)."""
    if len(splits) == 1:
        return splits[0]
    report: dict = {"file": [split.report["file"] for split in splits]}
    for key in splits[0].report:
        if key != "file":
            report[key] = sum(split.report[key] for split in splits)
    return EncodedSplit([example for split in splits for example in split.examples], report)


# ----------------------------------------------------------------------------------------------------------


def raise_or_count_bad_rows(row_sets: Iterable[RowSet], skip_bad_rows: bool) -> dict:
    """Stop with a listing of the bad rows, or (with --skip_bad_rows) log them and return them for the report."""
    by_file = {row_set.path: row_set.bad_rows for row_set in row_sets if row_set.bad_rows}
    total = sum(map(len, by_file.values()))
    if not total:
        return {"total": 0, "by_file": {}}
    listed = [f"{path} {bad}" for path, bads in by_file.items() for bad in bads][:MAX_LISTED_BAD_ROWS]
    listing = "\n  ".join(listed) + (f"\n  ... and {total - len(listed)} more" if total > len(listed) else "")
    if not skip_bad_rows:
        raise ValueError(
            f"{total} bad row(s) in the fine-tuning data:\n  {listing}\n"
            "Fix them, or pass --skip_bad_rows to train without them (they are counted in the training report)."
        )
    logger.warning("Skipping %d bad row(s):\n  %s", total, listing)
    return {
        "total": total,
        "by_file": {
            path: [{"number": bad.number, "unit": bad.unit, "problem": bad.problem} for bad in bads][
                :MAX_LISTED_BAD_ROWS
            ]
            for path, bads in by_file.items()
        },
    }


class PaddingCollator:
    """Right-pads a batch: input ids with the pad id, attention masks with 0, per-token labels with
    IGNORE_INDEX (so padding costs nothing); one integer label per row is stacked as is."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        longest = max(len(feature["input_ids"]) for feature in features)
        batch: dict[str, torch.Tensor] = {}
        pads = {"input_ids": self.pad_token_id, "attention_mask": 0, "labels": IGNORE_INDEX}
        for key in features[0]:
            values = [feature[key] for feature in features]
            if isinstance(values[0], (list, tuple)):
                pad = pads.get(key, 0)
                values = [list(value) + [pad] * (longest - len(value)) for value in values]
            batch[key] = torch.tensor(values, dtype=torch.long)
        return batch


__all__ = [
    "IGNORE_INDEX",
    "BadRow",
    "EncodedSplit",
    "PaddingCollator",
    "RowSet",
    "collect_labels",
    "concatenate_splits",
    "encode_classification_rows",
    "encode_classification_text",
    "encode_sft_rows",
    "raise_or_count_bad_rows",
    "read_rows",
    "render_chat",
    "row_messages",
]
