"""Reading the files users give, with every failure named by file (and line, where the format has lines) and with
what to do: decompression (.gz .bz2 .xz .zst files that are truncated, damaged or not compressed as their name
says), text lines (UTF-8, numbered from 1), JSON Lines and JSON-array records, and the type of a text value.

A text is the user's own: only a string is read as text. A number, true/false, null, an array or an object where
the text should be is refused with its file and line; it is never turned into text (``42`` into ``"42"``, an array
into its JSON) nor dropped without a word. A Parquet text column must hold strings, without nulls.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
# Formats that are plain text before compression (file.jsonl.gz ...); Parquet compresses inside the file.
COMPRESSIBLE_FORMATS = (".txt", ".jsonl", ".ndjson", ".json", ".csv", ".tsv")
# compression -> (format name, the command that checks such a file)
_CHECKERS = {
    ".gz": ("gzip", "gzip -t"),
    ".bz2": ("bzip2", "bzip2 -t"),
    ".xz": ("xz", "xz -t"),
    ".zst": ("zstd", "zstd -t"),
}
_READ_CHUNK_BYTES = 8 << 20
# Compressed bytes fed to the zstd decompressor at a time: its output comes back whole, and text can compress
# a hundredfold.
_ZSTD_INPUT_BYTES = 256 << 10
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
TEXT_ADVICE = (
    "Fix or remove that line (only a JSON string is read as text), or name the text field with --text_column."
)


def split_compression(path: str | Path) -> tuple[str, str | None]:
    """(format suffix, compression suffix or None) of a file name: data.jsonl.gz -> (".jsonl", ".gz")."""
    name = Path(path).name.lower()
    for compression in COMPRESSIONS:
        if name.endswith(compression) and Path(name[: -len(compression)]).suffix in COMPRESSIBLE_FORMATS:
            return Path(name[: -len(compression)]).suffix, compression
    return Path(name).suffix, None


def where(path: str | Path, number: int | None = None, unit: str = "line") -> str:
    """The place of a problem at the start of a message: ``file``, ``file:LINE`` or ``file: row N``."""
    if number is None:
        return str(path)
    return f"{path}:{number}" if unit == "line" else f"{path}: {unit} {number}"


def one_line(error: BaseException) -> str:
    """A library's error as one line of a message (pandas and pyarrow put newlines in theirs), in the words of
    the error it wraps, if any (datasets' "An error occurred while generating the dataset" says nothing)."""
    while error.__cause__ is not None:
        error = error.__cause__
    name = type(error).__name__
    if name == "error":  # zlib.error, not a bare "error"
        name = f"{type(error).__module__}.error"
    return " ".join(f"{name}: {error}".split())


# ----------------------------------------------------------------------------------------------- decompression


class ZstdDataError(Exception):
    """zstandard's ZstdError, raised as a type this module knows without importing zstandard."""


# Every type a decompressor raises for bad input (gzip: OSError/EOFError/zlib.error, bz2: OSError/EOFError, xz:
# LZMAError/EOFError, zstd: ZstdDataError/EOFError); an OSError with an errno (EIO, EACCES) is the disk's problem,
# not the file's.
_DECOMPRESSION_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error, ZstdDataError)


class _ZstdFrames(io.RawIOBase):
    """A .zst file decompressed frame after frame, as `zstd -d` does. zstandard's stream_reader ends quietly at a
    frame cut short, so a truncated file would read as a shorter corpus; here the end of the file inside a frame
    is an error."""

    def __init__(self, path: str | Path):
        import zstandard  # optional: only .zst files need it

        self._error = zstandard.ZstdError
        self._file = open(path, "rb")
        self._decompressor = zstandard.ZstdDecompressor()
        self._frame = None  # the frame being decompressed, None between frames
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            compressed = self._file.read(_ZSTD_INPUT_BYTES)
            if not compressed:
                if self._frame is not None and not self._frame.eof:
                    raise EOFError("the file ends inside a zstd frame")
                return 0
            self._pending = memoryview(self._decompress(compressed))
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _decompress(self, data: bytes) -> bytes:
        parts = []
        while data:
            if self._frame is None or self._frame.eof:
                self._frame = self._decompressor.decompressobj()
            try:
                parts.append(self._frame.decompress(data))
            except self._error as error:
                raise ZstdDataError(str(error)) from None
            data = self._frame.unused_data if self._frame.eof else b""
        return b"".join(parts)

    def close(self) -> None:
        if hasattr(self, "_file"):  # not when __init__ failed (zstandard missing)
            self._file.close()
        super().close()


def open_decompressed(path: str | Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed when its name says it is compressed."""
    compression = split_compression(path)[1]
    if compression == ".gz":
        return gzip.open(path, "rb")
    if compression == ".bz2":
        return bz2.open(path, "rb")
    if compression == ".xz":
        return lzma.open(path, "rb")
    if compression == ".zst":
        try:
            return io.BufferedReader(_ZstdFrames(path), _READ_CHUNK_BYTES)
        except ImportError:
            raise ImportError(
                f"{path} is zstd-compressed, which needs the zstandard package: pip install "
                "zstandard (or decompress the file with `zstd -d`)"
            ) from None
    return open(path, "rb")


def iter_byte_chunks(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(offset, chunk) of the (decompressed) file, every chunk ending after a newline byte (or at the end).

    0x0A never occurs inside a multi-byte UTF-8 sequence, so each chunk decodes on its own and error offsets
    inside a chunk map directly to offsets in the file. A file that does not decompress is named with the tool
    that checks it.
    """
    compression = split_compression(path)[1]
    try:
        offset = 0
        with open_decompressed(path) as handle:
            while chunk := handle.read(_READ_CHUNK_BYTES):
                if not chunk.endswith(b"\n"):
                    chunk += handle.readline()
                yield offset, chunk
                offset += len(chunk)
    except _DECOMPRESSION_ERRORS as error:
        if compression is None or (isinstance(error, OSError) and error.errno is not None):
            raise
        name, checker = _CHECKERS[compression]
        raise ValueError(
            f"{path}: could not be decompressed as {name} ({one_line(error)}); the file is truncated or damaged, "
            f"or not {name}-compressed as its name says. Check it with `{checker} {path}`, then re-create or "
            "re-download it, or leave it out."
        ) from None


def check_decompresses(path: str | Path) -> None:
    """Read a compressed file to its end, so that a damaged one is named before a library reads it."""
    if split_compression(path)[1] is not None:
        for _ in iter_byte_chunks(path):
            pass


# ------------------------------------------------------------------------------------------------------- lines


def decode_utf8_lenient(raw: bytes) -> tuple[str, int]:
    """Decode UTF-8, replacing every invalid byte by U+FFFD; return (text, invalid_byte_count)."""
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        pass
    # surrogateescape maps each invalid byte to exactly one lone surrogate, which makes them countable.
    escaped = raw.decode("utf-8", "surrogateescape")
    text, count = _ESCAPED_BYTE.subn("\ufffd", escaped)
    return text, count


def _decode_strict(path: str | Path, chunk: bytes, lines_before: int) -> str:
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = chunk.rfind(b"\n", 0, error.start) + 1
        line = lines_before + chunk.count(b"\n", 0, error.start) + 1
        raise ValueError(
            f"{where(path, line)}: not valid UTF-8 (byte "
            f"0x{chunk[error.start]:02x} at byte {error.start - line_start + 1} of the line); convert the file "
            "to UTF-8 (e.g. iconv -f GBK -t UTF-8)."
        ) from None


def iter_lines(path: str | Path, strict: bool = False) -> Iterator[tuple[int, str]]:
    """(1-based number, line without its "\\n" or "\\r\\n") of every line of a (decompressed) text file.
    Invalid UTF-8 bytes become U+FFFD, or with ``strict`` are refused naming the line."""
    number = 0
    for _, chunk in iter_byte_chunks(path):
        text = _decode_strict(path, chunk, number) if strict else decode_utf8_lenient(chunk)[0]
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        for line in lines:
            number += 1
            yield number, line.removesuffix("\r")


# -------------------------------------------------------------------------------------------------------- JSON


def json_type(value: Any) -> str:
    """A JSON value's kind in the words of JSON (the user wrote JSON, not Python)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{json.dumps(value)} (a boolean)"
    if isinstance(value, (int, float)):
        return f"the number {json.dumps(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string"


def json_error(error: json.JSONDecodeError) -> str:
    return f"invalid JSON ({error.msg} at column {error.colno})"


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, Any, str | None]]:
    """(line, value, problem) for every non-blank line of a JSON Lines file: the parsed object and None, or
    None and why the line is not a JSON object."""
    for number, line in iter_lines(path):
        if number == 1:
            line = line.removeprefix("\ufeff")  # the byte-order mark some editors write
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, None, json_error(error)
            continue
        if isinstance(value, dict):
            yield number, value, None
        else:
            yield number, None, f"{json_type(value)}, not a JSON object"


def _iter_json_array(path: str | Path, text: str) -> Iterator[tuple[str, Any, str | None]]:
    """The records of a JSON array, each placed at the line it starts on (raw_decode walks the array element by
    element, so a problem is named where it is)."""
    decoder = json.JSONDecoder()
    position = _JSON_SPACE.match(text, text.index("[") + 1).end()
    line, counted, record = 1, 0, 0
    if text.startswith("]", position):
        position = _JSON_SPACE.match(text, position + 1).end()
    else:
        while True:
            line += text.count("\n", counted, position)
            counted, record = position, record + 1
            place = f"{where(path, line)}: record {record}"
            try:
                value, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError as error:
                yield where(path, error.lineno), None, json_error(error)
                return
            yield place, value, None if isinstance(value, dict) else f"{json_type(value)}, not a JSON object"
            position = _JSON_SPACE.match(text, position).end()
            if text.startswith(",", position):
                position = _JSON_SPACE.match(text, position + 1).end()
            elif text.startswith("]", position):
                position = _JSON_SPACE.match(text, position + 1).end()
                break
            else:
                error = json.JSONDecodeError("Expecting ',' delimiter", text, position)
                yield where(path, error.lineno), None, json_error(error)
                return
    if position < len(text):
        error = json.JSONDecodeError("Extra data", text, position)
        yield where(path, error.lineno), None, json_error(error)


def first_json_character(path: str | Path) -> str:
    """The first character of a (decompressed) JSON file after a byte-order mark and white space: "[" for an
    array of records, "" for an empty file."""
    for _, chunk in iter_byte_chunks(path):
        start = decode_utf8_lenient(chunk)[0].removeprefix("\ufeff").lstrip(" \t\n\r")
        if start:
            return start[0]
    return ""


def iter_json_records(path: str | Path) -> Iterator[tuple[str, Any, str | None]]:
    """(place, value, problem) of each record of a .jsonl/.ndjson file, or of a .json file holding one array of
    objects (its first character is "[") or JSON Lines; the place is ``file:LINE`` (``file:LINE: record N`` in
    an array) and the problem None for an object."""
    if split_compression(path)[0] == ".json" and first_json_character(path) == "[":
        text = "".join(decode_utf8_lenient(chunk)[0] for _, chunk in iter_byte_chunks(path))
        yield from _iter_json_array(path, text.removeprefix("\ufeff"))
        return
    for number, value, problem in iter_json_lines(path):
        yield where(path, number), value, problem


def text_value_problem(row: dict, column: str) -> str | None:
    """Why ``row[column]`` is not a text, or None when it is a string."""
    if column not in row:
        return f"no {column!r} field (fields: {', '.join(map(str, row)) or 'none'})"
    value = row[column]
    if not isinstance(value, str):
        return f"{column!r} is {json_type(value)}, not a string"
    if value.isascii():
        return None
    try:  # a lone surrogate ("\ud800" in JSON) decodes to no character, and UTF-8 cannot store it
        value.encode("utf-8")  # four times faster than searching CJK text with a regular expression
    except UnicodeEncodeError:
        lone = _LONE_SURROGATE.search(value).group()
        return f"{column!r} holds the escape \\u{ord(lone):04x}, half of a surrogate pair and not a character"
    return None


# ----------------------------------------------------------------------------------------------------- Parquet


def missing_column(origin: str, column: str, columns: list[str]) -> ValueError:
    return ValueError(
        f"{origin} has no column {column!r} (columns: {', '.join(columns)}); choose one with --text_column"
    )


def first_null_row(values: pa.Array | pa.ChunkedArray) -> int | None:
    """The 1-based row of the first null among ``values``, or None when there is none."""
    return pc.index(pc.is_null(values), True).as_py() + 1 if values.null_count else None


def _is_string_type(arrow_type) -> bool:
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def check_parquet_text_column(path: str | Path, column: str) -> None:
    """Refuse a Parquet file that cannot be read, has no ``column``, or whose ``column`` holds anything but
    strings (numbers, lists, bytes) or holds nulls; the nulls are found from the row groups' statistics where
    the writer kept them, so a clean file is not read twice."""
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise ValueError(
            f"{path}: not a readable Parquet file ({one_line(error)}); it is truncated, damaged or not Parquet. "
            "Re-create it, or leave it out."
        ) from None
    schema = parquet.schema_arrow
    if column not in schema.names:
        raise missing_column(str(path), column, schema.names)
    arrow_type = schema.field(column).type
    if not _is_string_type(arrow_type):
        raise ValueError(
            f"{path}: column {column!r} holds {arrow_type} values, not strings. Choose the column of texts with "
            "--text_column, or convert this one to strings yourself (wenlm does not make text of numbers, lists "
            "or bytes)."
        )
    metadata, first_row = parquet.metadata, 0
    for group in range(metadata.num_row_groups):
        chunk = next(
            (
                metadata.row_group(group).column(index)
                for index in range(metadata.num_columns)
                if metadata.row_group(group).column(index).path_in_schema == column
            ),
            None,
        )
        statistics = chunk.statistics if chunk is not None else None
        if statistics is None or not statistics.has_null_count or statistics.null_count:
            null_row = first_null_row(parquet.read_row_group(group, columns=[column]).column(column))
            if null_row is not None:
                row = first_row + null_row
                raise ValueError(
                    f"{where(path, row, 'row')}: {column!r} is null, not a string. Give that row its text or "
                    "remove it (wenlm does not drop rows unasked), or choose another column with --text_column."
                )
        first_row += metadata.row_group(group).num_rows


__all__ = [
    "COMPRESSIONS",
    "COMPRESSIBLE_FORMATS",
    "TEXT_ADVICE",
    "check_decompresses",
    "check_parquet_text_column",
    "decode_utf8_lenient",
    "first_json_character",
    "first_null_row",
    "iter_byte_chunks",
    "iter_json_lines",
    "iter_json_records",
    "iter_lines",
    "json_type",
    "missing_column",
    "one_line",
    "open_decompressed",
    "split_compression",
    "text_value_problem",
    "where",
]
