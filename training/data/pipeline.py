"""Pretraining data pipeline: load text sources, clean them, hold out validation documents, train or take a
tokenizer, and tokenize + pack the documents into fixed-length blocks for causal LM training.

Pipeline (``prepare_datasets``)::

    sources -> UTF-8 check -> normalise line endings + strip -> drop short docs -> exact de-dup
            -> optional PII scrubbing -> split by document -> [train tokenizer] -> tokenize + EOS -> pack

Decisions worth knowing:

* Every step is counted in ``PreparedData.report`` (documents and characters in/out per cleaning step,
  invalid UTF-8 bytes per file, PII replacements per kind, documents/tokens/blocks/bytes per split, tokens
  dropped as the packing remainder).
* ``.txt`` files are read by this module (not by the ``datasets`` "text" builder): its
  ``sample_by="paragraph"`` only splits on an exact ``"\\n\\n"``, so whitespace-only lines or ``"\\r\\n"``
  pairs between paragraphs would not separate documents, and it cannot count replaced bytes.  Lines are
  split on ``\\n``, ``\\r\\n`` and ``\\r``; a block document is its lines joined by ``\\n``.
  ``txt_document_separator`` additionally treats a line equal to a marker (``<|endoftext|>`` in the
  TinyStories releases) as a document boundary.
* Validation is held out by document, never sliced off a packed stream.  Non-streaming: a seeded random
  choice of exactly round(fraction * N) (or the given count of) documents.  Streaming: the total is unknown,
  so a fraction selects each document by a seeded hash of its content and an integer count takes the first
  documents of the stream.  Both splits keep the corpus order inside each part.
* Packing concatenates all documents of a split (EOS after each) and cuts the stream into blocks; only the
  final remainder (< block_size tokens) is dropped, not one remainder per tokenizer batch.  Streaming mode
  packs the same way, lazily, so on the same documents it yields exactly the same blocks.
* Streaming mode reads nothing up front except a peek at the first documents and blocks (to fail early on an
  empty corpus).  Its report therefore holds live cleaning/PII counters of the latest pass over the stream
  (filled in the process that iterates) and ``None`` for per-split documents/tokens/bytes.  Streaming and
  non-streaming runs keep the same cleaned documents; only the validation choice differs (see above).
* Streaming de-dup keeps a set of content hashes, so memory grows as O(unique documents) (16 bytes each plus
  set overhead).  Each pass over a streaming dataset starts a fresh set and fresh counters.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import itertools
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from wenlm.training.args import DataArguments, validation_spec

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = {
    ".txt": "text",
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}
DEFAULT_BUILTIN_DOCS = 20000
CLEANING_STEPS = ("normalize", "min_doc_chars", "dedup", "pii")

# Bump when a reader, a cleaning rule or the packing layout changes, so old cache entries are not reused.
_PIPELINE_VERSION = "wenlm-data-2"
_READ_CHUNK_BYTES = 8 << 20
_ARROW_BATCH_ROWS = 10_000
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


@dataclass
class PreparedData:
    train_text: Any
    validation_text: Any
    train: Any
    validation: Any
    report: dict
    tokenizer: Any = None


# --------------------------------------------------------------------------------------------- helpers


def _digest(*parts: Any) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    for part in parts:
        hasher.update(repr(part).encode("utf-8"))
        hasher.update(b"\x00")
    return hasher.hexdigest()


def content_hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _array_digest(values: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(values).tobytes(), digest_size=16).hexdigest()


def normalize_text(text: str | None) -> str:
    if not text:
        return ""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def default_cache_dir() -> Path:
    try:
        import datasets.config

        return Path(datasets.config.HF_DATASETS_CACHE) / "wenlm"
    except Exception:  # pragma: no cover - datasets is a hard dependency; this only guards odd configs
        return Path.home() / ".cache" / "wenlm"


def _resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _file_signature(path: str) -> tuple:
    stat = os.stat(path)
    return (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


# ------------------------------------------------------------------------------------- UTF-8 handling


def _iter_byte_chunks(path: str) -> Iterator[tuple[int, bytes]]:
    """Yield (file_offset, chunk) with every chunk ending after a newline byte (or at EOF).

    0x0A never occurs inside a multi-byte UTF-8 sequence, so each chunk decodes on its own and error
    offsets inside a chunk map directly to file offsets.
    """
    offset = 0
    with open(path, "rb") as handle:
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
    invalid = 0
    for offset, chunk in _iter_byte_chunks(path):
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
    return invalid


def _repaired_copy(path: str, cache_dir: Path) -> str:
    """Write a UTF-8-clean copy of a structured text file (the json/csv readers reject invalid bytes)."""
    target = cache_dir / "repaired_utf8" / f"{_digest(_file_signature(path))}{Path(path).suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f"{target.suffix}.{os.getpid()}.partial")
        with open(partial, "w", encoding="utf-8", newline="") as out:
            for _, chunk in _iter_byte_chunks(path):
                out.write(decode_utf8_lenient(chunk)[0])
        os.replace(partial, target)
    return str(target)


# --------------------------------------------------------------------------------------------- sources


@dataclass
class ResolvedSource:
    spec: str
    kind: str  # "files", "hub" or "builtin"
    files: list[str] = field(default_factory=list)
    hub_name: str | None = None
    hub_config: str | None = None
    builtin_docs: int = 0


def _supported_list() -> str:
    return ", ".join(sorted(SUPPORTED_EXTENSIONS))


def _check_extension(path: str, spec: str) -> None:
    if Path(path).suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise ValueError(
            f"unsupported file type {Path(path).suffix or '(none)'!r} for {path} (from train_files entry "
            f"{spec!r}); supported extensions: {_supported_list()}"
        )


def resolve_sources(train_files: Iterable[str]) -> list[ResolvedSource]:
    sources = []
    entries = [train_files] if isinstance(train_files, str) else list(train_files)
    if not entries:
        raise ValueError(
            "train_files is empty; give at least one file, glob, directory, 'hub:NAME' or 'builtin'"
        )
    for spec in entries:
        if spec == "builtin" or spec.startswith("builtin:"):
            count_text = spec.partition(":")[2] or str(DEFAULT_BUILTIN_DOCS)
            if not count_text.isdigit() or int(count_text) < 1:
                raise ValueError(f"train_files entry {spec!r}: expected 'builtin' or 'builtin:N' with N >= 1")
            sources.append(ResolvedSource(spec, "builtin", builtin_docs=int(count_text)))
        elif spec.startswith("hub:"):
            name, _, config = spec[len("hub:") :].partition(":")
            if not name:
                raise ValueError(f"train_files entry {spec!r}: expected 'hub:NAME' or 'hub:NAME:CONFIG'")
            sources.append(ResolvedSource(spec, "hub", hub_name=name, hub_config=config or None))
        elif os.path.isdir(spec):
            files = sorted(
                str(path)
                for path in Path(spec).rglob("*")
                if path.is_file()
                and path.suffix.lower() in SUPPORTED_EXTENSIONS
                and not any(part.startswith(".") for part in path.relative_to(spec).parts)
            )
            if not files:
                raise FileNotFoundError(f"directory {spec} holds no supported files ({_supported_list()})")
            sources.append(ResolvedSource(spec, "files", files=files))
        elif glob.has_magic(spec):
            files = sorted(path for path in glob.glob(spec, recursive=True) if os.path.isfile(path))
            if not files:
                raise FileNotFoundError(f"glob {spec!r} in train_files matches no files")
            for path in files:
                _check_extension(path, spec)
            sources.append(ResolvedSource(spec, "files", files=files))
        else:
            if not os.path.exists(spec):
                raise FileNotFoundError(
                    f"train_files entry {spec!r} does not exist (not a file, directory or glob)"
                )
            _check_extension(spec, spec)
            sources.append(ResolvedSource(spec, "files", files=[spec]))
    return sources


def _iter_txt_documents(paths: list[str], mode: str, separator: str | None, signature: str) -> Iterator[dict]:
    # `signature` is unused here; it is part of gen_kwargs so the datasets cache key changes with the files.
    del signature
    for path in paths:
        for text in read_txt_documents(path, mode, separator):
            yield {"text": text}


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


def _iter_builtin_documents(num_docs: int, seed: int, signature: str) -> Iterator[dict]:
    del signature
    from wenlm.training.corpus.grammar import generate_documents

    for document in generate_documents(num_docs, seed=seed):
        yield {"text": document["text"]}


def _builtin_signature() -> str:
    try:
        import wenlm.training.corpus.grammar as corpus_module
    except ImportError as error:
        raise ImportError(
            "train_files uses 'builtin' but wenlm.training.corpus.grammar is not available; give real files instead"
        ) from error
    return _digest(Path(corpus_module.__file__).read_bytes())


def _text_features():
    from datasets import Features, Value

    return Features({"text": Value("string")})


def _iter_column_batches(dataset, column: str) -> Iterator[pa.Array]:
    """A map-style Dataset's column as Arrow arrays of up to _ARROW_BATCH_ROWS values.

    After ``select`` a Dataset reads rows through an indices mapping, which datasets gathers one row at a time
    in Python; a single Arrow ``take`` per batch is much faster.
    """
    table = dataset.data.table.select([column])
    indices = dataset._indices.column(0) if dataset._indices is not None else None
    rows = len(indices) if indices is not None else table.num_rows
    for start in range(0, rows, _ARROW_BATCH_ROWS):
        stop = min(start + _ARROW_BATCH_ROWS, rows)
        part = table.slice(start, stop - start) if indices is None else table.take(indices.slice(start, stop - start))
        yield part.column(column).combine_chunks()


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


@contextlib.contextmanager
def _arrow_file_writer(path: Path, features) -> Iterator[Any]:
    """An ArrowWriter whose file is published at ``path`` only when the block completes: an interrupted run
    leaves no truncated cache entry, and a per-process temporary name lets parallel launchers (one process per
    GPU) write the same entry at once."""
    from datasets.arrow_writer import ArrowWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    partial_path = path.with_suffix(f".{os.getpid()}.partial")
    try:
        with ArrowWriter(features=features, path=str(partial_path)) as writer:
            yield writer
            writer.finalize()
        os.replace(partial_path, path)
    finally:
        partial_path.unlink(missing_ok=True)


def _write_arrow_file(path: Path, features, tables: Iterable[pa.Table]) -> None:
    with _arrow_file_writer(path, features) as writer:
        for table in tables:
            writer.write_table(table)


def _materialise_texts(texts: Iterable[str], path: Path):
    """A memory-mapped Dataset of the documents, written in batches of whole Arrow arrays: datasets'
    ``from_generator`` encodes every example in Python, which made loading slower than tokenizing."""
    import datasets

    if not path.exists():
        tables = (pa.table({"text": pa.array(batch, pa.string())}) for batch in _batches(texts, _ARROW_BATCH_ROWS))
        _write_arrow_file(path, _text_features(), tables)
    return datasets.Dataset.from_file(str(path))


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
    if features is not None and "text" in features and features["text"] != _text_features()["text"]:
        # Text read from CSV can be typed as numbers; cast so the cleaning step always sees strings.
        dataset = dataset.cast(_text_features())
    return dataset


def _load_source(source: ResolvedSource, args: DataArguments, cache_dir: Path, utf8_report: dict):
    """Return a list of datasets (one per file group) holding a single 'text' column."""
    import datasets

    streaming = args.streaming
    if source.kind == "builtin":
        gen_kwargs = {
            "num_docs": source.builtin_docs,
            "seed": args.corpus_seed,
            "signature": _builtin_signature(),
        }
        if streaming:
            return [
                datasets.IterableDataset.from_generator(
                    _iter_builtin_documents, features=_text_features(), gen_kwargs=gen_kwargs
                )
            ]
        key = _digest(_PIPELINE_VERSION, "builtin", gen_kwargs)
        documents = (example["text"] for example in _iter_builtin_documents(**gen_kwargs))
        return [_materialise_texts(documents, cache_dir / "sources" / f"builtin-{key}.arrow")]
    if source.kind == "hub":
        logger.info(
            "loading hub dataset %s (config %s, split %s)", source.hub_name, source.hub_config, args.hub_split
        )
        loaded = datasets.load_dataset(
            source.hub_name,
            source.hub_config,
            split=args.hub_split,
            streaming=streaming,
            cache_dir=args.cache_dir,
        )
        return [_select_text_column(loaded, args.text_column, f"hub dataset {source.hub_name}")]

    loaded_parts = []
    txt_files = [path for path in source.files if Path(path).suffix.lower() == ".txt"]
    for path in source.files:
        if Path(path).suffix.lower() in (".txt", ".jsonl", ".json", ".csv"):
            invalid = scan_utf8(path, strict=args.strict_utf8)
            utf8_report[path] = invalid
            if invalid:
                logger.warning("%s: replaced %d invalid UTF-8 bytes with U+FFFD", path, invalid)
    if txt_files:
        gen_kwargs = {
            "paths": [os.path.abspath(path) for path in txt_files],
            "mode": args.txt_document_mode,
            "separator": args.txt_document_separator,
            "signature": _digest(_PIPELINE_VERSION, [_file_signature(path) for path in txt_files]),
        }
        if streaming:
            loaded_parts.append(
                datasets.IterableDataset.from_generator(
                    _iter_txt_documents, features=_text_features(), gen_kwargs=gen_kwargs
                )
            )
        else:
            documents = (example["text"] for example in _iter_txt_documents(**gen_kwargs))
            key = _digest("txt", gen_kwargs)
            loaded_parts.append(_materialise_texts(documents, cache_dir / "sources" / f"txt-{key}.arrow"))
    for path in source.files:
        suffix = Path(path).suffix.lower()
        if suffix == ".txt":
            continue
        builder = SUPPORTED_EXTENSIONS[suffix]
        data_file = _repaired_copy(path, cache_dir) if utf8_report.get(path) else path
        try:
            loaded = datasets.load_dataset(
                builder,
                data_files=[os.path.abspath(data_file)],
                split="train",
                streaming=streaming,
                cache_dir=args.cache_dir,
            )
        except Exception as error:
            raise ValueError(
                f"could not read {path} as {suffix} ({type(error).__name__}: {error})"
            ) from error
        loaded_parts.append(_select_text_column(loaded, args.text_column, f"{path}"))
    return loaded_parts


# -------------------------------------------------------------------------------------------- cleaning


def _empty_step() -> dict:
    return {"documents_in": 0, "documents_out": 0, "chars_in": 0, "chars_out": 0}


def _normalized_table(raw: pa.Array) -> pa.Table:
    texts = [normalize_text(text) for text in raw.to_pylist()]
    normalized = pa.array(texts, pa.string())
    return pa.table({
        "text": normalized,
        "raw_chars": pc.fill_null(pc.utf8_length(raw), 0).cast(pa.int64()),
        "chars": pc.utf8_length(normalized).cast(pa.int64()),
        "content_hash": pa.array([content_hash(text) for text in texts], pa.binary(16)),
    })


def _normalized_dataset(dataset, cache_dir: Path):
    """Normalised documents with their raw/normalised lengths and content hashes, one batched pass written as
    whole Arrow arrays (a per-example ``datasets.map`` cost more than tokenizing) and cached by fingerprint."""
    import datasets
    from datasets import Features, Value

    key = _digest(dataset._fingerprint, _PIPELINE_VERSION, "normalize")
    path = cache_dir / "cleaned" / f"normalized-{key}.arrow"
    if not path.exists():
        features = Features({
            "text": Value("string"), "raw_chars": Value("int64"), "chars": Value("int64"),
            "content_hash": Value("binary"),
        })
        tables = (_normalized_table(texts) for texts in _iter_column_batches(dataset, "text"))
        _write_arrow_file(path, features, (table.cast(features.arrow_schema) for table in tables))
    return datasets.Dataset.from_file(str(path))


def _scrub_batch(batch: dict) -> dict:
    from wenlm.training.data.pii import PII_KINDS, scrub_pii

    output: dict[str, list] = {"text": [], **{f"pii_{kind}": [] for kind in PII_KINDS}}
    for text in batch["text"]:
        scrubbed, counts = scrub_pii(text)
        output["text"].append(scrubbed)
        for kind in PII_KINDS:
            output[f"pii_{kind}"].append(counts[kind])
    return output


def _column_sum(dataset, column: str) -> int:
    return int(pc.sum(dataset.data.column(column)).as_py() or 0)


def clean_dataset(dataset, args: DataArguments) -> tuple[Any, dict, dict]:
    """Clean a map-style Dataset with a 'text' column; return (dataset, step_counts, pii_counts)."""
    from wenlm.training.data.pii import PII_KINDS

    steps = {name: _empty_step() for name in CLEANING_STEPS}
    normalized = _normalized_dataset(dataset, _resolve_cache_dir(args.cache_dir))
    chars = normalized.data.column("chars").to_numpy()
    total_docs = len(normalized)
    steps["normalize"].update(
        documents_in=total_docs,
        documents_out=total_docs,
        chars_in=_column_sum(normalized, "raw_chars"),
        chars_out=int(chars.sum()),
    )
    long_enough = np.flatnonzero(chars >= max(1, args.min_doc_chars))
    steps["min_doc_chars"].update(
        documents_in=total_docs,
        chars_in=int(chars.sum()),
        documents_out=len(long_enough),
        chars_out=int(chars[long_enough].sum()),
    )
    if args.dedup:
        hashes = normalized.data.column("content_hash").to_pylist()
        seen: set[bytes] = set()
        unique = []
        for index in long_enough.tolist():
            if hashes[index] not in seen:
                seen.add(hashes[index])
                unique.append(index)
        kept = np.asarray(unique, dtype=np.int64)
    else:
        kept = long_enough
    steps["dedup"].update(
        documents_in=len(long_enough),
        chars_in=int(chars[long_enough].sum()),
        documents_out=len(kept),
        chars_out=int(chars[kept].sum()),
    )
    if len(kept) == 0:
        raise ValueError(
            f"the corpus is empty after cleaning: {total_docs} documents read, "
            f"{total_docs - len(long_enough)} shorter than min_doc_chars={max(1, args.min_doc_chars)} characters "
            f"(after stripping), {len(long_enough) - len(kept)} exact duplicates; check --train_files, "
            "--text_column, --txt_document_mode and --min_doc_chars"
        )
    # An explicit fingerprint: by default datasets hashes the whole index list, which took seconds.
    cleaned = (
        normalized.select(kept, new_fingerprint=_digest(normalized._fingerprint, "kept", _array_digest(kept)))
        if len(kept) != total_docs
        else normalized
    )
    cleaned = cleaned.remove_columns(["raw_chars", "chars", "content_hash"])
    pii_counts = dict.fromkeys(PII_KINDS, 0)
    scrub_step = steps["pii"]
    scrub_step.update(documents_in=len(kept), documents_out=len(kept), chars_in=int(chars[kept].sum()))
    if args.scrub_pii:
        cleaned = cleaned.map(
            _scrub_batch,
            batched=True,
            num_proc=_proc_count(args.num_proc, len(cleaned)),
            new_fingerprint=_digest(cleaned._fingerprint, _PIPELINE_VERSION, "pii", _placeholder_signature()),
            desc="scrubbing personal data",
        )
        for kind in PII_KINDS:
            pii_counts[kind] = _column_sum(cleaned, f"pii_{kind}")
        cleaned = cleaned.remove_columns([f"pii_{kind}" for kind in PII_KINDS])
        scrub_step["chars_out"] = int(pc.sum(pc.utf8_length(cleaned.data.column("text"))).as_py())
    else:
        scrub_step["chars_out"] = scrub_step["chars_in"]
    return cleaned, steps, pii_counts


def _placeholder_signature() -> str:
    from wenlm.training.data.pii import pii_placeholders

    return _digest(sorted(pii_placeholders().items()))


def _proc_count(num_proc: int, rows: int) -> int | None:
    # datasets refuses more processes than rows; a single process avoids pool start-up entirely.
    usable = min(num_proc, max(1, rows))
    return usable if usable > 1 else None


def _iter_clean_stream(stream, min_doc_chars: int, dedup: bool, scrub: bool, stats: dict) -> Iterator[dict]:
    from wenlm.training.data.pii import PII_KINDS, scrub_pii

    # A new pass starts fresh: counters describe the latest (possibly partial) pass over the data.  They are
    # reset in place so references handed out earlier (the report) stay live.
    for name in CLEANING_STEPS:
        stats.setdefault(name, {}).update(_empty_step())
    stats.setdefault("pii_counts", {}).update(dict.fromkeys(PII_KINDS, 0))
    seen: set[bytes] = set()
    threshold = max(1, min_doc_chars)
    for example in stream:
        raw = example["text"] or ""
        text = normalize_text(raw)
        _count(stats["normalize"], len(raw), len(text))
        if len(text) < threshold:
            _count(stats["min_doc_chars"], len(text), None)
            continue
        _count(stats["min_doc_chars"], len(text), len(text))
        if dedup:
            key = content_hash(text)
            if key in seen:
                _count(stats["dedup"], len(text), None)
                continue
            seen.add(key)
        _count(stats["dedup"], len(text), len(text))
        if scrub:
            scrubbed, counts = scrub_pii(text)
            for kind in PII_KINDS:
                stats["pii_counts"][kind] += counts[kind]
        else:
            scrubbed = text
        _count(stats["pii"], len(text), len(scrubbed))
        yield {"text": scrubbed}


def _count(step: dict, chars_in: int, chars_out: int | None) -> None:
    step["documents_in"] += 1
    step["chars_in"] += chars_in
    if chars_out is not None:
        step["documents_out"] += 1
        step["chars_out"] += chars_out


# ------------------------------------------------------------------------------------------ splitting


def _hash_fraction(text: str, seed: int) -> float:
    digest = hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"), digest_size=8, key=str(seed).encode()
    ).digest()
    return int.from_bytes(digest, "big") / 2**64


def _iter_stream_part(stream, part: str, kind: str, amount: float, seed: int, max_validation: int | None):
    taken = 0
    for position, example in enumerate(stream):
        if kind == "count":
            wants_validation = position < amount
        else:
            wants_validation = _hash_fraction(example["text"], seed) < amount
        is_validation = wants_validation and (max_validation is None or taken < max_validation)
        taken += int(is_validation)
        if is_validation == (part == "validation"):
            yield example


def split_by_document(
    dataset, validation_split: float, seed: int = 0, max_validation_docs: int | None = None
):
    """Hold out whole documents: return (train, validation), deterministic for a given seed."""
    import datasets

    kind, amount = validation_spec(validation_split)
    if max_validation_docs is not None and max_validation_docs < 1:
        raise ValueError(f"max_validation_docs must be >= 1 or None, got {max_validation_docs}")
    if isinstance(dataset, datasets.IterableDataset):
        parts = []
        for part in ("train", "validation"):
            gen_kwargs = {
                "stream": dataset,
                "part": part,
                "kind": kind,
                "amount": amount,
                "seed": seed,
                "max_validation": max_validation_docs,
            }
            parts.append(
                datasets.IterableDataset.from_generator(
                    _iter_stream_part, features=dataset.features, gen_kwargs=gen_kwargs
                )
            )
        return parts[0], parts[1]
    total = len(dataset)
    wanted = amount if kind == "count" else int(total * amount + 0.5)
    if max_validation_docs is not None:
        wanted = min(wanted, max_validation_docs)
    if wanted < 1:
        raise ValueError(
            f"validation_split={validation_split} of {total} documents gives an empty validation set; use a larger "
            "fraction or an integer count (e.g. --validation_split 1)"
        )
    if wanted >= total:
        raise ValueError(
            f"validation_split={validation_split} would hold out {wanted} of {total} documents and leave none for "
            "training; use a smaller --validation_split or add data"
        )
    rng = np.random.default_rng(seed)
    is_validation = np.zeros(total, dtype=bool)
    is_validation[rng.choice(total, size=wanted, replace=False)] = True
    selection = _array_digest(is_validation)
    train = dataset.select(
        np.flatnonzero(~is_validation), new_fingerprint=_digest(dataset._fingerprint, "train", selection)
    )
    validation = dataset.select(
        np.flatnonzero(is_validation), new_fingerprint=_digest(dataset._fingerprint, "validation", selection)
    )
    return train, validation


# ------------------------------------------------------------------------------ tokenization + packing


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of the tokenizer.json content (plus class and EOS id), which determines every token id produced."""
    serialisable_json = getattr(tokenizer, "serialisable_json", None)
    # wenlm's jieba tokenizer holds a Python pre-tokenizer that to_str() refuses; its class name stands for it.
    content = serialisable_json() if callable(serialisable_json) else tokenizer.backend_tokenizer.to_str()
    return _digest(type(tokenizer).__name__, content, tokenizer.eos_token_id)


def _tokenize_batch(batch: dict, tokenizer, eos_token_id: int, text_column: str) -> dict:
    flat, lengths = _encode_documents(tokenizer, batch[text_column], eos_token_id)
    return {"input_ids": np.split(flat, np.cumsum(lengths)[:-1])}


def _encode_documents(tokenizer, texts: list[str], eos_token_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of the documents with EOS after each, flattened, and every document's length (EOS included).

    Calls the Rust backend directly (it encodes a batch on all cores); ``encode_batch_fast`` skips the
    character offsets that packing never uses.  Going through ``tokenizer(...)`` and per-example Arrow encoding
    cost more than the tokenization itself.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow (Python) tokenizer: no batch encoder to call
        encoded = tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        return _flatten_with_eos(encoded, eos_token_id)
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
    if sum(map(len, texts)) < _JOINED_BELOW_MEAN_CHARS * len(texts):
        joined = _encode_joined(backend, encode, texts, eos_token_id)
        if joined is not None:
            return joined
    return _flatten_with_eos((encoding.ids for encoding in encode(texts, add_special_tokens=False)), eos_token_id)


def _flatten_with_eos(encoded: Iterable[list[int]], eos_token_id: int) -> tuple[np.ndarray, np.ndarray]:
    flat: list[int] = []
    lengths: list[int] = []
    for ids in encoded:
        flat.extend(ids)
        flat.append(eos_token_id)
        lengths.append(len(ids) + 1)
    return np.array(flat, dtype=np.int32), np.array(lengths, dtype=np.int64)


_JOINED_CHARS = 8192
# Joining pays off for short documents only (measured: 1.8x at 11 characters per document, none at 500-900).
_JOINED_BELOW_MEAN_CHARS = 200
_JOINED_CHECK_DOCS = 16


def _encode_joined(backend, encode, texts: list[str], eos_token_id: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Encode runs of documents joined by the EOS text, so one encoded string yields ids, EOS, ids, EOS, ...

    Per-string overhead dominated short documents (a line of poetry): joining ~8k characters per string made
    encoding ~1.8x faster on the Tang poems.  It is exact only when the EOS is an added token matched as is
    (no lstrip/rstrip/single_word/normalisation), since the backend then encodes the pieces between added tokens
    independently.  A pre-tokenizer that treats the first piece of a string specially (Metaspace with
    ``prepend_scheme="first"``) would still differ, so the first documents are also encoded one by one and
    compared; any difference, or a document that itself contains the EOS text, returns None (encode per document).
    """
    added = backend.get_added_tokens_decoder().get(eos_token_id)
    if added is None or added.lstrip or added.rstrip or added.single_word or added.normalized:
        return None
    separator = added.content
    strings: list[str] = []
    run: list[str] = []
    run_chars = 0
    for text in texts:
        run.append(text)
        run_chars += len(text)
        if run_chars >= _JOINED_CHARS:
            strings.append(separator.join(run) + separator)
            run, run_chars = [], 0
    if run:
        strings.append(separator.join(run) + separator)
    flat_ids: list[int] = []
    for encoding in encode(strings, add_special_tokens=False):
        flat_ids.extend(encoding.ids)
    flat = np.array(flat_ids, dtype=np.int32)
    ends = np.flatnonzero(flat == eos_token_id)
    if len(ends) != len(texts):
        return None
    lengths = np.diff(ends, prepend=-1)
    checked = min(len(texts), _JOINED_CHECK_DOCS)
    alone, _ = _flatten_with_eos(
        (encoding.ids for encoding in encode(texts[:checked], add_special_tokens=False)), eos_token_id
    )
    if not np.array_equal(alone, flat[: len(alone)]):
        return None
    return flat, lengths


def _tokenized_features():
    from datasets import Features, List, Value

    return Features({"input_ids": List(Value("int32"))})


def _iter_tokenized_writing(dataset, tokenizer, eos_token_id: int, text_column: str, path: Path):
    """Yield every batch's flat token ids while writing the per-document ids to ``path``, so that packing at
    another block size later reuses them without tokenizing again."""
    # The backend encodes with the GIL released but uses the cores unevenly (about 1.35x on 2 cores here), so
    # the next batch is encoded in a worker thread while this one is written and packed in Python.
    with _arrow_file_writer(path, _tokenized_features()) as writer, ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for texts in itertools.chain(_iter_column_batches(dataset, text_column), [None]):
            encoding = (
                None if texts is None else pool.submit(_encode_documents, tokenizer, texts.to_pylist(), eos_token_id)
            )
            if pending is not None:
                flat, lengths = pending.result()
                offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
                np.cumsum(lengths, out=offsets[1:])
                writer.write_table(pa.table({"input_ids": pa.ListArray.from_arrays(offsets, flat)}))
                yield flat
            pending = encoding


def _require_eos(tokenizer) -> int:
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token; packing appends EOS after every document")
    return tokenizer.eos_token_id


def _packed_features():
    from datasets import Features, List, Value

    return Features({"input_ids": List(Value("int64"))})


def _blocks_table(blocks: np.ndarray) -> pa.Table:
    block_size = blocks.shape[1]
    offsets = pa.array(np.arange(0, blocks.size + 1, block_size, dtype=np.int32))
    return pa.table({"input_ids": pa.ListArray.from_arrays(offsets, pa.array(blocks.reshape(-1)))})


def _iter_token_arrays(tokenized) -> Iterator[np.ndarray]:
    table = tokenized.with_format("arrow")
    for batch in table.iter(batch_size=1000):
        yield batch.column("input_ids").combine_chunks().flatten().to_numpy(zero_copy_only=False)


def _iter_blocks(token_arrays: Iterable[np.ndarray], block_size: int, totals: dict) -> Iterator[np.ndarray]:
    """Concatenate token arrays and cut them into (k, block_size) arrays; only the final remainder is lost."""
    carry = np.empty(0, dtype=np.int64)
    totals.update(tokens=0, blocks=0)
    for tokens in token_arrays:
        totals["tokens"] += len(tokens)
        carry = np.concatenate([carry, tokens.astype(np.int64, copy=False)])
        full = len(carry) // block_size
        if full:
            totals["blocks"] += full
            yield carry[: full * block_size].reshape(full, block_size)
            carry = carry[full * block_size :]
    totals["dropped_remainder_tokens"] = len(carry)


def tokenize_and_pack(
    dataset,
    tokenizer,
    block_size: int,
    cache_dir=None,
    text_column: str = "text",
    stats: dict | None = None,
):
    """Tokenize documents (EOS after each) and pack them into rows of exactly ``block_size`` token ids.

    Map-style datasets are cached under ``cache_dir`` by (dataset fingerprint, tokenizer.json hash,
    block_size): a repeated call loads the packed Arrow file without tokenizing again.  An IterableDataset is
    packed lazily into an IterableDataset.  If ``stats`` is a dict it receives documents, tokens, blocks and
    dropped_remainder_tokens (for streams: filled while the packed stream is consumed).
    """
    import datasets

    if block_size < 2:
        raise ValueError(f"block_size must be at least 2, got {block_size}")
    eos_token_id = _require_eos(tokenizer)
    stats = {} if stats is None else stats
    if isinstance(dataset, datasets.IterableDataset):
        tokenized = dataset.map(
            _tokenize_batch,
            batched=True,
            remove_columns=dataset.column_names or [text_column],
            fn_kwargs={"tokenizer": tokenizer, "eos_token_id": eos_token_id, "text_column": text_column},
        )
        return datasets.IterableDataset.from_generator(
            _iter_stream_blocks,
            features=_packed_features(),
            gen_kwargs={"tokenized": tokenized, "block_size": block_size, "stats": stats},
        )

    cache_root = _resolve_cache_dir(cache_dir) / "packed"
    cache_root.mkdir(parents=True, exist_ok=True)
    tokenized_key = _digest(
        _PIPELINE_VERSION, dataset._fingerprint, tokenizer_fingerprint(tokenizer), text_column
    )
    packed_key = _digest(tokenized_key, block_size)
    packed_path = cache_root / f"packed-{packed_key}.arrow"
    stats_path = cache_root / f"packed-{packed_key}.json"
    if packed_path.exists() and stats_path.exists():
        logger.info("loading packed blocks from cache %s", packed_path)
        stats.update(json.loads(stats_path.read_text()))
        return datasets.Dataset.from_file(str(packed_path))

    tokenized_path = cache_root / f"tokenized-{tokenized_key}.arrow"
    if tokenized_path.exists():
        token_arrays = _iter_token_arrays(datasets.Dataset.from_file(str(tokenized_path)))
    else:
        token_arrays = _iter_tokenized_writing(dataset, tokenizer, eos_token_id, text_column, tokenized_path)
    totals: dict = {}
    blocks = _iter_blocks(token_arrays, block_size, totals)
    _write_arrow_file(packed_path, _packed_features(), (_blocks_table(array) for array in blocks))
    totals["documents"] = len(dataset)
    stats_path.write_text(json.dumps(totals))
    stats.update(totals)
    logger.info(
        "packed %d documents, %d tokens into %d blocks of %d (dropped remainder: %d tokens)",
        totals["documents"],
        totals["tokens"],
        totals["blocks"],
        block_size,
        totals["dropped_remainder_tokens"],
    )
    return datasets.Dataset.from_file(str(packed_path))


def _iter_stream_blocks(tokenized, block_size: int, stats: dict) -> Iterator[dict]:
    documents = 0

    def token_arrays():
        nonlocal documents
        for example in tokenized:
            documents += 1
            yield np.asarray(example["input_ids"], dtype=np.int64)

    totals = stats
    for blocks in _iter_blocks(token_arrays(), block_size, totals):
        for row in blocks:
            yield {"input_ids": row.tolist()}
    stats["documents"] = documents


# -------------------------------------------------------------------------------------- byte counting


def bytes_to_unicode() -> dict[int, str]:
    """The byte -> printable character table used by byte-level BPE (GPT-2 convention)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {byte: chr(byte) for byte in printable}
    shift = 0
    for byte in range(256):
        if byte not in mapping:
            mapping[byte] = chr(256 + shift)
            shift += 1
    return mapping


def _uses_byte_level(tokenizer) -> bool:
    def contains_byte_level(component) -> bool:
        if isinstance(component, dict):
            if component.get("type") == "ByteLevel":
                return True
            return any(contains_byte_level(value) for value in component.values())
        if isinstance(component, list):
            return any(contains_byte_level(value) for value in component)
        return False

    decoder = tokenizer.backend_tokenizer.decoder
    # Only the decoder's JSON: serialising the whole tokenizer took longer than the rest of this check.
    return decoder is not None and contains_byte_level(json.loads(decoder.__getstate__()))


def token_byte_lengths(tokenizer) -> np.ndarray:
    """UTF-8 byte length of the text each token id stands for (special tokens: 0)."""
    size = len(tokenizer)
    lengths = np.zeros(size, dtype=np.int64)
    special_ids = set(tokenizer.all_special_ids)
    added = {token_id: added_token for token_id, added_token in tokenizer.added_tokens_decoder.items()}
    byte_level = _uses_byte_level(tokenizer)
    byte_alphabet = set(bytes_to_unicode().values())
    # One vocabulary dict instead of a Python-level id -> token call per id: this runs in every data preparation.
    token_of_id = {token_id: token for token, token_id in tokenizer.backend_tokenizer.get_vocab().items()}
    for token_id in range(size):
        if token_id in special_ids or (token_id in added and added[token_id].special):
            continue
        if token_id in added:
            # Added (non-special) tokens are matched on raw text, not on the byte alphabet.
            lengths[token_id] = len(added[token_id].content.encode("utf-8"))
            continue
        token = token_of_id.get(token_id)
        if token is None:
            continue
        if byte_level and byte_alphabet.issuperset(token):
            lengths[token_id] = len(token)
        else:
            lengths[token_id] = len(
                tokenizer.decode([token_id], clean_up_tokenization_spaces=False).encode("utf-8")
            )
    return lengths


def count_bytes(packed_dataset, byte_lengths: np.ndarray, skip_first: bool = True) -> int:
    """UTF-8 bytes of the tokens a causal LM predicts (positions 1..n-1 of each block with ``skip_first``).

    Bits per byte = summed next-token loss in nats / count_bytes(...) / ln 2.
    """
    import datasets

    start = 1 if skip_first else 0
    total = 0
    if isinstance(packed_dataset, datasets.IterableDataset):
        for example in packed_dataset:
            total += int(byte_lengths[np.asarray(example["input_ids"][start:], dtype=np.int64)].sum())
        return total
    for batch in packed_dataset.with_format("numpy").iter(batch_size=1024):
        ids = np.asarray(batch["input_ids"])
        if ids.ndim == 2:
            total += int(byte_lengths[ids[:, start:]].sum())
        else:  # rows of unequal length come back as an object array
            total += sum(int(byte_lengths[np.asarray(row[start:], dtype=np.int64)].sum()) for row in ids)
    return total


# ------------------------------------------------------------------------------------------- pipeline


def _iter_texts(dataset, limit: int | None = None) -> Iterator[str]:
    import datasets

    if isinstance(dataset, datasets.IterableDataset):
        texts = (example["text"] for example in dataset)
        yield from itertools.islice(texts, limit)
        return
    for batch in dataset.iter(batch_size=1000):
        yield from batch["text"]


def _first(dataset) -> Any:
    return next(iter(dataset), None)


def prepare_datasets(
    data_args: DataArguments, tokenizer=None, tokenizer_trainer: Callable[[Iterable[str]], Any] | None = None
) -> PreparedData:
    """Load, clean, split, (train a tokenizer,) tokenize and pack; see the module docstring."""
    import datasets

    if tokenizer is None and tokenizer_trainer is None:
        raise ValueError("prepare_datasets needs a tokenizer or a tokenizer_trainer")
    args = data_args
    cache_dir = _resolve_cache_dir(args.cache_dir)
    sources = resolve_sources(args.train_files)
    utf8_by_file: dict[str, int] = {}
    parts = []
    for source in sources:
        parts.extend(_load_source(source, args, cache_dir, utf8_by_file))
    raw = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    report: dict[str, Any] = {
        "streaming": args.streaming,
        "sources": [{"spec": s.spec, "kind": s.kind, "files": s.files} for s in sources],
        "invalid_utf8_bytes": sum(utf8_by_file.values()),
        "invalid_utf8_by_file": utf8_by_file,
        "block_size": args.block_size,
        "arguments": asdict(args),
    }

    if args.streaming:
        cleaning_stats: dict = {}
        cleaned = datasets.IterableDataset.from_generator(
            _iter_clean_stream,
            features=_text_features(),
            gen_kwargs={
                "stream": raw,
                "min_doc_chars": args.min_doc_chars,
                "dedup": args.dedup,
                "scrub": args.scrub_pii,
                "stats": cleaning_stats,
            },
        )
        if _first(cleaned) is None:
            raise ValueError(
                "the corpus is empty after cleaning (no document has at least "
                f"min_doc_chars={max(1, args.min_doc_chars)} characters); check --train_files and --text_column"
            )
        # Live counters of the most recent pass over the stream (they stay in the process that iterates).
        report["cleaning"] = {name: cleaning_stats[name] for name in CLEANING_STEPS}
        report["pii"] = cleaning_stats["pii_counts"]
    else:
        cleaned, steps, pii_counts = clean_dataset(raw, args)
        report["cleaning"] = steps
        report["pii"] = pii_counts
    for step_name in CLEANING_STEPS:
        if not args.streaming:
            step = report["cleaning"][step_name]
            logger.info(
                "cleaning %-13s documents %d -> %d, characters %d -> %d",
                step_name,
                step["documents_in"],
                step["documents_out"],
                step["chars_in"],
                step["chars_out"],
            )

    train_text, validation_text = split_by_document(
        cleaned, args.validation_split, seed=args.corpus_seed, max_validation_docs=args.max_validation_docs
    )
    if args.streaming:
        if _first(validation_text) is None:
            raise ValueError(
                f"validation_split={args.validation_split} selected no validation documents; use a larger value"
            )
        if _first(train_text) is None:
            raise ValueError(
                f"validation_split={args.validation_split} leaves no training documents; use a smaller value"
            )

    if tokenizer is None:
        sample_limit = args.tokenizer_sample_docs if args.streaming else None
        logger.info("training the tokenizer on %s training documents", sample_limit or "all")
        tokenizer = tokenizer_trainer(_iter_texts(train_text, sample_limit))

    train_stats: dict = {}
    validation_stats: dict = {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The bytes-per-token table needs only the tokenizer: it is built in Python while the Rust backend
        # encodes with the GIL released, instead of after packing (a tenth of the time on a 1.6 MB corpus).
        byte_lengths_future = pool.submit(token_byte_lengths, tokenizer)
        train = tokenize_and_pack(train_text, tokenizer, args.block_size, cache_dir, stats=train_stats)
        validation = tokenize_and_pack(
            validation_text, tokenizer, args.block_size, cache_dir, stats=validation_stats
        )
        byte_lengths = byte_lengths_future.result()
    for name, packed, split_stats in (
        ("training", train, train_stats),
        ("validation", validation, validation_stats),
    ):
        has_block = _first(packed) is not None if args.streaming else split_stats["blocks"] > 0
        if not has_block:
            tokens = split_stats.get("tokens", "fewer")
            raise ValueError(
                f"the {name} data has {tokens} tokens, less than one block of block_size={args.block_size}; "
                "use a smaller --block_size or more data"
                + (" (or a larger --validation_split)" if name == "validation" else "")
            )

    if args.streaming:
        report["documents"] = report["tokens"] = report["blocks"] = report["bytes"] = None
        report["dropped_remainder_tokens"] = None
        report["note"] = "streaming: per-split counts are only known after a full pass over the stream"
    else:
        report["documents"] = {"train": len(train_text), "validation": len(validation_text)}
        report["tokens"] = {"train": train_stats["tokens"], "validation": validation_stats["tokens"]}
        report["blocks"] = {"train": train_stats["blocks"], "validation": validation_stats["blocks"]}
        report["dropped_remainder_tokens"] = {
            "train": train_stats["dropped_remainder_tokens"],
            "validation": validation_stats["dropped_remainder_tokens"],
        }
        # Bytes of the predicted tokens: the bits-per-byte denominator for each split.
        report["bytes"] = {
            "train": count_bytes(train, byte_lengths),
            "validation": count_bytes(validation, byte_lengths),
        }
        logger.info(
            "prepared %s",
            json.dumps({key: report[key] for key in ("documents", "tokens", "blocks", "bytes")}),
        )
    return PreparedData(train_text, validation_text, train, validation, report, tokenizer)
