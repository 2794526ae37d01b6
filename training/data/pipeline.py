"""Pretraining data pipeline: load text sources, clean them, hold out validation documents, train or take a
tokenizer, and tokenize + pack the documents into fixed-length blocks for causal LM training.

Pipeline (``prepare_datasets``)::

    sources -> UTF-8 check -> normalise line endings + strip -> drop short docs -> exact de-dup
            -> optional PII scrubbing -> split by document -> [train tokenizer] -> tokenize + EOS -> pack

Each step has its module: ``sources`` (resolving and reading, UTF-8; files are opened by ``reading``),
``cleaning`` (normalise, min chars, de-dup, PII via ``pii``), ``splitting``, ``packing`` (tokenize, pack, bytes
per token) and ``cache`` (digests, Arrow files); this module runs them in order and assembles the report.

Decisions worth knowing:

* Every step is counted in ``PreparedData.report`` (documents and characters in/out per cleaning step,
  invalid UTF-8 bytes per file, PII replacements per kind, documents/tokens/blocks/bytes per split, tokens
  dropped as the packing remainder, documents whose text holds a special-token string such as ``<|eos|>``).
* User text stays text: a special-token string inside a document is encoded as its characters, never as the
  control id (packing alone inserts EOS), so a corpus that quotes ``<|user|>`` cannot forge chat turns.
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

import itertools
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import datasets

from wenlm.training.args import DataArguments
from wenlm.training.data.cache import resolve_cache_dir
from wenlm.training.data.cleaning import CLEANING_STEPS, clean_dataset, clean_stream
from wenlm.training.data.packing import count_bytes, token_byte_lengths, tokenize_and_pack
from wenlm.training.data.sources import read_sources, read_txt_documents, resolve_sources
from wenlm.training.data.splitting import split_by_document

logger = logging.getLogger(__name__)

# Re-exported: the pipeline's entry points for callers that import them from here.
__all__ = [
    "PreparedData",
    "count_bytes",
    "prepare_datasets",
    "read_corpus",
    "read_txt_documents",
    "resolve_sources",
    "split_by_document",
    "token_byte_lengths",
    "tokenize_and_pack",
]


@dataclass
class PreparedData:
    train_text: Any
    validation_text: Any
    train: Any
    validation: Any
    report: dict
    tokenizer: Any = None


def _iter_texts(dataset, limit: int | None = None) -> Iterator[str]:
    if isinstance(dataset, datasets.IterableDataset):
        texts = (example["text"] for example in dataset)
        yield from itertools.islice(texts, limit)
        return
    for batch in dataset.iter(batch_size=1000):
        yield from batch["text"]


def _first(dataset) -> Any:
    return next(iter(dataset), None)


def read_corpus(args: DataArguments) -> None:
    """Read and check every training source (into the cache, where `prepare_datasets` finds it again), for a
    command that must refuse an unreadable corpus before it writes anything of its own."""
    read_sources(args, resolve_cache_dir(args.cache_dir))


def _load_raw(args: DataArguments, report: dict):
    """Every source concatenated into one dataset with a 'text' column; sources and UTF-8 counts go to ``report``."""
    sources, parts, utf8_by_file = read_sources(args, resolve_cache_dir(args.cache_dir))
    report.update(
        sources=[{"spec": s.spec, "kind": s.kind, "files": s.files} for s in sources],
        invalid_utf8_bytes=sum(utf8_by_file.values()),
        invalid_utf8_by_file=utf8_by_file,
    )
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def _clean(raw, args: DataArguments, report: dict):
    if args.streaming:
        cleaning_stats: dict = {}
        cleaned = clean_stream(raw, args, cleaning_stats)
        if _first(cleaned) is None:
            raise ValueError(
                "the corpus is empty after cleaning (no document has at least "
                f"min_doc_chars={max(1, args.min_doc_chars)} characters); check --train_files and --text_column"
            )
        # Live counters of the most recent pass over the stream (they stay in the process that iterates).
        report["cleaning"] = {name: cleaning_stats[name] for name in CLEANING_STEPS}
        report["pii"] = cleaning_stats["pii_counts"]
        return cleaned
    cleaned, steps, pii_counts = clean_dataset(raw, args)
    report["cleaning"] = steps
    report["pii"] = pii_counts
    for name in CLEANING_STEPS:
        step = steps[name]
        logger.info(
            "cleaning %-13s documents %d -> %d, characters %d -> %d",
            name,
            step["documents_in"],
            step["documents_out"],
            step["chars_in"],
            step["chars_out"],
        )
    return cleaned


def _split(cleaned, args: DataArguments):
    train_text, validation_text = split_by_document(
        cleaned, args.validation_split, seed=args.corpus_seed, max_validation_docs=args.max_validation_docs
    )
    # A split map-style dataset is checked by split_by_document; a stream only shows its parts by reading them.
    if args.streaming and _first(validation_text) is None:
        raise ValueError(
            f"validation_split={args.validation_split} selected no validation documents; use a larger value"
        )
    if args.streaming and _first(train_text) is None:
        raise ValueError(
            f"validation_split={args.validation_split} leaves no training documents; use a smaller value"
        )
    return train_text, validation_text


def _pack_splits(train_text, validation_text, tokenizer, args: DataArguments) -> tuple:
    """(train, validation, train_stats, validation_stats, byte_lengths); each split must hold a block."""
    cache_dir = resolve_cache_dir(args.cache_dir)
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
    return train, validation, train_stats, validation_stats, byte_lengths


def _split_counts(report: dict, texts: tuple, packed: tuple, stats: tuple, byte_lengths) -> None:
    """Per-split documents, tokens, blocks, remainders and predicted bytes (the bits-per-byte denominator)."""
    splits = ("train", "validation")
    report["documents"] = {name: len(text) for name, text in zip(splits, texts)}
    for key in ("tokens", "blocks", "dropped_remainder_tokens", "special_token_strings_in_text"):
        report[key] = {name: split_stats[key] for name, split_stats in zip(splits, stats)}
    report["bytes"] = {name: count_bytes(blocks, byte_lengths) for name, blocks in zip(splits, packed)}
    logger.info(
        "prepared %s", json.dumps({key: report[key] for key in ("documents", "tokens", "blocks", "bytes")})
    )


def prepare_datasets(
    data_args: DataArguments,
    tokenizer=None,
    tokenizer_trainer: Callable[[Iterable[str]], Any] | None = None,
    edit_raw: Callable[[Any], Any] | None = None,
) -> PreparedData:
    """Load, clean, split, (train a tokenizer,) tokenize and pack; see the module docstring. `edit_raw` (e.g. the
    canary inserter of `wenlm pretrain --canaries`) changes the loaded documents before cleaning, so that
    de-duplication and PII scrubbing act on what it adds as on any other text."""
    if tokenizer is None and tokenizer_trainer is None:
        raise ValueError("prepare_datasets needs a tokenizer or a tokenizer_trainer")
    args = data_args
    report: dict[str, Any] = {"streaming": args.streaming}
    raw = _load_raw(args, report)
    if edit_raw is not None:
        raw = edit_raw(raw)
    report.update(block_size=args.block_size, arguments=asdict(args))
    train_text, validation_text = _split(_clean(raw, args, report), args)
    if tokenizer is None:
        sample_limit = args.tokenizer_sample_docs if args.streaming else None
        logger.info("training the tokenizer on %s training documents", sample_limit or "all")
        tokenizer = tokenizer_trainer(_iter_texts(train_text, sample_limit))
    train, validation, *stats, byte_lengths = _pack_splits(train_text, validation_text, tokenizer, args)
    if args.streaming:
        for key in (
            "documents",
            "tokens",
            "blocks",
            "bytes",
            "dropped_remainder_tokens",
            "special_token_strings_in_text",
        ):
            report[key] = None
        report["note"] = "streaming: per-split counts are only known after a full pass over the stream"
    else:
        _split_counts(report, (train_text, validation_text), (train, validation), tuple(stats), byte_lengths)
    return PreparedData(train_text, validation_text, train, validation, report, tokenizer)
