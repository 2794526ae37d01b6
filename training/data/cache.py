"""The data pipeline's cache: content digests that key its entries, the cache folder, and Arrow files written in
whole batches and published atomically."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
from datasets import Features, Value
from datasets.arrow_writer import ArrowWriter

# Bump when a reader, a cleaning rule or the packing layout changes, so old cache entries are not reused.
PIPELINE_VERSION = "wenlm-data-2"
ARROW_BATCH_ROWS = 10_000
TEXT_FEATURES = Features({"text": Value("string")})


def digest(*parts: Any) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    for part in parts:
        hasher.update(repr(part).encode("utf-8"))
        hasher.update(b"\x00")
    return hasher.hexdigest()


def content_hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def array_digest(values: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(values).tobytes(), digest_size=16).hexdigest()


def file_signature(path: str) -> tuple:
    stat = os.stat(path)
    return (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


def default_cache_dir() -> Path:
    return Path(datasets.config.HF_DATASETS_CACHE) / "wenlm"


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def iter_column_batches(dataset, column: str) -> Iterator[pa.Array]:
    """A map-style Dataset's column as Arrow arrays of up to ARROW_BATCH_ROWS values.

    After ``select`` a Dataset reads rows through an indices mapping, which datasets gathers one row at a time
    in Python; a single Arrow ``take`` per batch is much faster.
    """
    table = dataset.data.table.select([column])
    indices = dataset._indices.column(0) if dataset._indices is not None else None
    rows = len(indices) if indices is not None else table.num_rows
    for start in range(0, rows, ARROW_BATCH_ROWS):
        stop = min(start + ARROW_BATCH_ROWS, rows)
        part = (
            table.slice(start, stop - start)
            if indices is None
            else table.take(indices.slice(start, stop - start))
        )
        yield part.column(column).combine_chunks()


@contextlib.contextmanager
def arrow_file_writer(path: Path, features) -> Iterator[Any]:
    """An ArrowWriter whose file is published at ``path`` only when the block completes: an interrupted run
    leaves no truncated cache entry, and a per-process temporary name lets parallel launchers (one process per
    GPU) write the same entry at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_path = path.with_suffix(f".{os.getpid()}.partial")
    try:
        with ArrowWriter(features=features, path=str(partial_path)) as writer:
            yield writer
            writer.finalize()
        os.replace(partial_path, path)
    finally:
        partial_path.unlink(missing_ok=True)


def write_arrow_file(path: Path, features, tables: Iterable[pa.Table]) -> None:
    with arrow_file_writer(path, features) as writer:
        for table in tables:
            writer.write_table(table)


def materialise_texts(texts: Iterable[str], path: Path) -> datasets.Dataset:
    """A memory-mapped Dataset of the documents, written in batches of whole Arrow arrays: datasets'
    ``from_generator`` encodes every example in Python, which made loading slower than tokenizing."""
    if not path.exists():
        tables = (
            pa.table({"text": pa.array(batch, pa.string())}) for batch in batches(texts, ARROW_BATCH_ROWS)
        )
        write_arrow_file(path, TEXT_FEATURES, tables)
    return datasets.Dataset.from_file(str(path))
