"""Cleaning of pretraining documents, counted step by step: normalise line endings and strip, drop documents
shorter than `--min_doc_chars`, drop exact duplicates (by content hash, keeping the first), and optionally scrub
personal data (see pii.py). Map-style datasets are cleaned in batched Arrow passes; streams document by document
with live counters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Features, Value

from wenlm.training.args import DataArguments
from wenlm.training.data.cache import (
    PIPELINE_VERSION,
    TEXT_FEATURES,
    array_digest,
    content_hash,
    digest,
    iter_column_batches,
    resolve_cache_dir,
    write_arrow_file,
)
from wenlm.training.data.pii import PII_KINDS, pii_placeholders, scrub_pii

CLEANING_STEPS = ("normalize", "min_doc_chars", "dedup", "pii")
_NORMALIZED_FEATURES = Features(
    {
        "text": Value("string"),
        "raw_chars": Value("int64"),
        "chars": Value("int64"),
        "content_hash": Value("binary"),
    }
)


def normalize_text(text: str | None) -> str:
    if not text:
        return ""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _empty_step() -> dict:
    return {"documents_in": 0, "documents_out": 0, "chars_in": 0, "chars_out": 0}


def _step(documents_in: int, documents_out: int, chars_in: int, chars_out: int) -> dict:
    return {
        "documents_in": documents_in,
        "documents_out": documents_out,
        "chars_in": chars_in,
        "chars_out": chars_out,
    }


# ------------------------------------------------------------------------------------ map-style datasets


def _normalized_table(raw: pa.Array) -> pa.Table:
    texts = [normalize_text(text) for text in raw.to_pylist()]
    normalized = pa.array(texts, pa.string())
    return pa.table(
        {
            "text": normalized,
            "raw_chars": pc.fill_null(pc.utf8_length(raw), 0).cast(pa.int64()),
            "chars": pc.utf8_length(normalized).cast(pa.int64()),
            "content_hash": pa.array([content_hash(text) for text in texts], pa.binary(16)),
        }
    )


def _normalized_dataset(dataset, cache_dir: Path):
    """Normalised documents with their raw/normalised lengths and content hashes, one batched pass written as
    whole Arrow arrays (a per-example ``datasets.map`` cost more than tokenizing) and cached by fingerprint."""
    key = digest(dataset._fingerprint, PIPELINE_VERSION, "normalize")
    path = cache_dir / "cleaned" / f"normalized-{key}.arrow"
    if not path.exists():
        schema = _NORMALIZED_FEATURES.arrow_schema
        tables = (_normalized_table(texts) for texts in iter_column_batches(dataset, "text"))
        write_arrow_file(path, _NORMALIZED_FEATURES, (table.cast(schema) for table in tables))
    return datasets.Dataset.from_file(str(path))


def _scrub_batch(batch: dict) -> dict:
    output: dict[str, list] = {"text": [], **{f"pii_{kind}": [] for kind in PII_KINDS}}
    for text in batch["text"]:
        scrubbed, counts = scrub_pii(text)
        output["text"].append(scrubbed)
        for kind in PII_KINDS:
            output[f"pii_{kind}"].append(counts[kind])
    return output


def _column_sum(dataset, column: str) -> int:
    return int(pc.sum(dataset.data.column(column)).as_py() or 0)


def _first_of_each_hash(hashes: list[bytes], candidates: np.ndarray) -> np.ndarray:
    seen: set[bytes] = set()
    unique = []
    for index in candidates.tolist():
        if hashes[index] not in seen:
            seen.add(hashes[index])
            unique.append(index)
    return np.asarray(unique, dtype=np.int64)


def _proc_count(num_proc: int, rows: int) -> int | None:
    # datasets refuses more processes than rows; a single process avoids pool start-up entirely.
    usable = min(num_proc, max(1, rows))
    return usable if usable > 1 else None


def _scrub_dataset(cleaned, num_proc: int) -> tuple[Any, dict]:
    placeholders = digest(sorted(pii_placeholders().items()))
    cleaned = cleaned.map(
        _scrub_batch,
        batched=True,
        num_proc=_proc_count(num_proc, len(cleaned)),
        new_fingerprint=digest(cleaned._fingerprint, PIPELINE_VERSION, "pii", placeholders),
        desc="scrubbing personal data",
    )
    pii_counts = {kind: _column_sum(cleaned, f"pii_{kind}") for kind in PII_KINDS}
    return cleaned.remove_columns([f"pii_{kind}" for kind in PII_KINDS]), pii_counts


def clean_dataset(dataset, args: DataArguments) -> tuple[Any, dict, dict]:
    """Clean a map-style Dataset with a 'text' column; return (dataset, step_counts, pii_counts)."""
    normalized = _normalized_dataset(dataset, resolve_cache_dir(args.cache_dir))
    chars = normalized.data.column("chars").to_numpy()
    total_docs = len(normalized)
    long_enough = np.flatnonzero(chars >= max(1, args.min_doc_chars))
    hashes = normalized.data.column("content_hash").to_pylist() if args.dedup else None
    kept = _first_of_each_hash(hashes, long_enough) if args.dedup else long_enough
    all_chars, long_chars, kept_chars = (
        int(chars.sum()),
        int(chars[long_enough].sum()),
        int(chars[kept].sum()),
    )
    steps = {
        "normalize": _step(total_docs, total_docs, _column_sum(normalized, "raw_chars"), all_chars),
        "min_doc_chars": _step(total_docs, len(long_enough), all_chars, long_chars),
        "dedup": _step(len(long_enough), len(kept), long_chars, kept_chars),
    }
    if len(kept) == 0:
        raise ValueError(
            f"the corpus is empty after cleaning: {total_docs} documents read, "
            f"{total_docs - len(long_enough)} shorter than min_doc_chars={max(1, args.min_doc_chars)} characters "
            f"(after stripping), {len(long_enough) - len(kept)} exact duplicates; check --train_files, "
            "--text_column, --txt_document_mode and --min_doc_chars"
        )
    # An explicit fingerprint: by default datasets hashes the whole index list, which took seconds.
    cleaned = (
        normalized.select(kept, new_fingerprint=digest(normalized._fingerprint, "kept", array_digest(kept)))
        if len(kept) != total_docs
        else normalized
    )
    cleaned = cleaned.remove_columns(["raw_chars", "chars", "content_hash"])
    pii_counts = dict.fromkeys(PII_KINDS, 0)
    scrubbed_chars = kept_chars
    if args.scrub_pii:
        cleaned, pii_counts = _scrub_dataset(cleaned, args.num_proc)
        scrubbed_chars = int(pc.sum(pc.utf8_length(cleaned.data.column("text"))).as_py())
    steps["pii"] = _step(len(kept), len(kept), kept_chars, scrubbed_chars)
    return cleaned, steps, pii_counts


# ------------------------------------------------------------------------------------------------ streams


def _count(step: dict, chars_in: int, chars_out: int | None) -> None:
    step["documents_in"] += 1
    step["chars_in"] += chars_in
    if chars_out is not None:
        step["documents_out"] += 1
        step["chars_out"] += chars_out


def _iter_clean_stream(stream, min_doc_chars: int, dedup: bool, scrub: bool, stats: dict) -> Iterator[dict]:
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
        scrubbed = text
        if scrub:
            scrubbed, counts = scrub_pii(text)
            for kind in PII_KINDS:
                stats["pii_counts"][kind] += counts[kind]
        _count(stats["pii"], len(text), len(scrubbed))
        yield {"text": scrubbed}


def clean_stream(stream, args: DataArguments, stats: dict):
    """The cleaned documents of an IterableDataset, lazily; ``stats`` holds the counters of the latest pass."""
    return datasets.IterableDataset.from_generator(
        _iter_clean_stream,
        features=TEXT_FEATURES,
        gen_kwargs={
            "stream": stream,
            "min_doc_chars": args.min_doc_chars,
            "dedup": args.dedup,
            "scrub": args.scrub_pii,
            "stats": stats,
        },
    )
