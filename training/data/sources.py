"""Text sources of the pretraining pipeline: resolving `--train_files` entries (paths, globs, folders, `hub:`,
`builtin`), reading .txt/.jsonl/.json/.parquet/.csv into datasets with one "text" column (a CSV text column
kept as the exact strings in the file; the text formats also compressed: .gz, .bz2, .xz, .zst), and invalid
UTF-8 (counted and replaced by U+FFFD, or refused with `--strict_utf8`; files that are clearly not text are
refused unless `--allow_binary_files`)."""

from __future__ import annotations

import bz2
import glob
import gzip
import io
import json
import logging
import lzma
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from wenlm.training.args import DataArguments
from wenlm.training.corpus import grammar as builtin_corpus
from wenlm.training.corpus.rules import MIN_VARIANT_WORDS
from wenlm.training.data.cache import (
    PIPELINE_VERSION,
    TEXT_FEATURES,
    digest,
    file_signature,
    materialise_texts,
)

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = {
    ".txt": "text",
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}
# Formats whose bytes are checked (and repaired) as UTF-8 before a reader sees them; parquet stores its own types.
TEXT_FORMATS = (".txt", ".jsonl", ".json", ".csv")
# Compressions of the text formats (file.jsonl.gz ...): our readers and `datasets` (through fsspec) both see the
# decompressed text. Parquet compresses inside the file.
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
DEFAULT_BUILTIN_DOCS = 20000

_READ_CHUNK_BYTES = 8 << 20
# Text in UTF-8 never holds NUL bytes, and even Latin-1 prose has only a few percent of non-ASCII bytes: a file
# past this share of invalid bytes (a PNG renamed .txt: 41 %) is not worth training on without being asked.
BINARY_INVALID_SHARE = 0.10
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


# ------------------------------------------------------------------------------------- UTF-8 handling


def split_compression(path: str) -> tuple[str, str | None]:
    """(format suffix, compression suffix or None) of a file name: data.jsonl.gz -> (".jsonl", ".gz")."""
    name = Path(path).name.lower()
    for compression in COMPRESSIONS:
        if name.endswith(compression) and Path(name[: -len(compression)]).suffix in TEXT_FORMATS:
            return Path(name[: -len(compression)]).suffix, compression
    return Path(name).suffix, None


def open_decompressed(path: str) -> io.BufferedIOBase:
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
            import zstandard  # optional: only .zst files need it
        except ImportError:
            raise ImportError(
                f"{path} is zstd-compressed, which needs the zstandard package: pip install "
                "zstandard (or decompress the file with `zstd -d`)"
            ) from None
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


def _iter_byte_chunks(path: str) -> Iterator[tuple[int, bytes]]:
    """Yield (offset, chunk) of the (decompressed) file; see _iter_plain_chunks. A file that does not decompress
    (truncated, or not really compressed) is named with what to do."""
    try:
        yield from _iter_plain_chunks(path)
    except (OSError, EOFError, lzma.LZMAError) as error:
        if split_compression(path)[1] is None:
            raise
        raise ValueError(
            f"{path} could not be decompressed ({type(error).__name__}: {error}); it may be "
            "truncated or not compressed as its name says. Check it with its tool (gzip -t, "
            "xz -t, zstd -t) or remove it from --train_files."
        ) from None


def _iter_plain_chunks(path: str) -> Iterator[tuple[int, bytes]]:
    """Yield (file_offset, chunk) with every chunk ending after a newline byte (or at EOF).

    0x0A never occurs inside a multi-byte UTF-8 sequence, so each chunk decodes on its own and error
    offsets inside a chunk map directly to file offsets.
    """
    offset = 0
    with open_decompressed(path) as handle:
        while True:
            chunk = handle.read(_READ_CHUNK_BYTES)
            if not chunk:
                return
            if not chunk.endswith(b"\n"):
                chunk += handle.readline()
            yield offset, chunk
            offset += len(chunk)


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


def scan_utf8(path: str, strict: bool = False) -> int:
    """Count invalid UTF-8 bytes in a file; with ``strict`` raise at the first one (naming the offset)."""
    return _scan_bytes(path, strict)[0]


def _scan_bytes(path: str, strict: bool = False) -> tuple[int, int, int]:
    """(invalid UTF-8 bytes, NUL bytes, all bytes) of a file; with ``strict`` raise at the first invalid byte."""
    invalid = nul = total = 0
    for offset, chunk in _iter_byte_chunks(path):
        total += len(chunk)
        nul += chunk.count(0)
        try:
            chunk.decode("utf-8")
            continue
        except UnicodeDecodeError as error:
            if strict:
                raise ValueError(
                    f"{path}: invalid UTF-8 at byte offset {offset + error.start} ({error.reason}); fix the file "
                    "or run without --strict_utf8 to replace invalid bytes with U+FFFD"
                ) from None
        invalid += decode_utf8_lenient(chunk)[1]
    return invalid, nul, total


def check_text_file(path: str, strict: bool = False, allow_binary: bool = False) -> int:
    """Count a text file's invalid UTF-8 bytes, refusing a file that is clearly not text (see BINARY_INVALID_SHARE)
    unless ``allow_binary``."""
    invalid, nul, total = _scan_bytes(path, strict)
    if not allow_binary and (nul or invalid > BINARY_INVALID_SHARE * total):
        found = f"{nul} NUL bytes" if nul else f"{invalid / total:.0%} of its bytes are not valid UTF-8"
        raise ValueError(
            f"{path} does not look like UTF-8 text ({found}): it may be a binary file (an image, an archive) or "
            "text in another encoding (UTF-16, GBK, Latin-1). Remove it from --train_files, convert it to UTF-8 "
            "(e.g. iconv -f GBK -t UTF-8), or pass --allow_binary_files true to train on it anyway "
            "(invalid bytes become U+FFFD)"
        )
    return invalid


def _repaired_copy(path: str, cache_dir: Path) -> str:
    """Write a UTF-8-clean copy of a structured text file (the json/csv readers reject invalid bytes)."""
    target = cache_dir / "repaired_utf8" / f"{digest(file_signature(path))}{split_compression(path)[0]}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f"{target.suffix}.{os.getpid()}.partial")
        with open(partial, "w", encoding="utf-8", newline="") as out:
            for _, chunk in _iter_byte_chunks(path):
                out.write(decode_utf8_lenient(chunk)[0])
        os.replace(partial, target)
    return str(target)


# ------------------------------------------------------------------------------------------- resolving


@dataclass
class ResolvedSource:
    spec: str
    kind: str  # "files", "hub" or "builtin"
    files: list[str] = field(default_factory=list)
    hub_name: str | None = None
    hub_config: str | None = None
    builtin_docs: int = 0
    builtin_words: int | None = None  # the corpus variant keeping that many entries per word list


def _supported_list() -> str:
    return ", ".join(sorted(SUPPORTED_EXTENSIONS))


def _check_extension(path: str, spec: str) -> None:
    if split_compression(path)[0] not in SUPPORTED_EXTENSIONS:
        raise ValueError(
            f"unsupported file type {Path(path).suffix or '(none)'!r} for {path} (from train_files entry "
            f"{spec!r}); supported extensions: {_supported_list()}, and {', '.join(TEXT_FORMATS)} compressed "
            f"as {', '.join(COMPRESSIONS)}"
        )


def parse_builtin_spec(spec: str) -> tuple[int, int | None]:
    """``builtin[:N][:words=K]`` -> (documents N, words K or None for the full grammar)."""
    docs, words = DEFAULT_BUILTIN_DOCS, None
    usage = "expected 'builtin', 'builtin:N' (N documents >= 1), optionally ':words=K' (K >= 2), e.g. builtin:40000:words=4"
    head, *parts = spec.split(":")
    if head != "builtin":
        raise ValueError(f"train_files entry {spec!r}: {usage}")
    for part in parts:
        name, equals, value = part.partition("=")
        if not equals and part.isdigit() and int(part) >= 1:
            docs = int(part)
        elif equals and name == "words" and value.isdigit() and int(value) >= MIN_VARIANT_WORDS:
            words = int(value)
        else:
            raise ValueError(f"train_files entry {spec!r}: {usage}")
    return docs, words


def builtin_entropy_floor(train_files) -> float | None:
    """The exact entropy floor (bits per byte) of the training sources when all are one variant of the built-in
    corpus; None for any other corpus, whose floor nobody knows."""
    specs = [str(source) for source in train_files or []]
    if not specs or not all(spec == "builtin" or spec.startswith("builtin:") for spec in specs):
        return None
    variants = {parse_builtin_spec(spec)[1] for spec in specs}
    if len(variants) != 1:
        return None
    return builtin_corpus.exact_entropy_bits_per_byte(variants.pop())["bits_per_byte"]


def _resolve_builtin(spec: str) -> ResolvedSource:
    docs, words = parse_builtin_spec(spec)
    return ResolvedSource(spec, "builtin", builtin_docs=docs, builtin_words=words)


def _resolve_hub(spec: str) -> ResolvedSource:
    name, _, config = spec[len("hub:") :].partition(":")
    if not name:
        raise ValueError(f"train_files entry {spec!r}: expected 'hub:NAME' or 'hub:NAME:CONFIG'")
    return ResolvedSource(spec, "hub", hub_name=name, hub_config=config or None)


def _resolve_directory(spec: str) -> ResolvedSource:
    files = sorted(
        str(path)
        for path in Path(spec).rglob("*")
        if path.is_file()
        and split_compression(str(path))[0] in SUPPORTED_EXTENSIONS
        and not any(part.startswith(".") for part in path.relative_to(spec).parts)
    )
    if not files:
        raise FileNotFoundError(f"directory {spec} holds no supported files ({_supported_list()})")
    return ResolvedSource(spec, "files", files=files)


def _resolve_glob(spec: str) -> ResolvedSource:
    files = sorted(path for path in glob.glob(spec, recursive=True) if os.path.isfile(path))
    if not files:
        raise FileNotFoundError(f"glob {spec!r} in train_files matches no files")
    for path in files:
        _check_extension(path, spec)
    return ResolvedSource(spec, "files", files=files)


def _resolve_file(spec: str) -> ResolvedSource:
    if not os.path.exists(spec):
        raise FileNotFoundError(f"train_files entry {spec!r} does not exist (not a file, directory or glob)")
    _check_extension(spec, spec)
    return ResolvedSource(spec, "files", files=[spec])


def resolve_sources(train_files: Iterable[str]) -> list[ResolvedSource]:
    entries = [train_files] if isinstance(train_files, str) else list(train_files)
    if not entries:
        raise ValueError(
            "train_files is empty; give at least one file, glob, directory, 'hub:NAME' or 'builtin'"
        )
    sources = []
    for spec in entries:
        if spec == "builtin" or spec.startswith("builtin:"):
            sources.append(_resolve_builtin(spec))
        elif spec.startswith("hub:"):
            sources.append(_resolve_hub(spec))
        elif os.path.isdir(spec):
            sources.append(_resolve_directory(spec))
        elif glob.has_magic(spec):
            sources.append(_resolve_glob(spec))
        else:
            sources.append(_resolve_file(spec))
    return sources


# --------------------------------------------------------------------------------------------- readers


def read_txt_documents(path: str, mode: str = "block", separator: str | None = None) -> Iterator[str]:
    """Documents of a .txt file (invalid bytes -> U+FFFD).

    ``block``: documents are separated by blank lines, or only by ``separator`` lines when one is given.
    ``line``: every non-blank line is a document.  Separator lines never appear in a document.
    """
    pending: list[str] = []
    for _, chunk in _iter_byte_chunks(path):
        text = decode_utf8_lenient(chunk)[0].replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        for line in lines:
            stripped = line.strip()
            is_separator = separator is not None and stripped == separator
            if mode == "line":
                if stripped and not is_separator:
                    yield line
            # With an explicit separator, blank lines are paragraph breaks inside a document.
            elif is_separator or (separator is None and not stripped):
                if any(part.strip() for part in pending):
                    yield "\n".join(pending)
                pending = []
            else:
                pending.append(line)
    if any(part.strip() for part in pending):
        yield "\n".join(pending)


def _iter_txt_documents(paths: list[str], mode: str, separator: str | None, signature: str) -> Iterator[dict]:
    # `signature` is unused here; it is part of gen_kwargs so the datasets cache key changes with the files.
    del signature
    for path in paths:
        for text in read_txt_documents(path, mode, separator):
            yield {"text": text}


def _iter_builtin_documents(
    num_docs: int, seed: int, signature: str, words: int | None = None
) -> Iterator[dict]:
    del signature  # part of gen_kwargs only, as above
    for document in builtin_corpus.generate_documents(num_docs, seed=seed, words=words):
        yield {"text": document["text"]}


def _builtin_signature() -> str:
    # Every module of the grammar, not only its public face: a changed table changes the documents.
    folder = Path(builtin_corpus.__file__).parent
    return digest(*(path.read_bytes() for path in sorted(folder.glob("*.py"))))


def _select_text_column(dataset, text_column: str, origin: str):
    columns = dataset.column_names
    if columns is not None and text_column not in columns:
        raise ValueError(
            f"{origin} has no column {text_column!r} (columns: {', '.join(columns)}); choose one with --text_column"
        )
    if columns is not None:
        dataset = dataset.select_columns([text_column])
    if text_column != "text":
        dataset = dataset.rename_column(text_column, "text")
    features = getattr(dataset, "features", None)
    if features is not None and "text" in features and features["text"] != TEXT_FEATURES["text"]:
        # Text read from CSV can be typed as numbers; cast so the cleaning step always sees strings.
        dataset = dataset.cast(TEXT_FEATURES)
    return dataset


def _documents(generator, gen_kwargs: dict, streaming: bool, cached_path: Path):
    """A generator's documents: lazily as an IterableDataset, or written once to a cached Arrow file."""
    if streaming:
        return datasets.IterableDataset.from_generator(
            generator, features=TEXT_FEATURES, gen_kwargs=gen_kwargs
        )
    return materialise_texts((example["text"] for example in generator(**gen_kwargs)), cached_path)


def _load_builtin(source: ResolvedSource, args: DataArguments, cache_dir: Path) -> list:
    gen_kwargs = {
        "num_docs": source.builtin_docs,
        "seed": args.corpus_seed,
        "signature": _builtin_signature(),
        "words": source.builtin_words,
    }
    key = digest(PIPELINE_VERSION, "builtin", gen_kwargs)
    path = cache_dir / "sources" / f"builtin-{key}.arrow"
    return [_documents(_iter_builtin_documents, gen_kwargs, args.streaming, path)]


def _load_hub(source: ResolvedSource, args: DataArguments) -> list:
    logger.info(
        "loading hub dataset %s (config %s, split %s)", source.hub_name, source.hub_config, args.hub_split
    )
    loaded = datasets.load_dataset(
        source.hub_name,
        source.hub_config,
        split=args.hub_split,
        streaming=args.streaming,
        cache_dir=args.cache_dir,
    )
    return [_select_text_column(loaded, args.text_column, f"hub dataset {source.hub_name}")]


def _load_structured_file(path: str, args: DataArguments, cache_dir: Path, repair: bool):
    suffix = split_compression(path)[0]
    data_file = _repaired_copy(path, cache_dir) if repair else path
    # CSV cells are typed by pandas: "007" would come back as 7 and "1e3" as 1000.0, "NA" as missing. The text
    # column is read as the exact string in the file.
    csv_options = (
        {"converters": {args.text_column: str}, "keep_default_na": False} if suffix == ".csv" else {}
    )
    try:
        loaded = datasets.load_dataset(
            SUPPORTED_EXTENSIONS[suffix],
            data_files=[os.path.abspath(data_file)],
            split="train",
            streaming=args.streaming,
            cache_dir=args.cache_dir,
            **csv_options,
        )
    except (
        Exception
    ) as error:  # datasets wraps parser errors in several types; all mean "cannot read this file"
        raise unreadable_file(path, data_file, suffix, error) from error
    dataset = _select_text_column(loaded, args.text_column, f"{path}")
    if not args.streaming:
        return dataset
    # A streamed file is parsed only while training reads it: its errors are named there, by the same rules.
    return datasets.IterableDataset.from_generator(
        _iter_named_errors,
        features=TEXT_FEATURES,
        gen_kwargs={"dataset": dataset, "path": path, "data_file": data_file, "suffix": suffix},
    )


def _iter_named_errors(dataset, path: str, data_file: str, suffix: str) -> Iterator[dict]:
    try:
        yield from dataset
    except Exception as error:  # pyarrow and datasets raise many types for a malformed row
        raise unreadable_file(path, data_file, suffix, error) from None


def unreadable_file(path: str, data_file: str, suffix: str, error: Exception) -> ValueError:
    """The error for a file `datasets` could not parse: the first bad line of a JSON Lines file (pyarrow reports
    a row within a block, not the file's line), or the reader's own words."""
    bad_line = first_bad_json_line(data_file) if suffix == ".jsonl" else None
    if bad_line is not None:
        number, reason = bad_line
        return ValueError(
            f"{path}, line {number}: not a JSON object ({reason}). Fix or remove that line; each "
            "line of a .jsonl file must be one JSON object."
        )
    return ValueError(f"could not read {path} as {suffix} ({type(error).__name__}: {error})")


def first_bad_json_line(path: str) -> tuple[int, str] | None:
    """(1-based line, why) of the first non-blank line of a JSON Lines file that is not a JSON object."""
    # datasets' reader (pyarrow) reports a row within a block, not the file's line: find it ourselves.
    with io.TextIOWrapper(open_decompressed(path), encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as error:
                return number, f"{error.msg} at column {error.colno}"
            if not isinstance(row, dict):
                return number, f"a JSON {type(row).__name__}"
    return None


def _load_files(source: ResolvedSource, args: DataArguments, cache_dir: Path, utf8_report: dict) -> list:
    for path in source.files:
        if split_compression(path)[0] in TEXT_FORMATS:
            invalid = check_text_file(path, strict=args.strict_utf8, allow_binary=args.allow_binary_files)
            utf8_report[path] = invalid
            if invalid:
                logger.warning("%s: replaced %d invalid UTF-8 bytes with U+FFFD", path, invalid)
    loaded_parts = []
    txt_files = [path for path in source.files if split_compression(path)[0] == ".txt"]
    if txt_files:
        gen_kwargs = {
            "paths": [os.path.abspath(path) for path in txt_files],
            "mode": args.txt_document_mode,
            "separator": args.txt_document_separator,
            "signature": digest(PIPELINE_VERSION, [file_signature(path) for path in txt_files]),
        }
        path = cache_dir / "sources" / f"txt-{digest('txt', gen_kwargs)}.arrow"
        loaded_parts.append(_documents(_iter_txt_documents, gen_kwargs, args.streaming, path))
    for path in source.files:
        if split_compression(path)[0] != ".txt":
            loaded_parts.append(
                _load_structured_file(path, args, cache_dir, repair=bool(utf8_report.get(path)))
            )
    return loaded_parts


def load_source(source: ResolvedSource, args: DataArguments, cache_dir: Path, utf8_report: dict) -> list:
    """Return a list of datasets (one per file group) holding a single 'text' column."""
    if source.kind == "builtin":
        return _load_builtin(source, args, cache_dir)
    if source.kind == "hub":
        return _load_hub(source, args)
    return _load_files(source, args, cache_dir, utf8_report)
