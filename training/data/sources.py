"""Text sources of the pretraining pipeline: resolving `--train_files` entries (paths, globs, folders, `hub:`,
`builtin`), reading .txt/.jsonl/.json/.parquet/.csv into datasets with one "text" column (a CSV text column
kept as the exact strings in the file; the text formats also compressed: .gz, .bz2, .xz, .zst), and invalid
UTF-8 (counted and replaced by U+FFFD, or refused with `--strict_utf8`; files that are clearly not text are
refused unless `--allow_binary_files`).

Every local file is read through `reading` and checked before a run trains on it or writes anything: a file
that does not decompress, a JSON line that is not an object, a text field that is not a string (a number, a
list, null: refused, never made into text or dropped), a Parquet text column of another type or with nulls.
Streaming runs check every local file up front too (one extra pass), so a bad line deep in the corpus is not
found after hours of training."""

from __future__ import annotations

import glob
import logging
import os
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
from wenlm.training.data.reading import (
    COMPRESSIONS,
    TEXT_ADVICE,
    check_parquet_text_column,
    decode_utf8_lenient,
    first_null_row,
    iter_byte_chunks,
    iter_json_records,
    missing_column,
    one_line,
    split_compression,
    text_value_problem,
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
JSON_FORMATS = (".jsonl", ".json")
DEFAULT_BUILTIN_DOCS = 20000

# Text in UTF-8 never holds NUL bytes, and even Latin-1 prose has only a few percent of non-ASCII bytes: a file
# past this share of invalid bytes (a PNG renamed .txt: 41 %) is not worth training on without being asked.
BINARY_INVALID_SHARE = 0.10


# ------------------------------------------------------------------------------------- UTF-8 handling


def scan_utf8(path: str, strict: bool = False) -> int:
    """Count invalid UTF-8 bytes in a file; with ``strict`` raise at the first one (naming the offset)."""
    return _scan_bytes(path, strict)[0]


def _scan_bytes(path: str, strict: bool = False) -> tuple[int, int, int]:
    """(invalid UTF-8 bytes, NUL bytes, all bytes) of a file; with ``strict`` raise at the first invalid byte."""
    invalid = nul = total = 0
    for offset, chunk in iter_byte_chunks(path):
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
    """Write a UTF-8-clean copy of a CSV file (datasets' CSV reader rejects invalid bytes)."""
    target = cache_dir / "repaired_utf8" / f"{digest(file_signature(path))}{split_compression(path)[0]}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f"{target.suffix}.{os.getpid()}.partial")
        with open(partial, "w", encoding="utf-8", newline="") as out:
            for _, chunk in iter_byte_chunks(path):
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
    for _, chunk in iter_byte_chunks(path):
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
        raise missing_column(origin, text_column, columns)
    if columns is not None:
        dataset = dataset.select_columns([text_column])
    if text_column != "text":
        dataset = dataset.rename_column(text_column, "text")
    features = getattr(dataset, "features", None)
    feature = features.get("text") if features is not None else None
    if feature is not None and feature != TEXT_FEATURES["text"]:
        # Only another spelling of strings is cast; numbers or lists would become text the user never wrote.
        if getattr(feature, "dtype", None) not in ("large_string", "string_view"):
            raise ValueError(
                f"{origin}: column {text_column!r} holds {feature}, not strings; choose the column of texts "
                "with --text_column"
            )
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
    origin = f"hub dataset {source.hub_name}"
    dataset = _select_text_column(loaded, args.text_column, origin)
    # Nulls are refused as in files (a stream shows them only while training: it is not checked here).
    row = first_null_row(dataset.data.column("text")) if isinstance(dataset, datasets.Dataset) else None
    if row is not None:
        raise ValueError(
            f"{origin}: row {row}: {args.text_column!r} is null, not a string; choose another column with "
            "--text_column, or filter the dataset (wenlm does not drop rows unasked)."
        )
    return [dataset]


def iter_json_texts(path: str, text_column: str) -> Iterator[str]:
    """The text of every record of a JSON Lines or JSON-array file, refusing the first record that is not an
    object with a string in ``text_column`` (named by file and line, with what to do)."""
    first = True
    for place, row, problem in iter_json_records(path):
        if problem is not None:
            raise ValueError(
                f"{place}: {problem}. Fix or remove that line; each line of a .jsonl file (each "
                "record of a .json array) must be one JSON object."
            )
        if first and text_column not in row:
            # The first record stands for the file: most likely the whole file names its text otherwise.
            raise missing_column(path, text_column, list(row))
        first = False
        problem = text_value_problem(row, text_column)
        if problem is not None:
            raise ValueError(f"{place}: {problem}. {TEXT_ADVICE}")
        yield row[text_column]


def _iter_json_documents(path: str, text_column: str, signature: str) -> Iterator[dict]:
    del signature  # part of gen_kwargs only, as above
    for text in iter_json_texts(path, text_column):
        yield {"text": text}


def _load_json_file(path: str, args: DataArguments, cache_dir: Path):
    # Read by `reading`, not by datasets' JSON builder: pyarrow types a column by its values, so one number or
    # list among strings turned every text of the file into its JSON ('"a story"'), and its errors name a row
    # within a block, not the file's line.
    gen_kwargs = {
        "path": path,  # as the user gave it, for the messages; the signature holds the absolute path
        "text_column": args.text_column,
        "signature": digest(PIPELINE_VERSION, file_signature(path)),
    }
    if args.streaming:  # the whole file is checked before training; see the module docstring
        for _ in iter_json_texts(path, args.text_column):
            pass
    cached = cache_dir / "sources" / f"json-{digest('json', gen_kwargs)}.arrow"
    return _documents(_iter_json_documents, gen_kwargs, args.streaming, cached)


def _load_structured_file(path: str, args: DataArguments, cache_dir: Path, repair: bool):
    """A CSV or Parquet file through datasets, its text column checked first."""
    suffix = split_compression(path)[0]
    if suffix == ".parquet":
        check_parquet_text_column(path, args.text_column)
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
    # datasets wraps parser errors in several types; all mean "cannot read this file"
    except Exception as error:
        raise unreadable_file(path, suffix, error) from error
    dataset = _select_text_column(loaded, args.text_column, f"{path}")
    if not args.streaming:
        return dataset
    # A streamed CSV file is parsed once up front, as JSON files are (Parquet's types and nulls were checked above).
    if suffix == ".csv":
        for _ in _iter_named_errors(dataset, path, suffix):
            pass
    # Otherwise a streamed file is parsed only while training reads it: its errors are named there.
    return datasets.IterableDataset.from_generator(
        _iter_named_errors,
        features=TEXT_FEATURES,
        gen_kwargs={"dataset": dataset, "path": path, "suffix": suffix},
    )


def _iter_named_errors(dataset, path: str, suffix: str) -> Iterator[dict]:
    try:
        yield from dataset
    except Exception as error:  # pyarrow and datasets raise many types for a malformed row
        raise unreadable_file(path, suffix, error) from None


def unreadable_file(path: str, suffix: str, error: Exception) -> ValueError:
    """The error for a CSV or Parquet file `datasets` could not parse, in the reader's own words."""
    return ValueError(
        f"{path}: could not be read as {suffix} ({one_line(error)}); fix the file or leave it out."
    )


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
        suffix = split_compression(path)[0]
        if suffix in JSON_FORMATS:
            loaded_parts.append(_load_json_file(path, args, cache_dir))
        elif suffix != ".txt":
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


def read_sources(args: DataArguments, cache_dir: Path) -> tuple[list[ResolvedSource], list, dict[str, int]]:
    """(sources, their datasets, invalid UTF-8 bytes per file) of ``--train_files``: every local file read and
    checked (non-streaming: into the cache, where a second call finds it), so that a command can refuse an
    unreadable corpus before it writes anything."""
    sources = resolve_sources(args.train_files)
    utf8_by_file: dict[str, int] = {}
    parts = [part for source in sources for part in load_source(source, args, cache_dir, utf8_by_file)]
    return sources, parts, utf8_by_file
