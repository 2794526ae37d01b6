"""Tokenizing and packing: documents -> token ids with EOS after each -> one stream cut into rows of exactly
``block_size`` tokens (only the final remainder is dropped), cached by (dataset, tokenizer, block size); and the
UTF-8 bytes each token stands for, the denominator of bits per byte."""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
from datasets import Features, List, Value
from tokenizers import pre_tokenizers

from wenlm.training.data.cache import (
    PIPELINE_VERSION,
    arrow_file_writer,
    digest,
    iter_column_batches,
    resolve_cache_dir,
    write_arrow_file,
)

logger = logging.getLogger(__name__)

_TOKENIZED_FEATURES = Features({"input_ids": List(Value("int32"))})
_PACKED_FEATURES = Features({"input_ids": List(Value("int64"))})
# The characters byte-level BPE writes bytes as: such a token's text is one byte per character.
_BYTE_LEVEL_ALPHABET = frozenset(pre_tokenizers.ByteLevel.alphabet())


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of the tokenizer.json content (plus class and EOS id), which determines every token id produced."""
    serialisable_json = getattr(tokenizer, "serialisable_json", None)
    # wenlm's jieba tokenizer holds a Python pre-tokenizer that to_str() refuses; its class name stands for it.
    content = serialisable_json() if callable(serialisable_json) else tokenizer.backend_tokenizer.to_str()
    return digest(type(tokenizer).__name__, content, tokenizer.eos_token_id)


def _tokenize_batch(batch: dict, tokenizer, eos_token_id: int, text_column: str) -> dict:
    flat, lengths, _ = _encode_documents(tokenizer, batch[text_column], eos_token_id)
    found = special_strings_pattern(tokenizer)
    marks = [bool(found and found.search(text)) for text in batch[text_column]]
    return {"input_ids": np.split(flat, np.cumsum(lengths)[:-1]), _SPECIAL_TEXT_COLUMN: marks}


_SPECIAL_TEXT_COLUMN = "special_token_strings_in_text"
# Encoding with special tokens read as text flips a flag on the shared Rust tokenizer (transformers' own
# ``split_special_tokens`` does the same); the lock keeps two encodes from seeing each other's setting.
_FLAG_LOCK = threading.Lock()


def special_strings_pattern(tokenizer) -> re.Pattern | None:
    """A regex matching any special-token string (``<|eos|>``, ``<|user|>``, ...); None if there are none.

    Non-special added tokens (the PII placeholders) are left out: cleaning writes them into the text on purpose.
    """
    contents = sorted(
        {
            token.content
            for token in tokenizer.added_tokens_decoder.values()
            if token.special and token.content
        },
        key=len,
        reverse=True,
    )
    return re.compile("|".join(map(re.escape, contents))) if contents else None


def _encode_as_text(backend, encode, strings: list[str], specials_as_text: bool) -> list[list[int]]:
    with _FLAG_LOCK:
        previous = backend.encode_special_tokens
        backend.encode_special_tokens = specials_as_text
        try:
            return [encoding.ids for encoding in encode(strings, add_special_tokens=False)]
        finally:
            backend.encode_special_tokens = previous


def _encode_documents(tokenizer, texts: list[str], eos_token_id: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Token ids of the documents with EOS after each, flattened; every document's length (EOS included); and
    how many documents contain a special-token string.

    User text stays text: a document that says ``<|eos|>`` or ``<|user|>`` is encoded as those characters,
    never as the control ids; only packing inserts EOS.  Calls the Rust backend directly (it encodes a batch
    on all cores); ``encode_batch_fast`` skips the character offsets that packing never uses.  Going through
    ``tokenizer(...)`` and per-example Arrow encoding cost more than the tokenization itself.
    """
    found = special_strings_pattern(tokenizer)
    special_docs = 0 if found is None else sum(1 for text in texts if found.search(text))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow (Python) tokenizer: no batch encoder to call
        encoded = tokenizer(
            texts, add_special_tokens=False, return_attention_mask=False, split_special_tokens=True
        )["input_ids"]
        return (*_flatten_with_eos(encoded, eos_token_id), special_docs)
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
    # Joining is exact only when no document can produce a special token: then matching special tokens
    # finds the separators and nothing else.
    if special_docs == 0 and sum(map(len, texts)) < _JOINED_BELOW_MEAN_CHARS * len(texts):
        joined = _encode_joined(backend, encode, texts, eos_token_id)
        if joined is not None:
            return (*joined, 0)
    encoded = _encode_as_text(backend, encode, texts, specials_as_text=True)
    return (*_flatten_with_eos(encoded, eos_token_id), special_docs)


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


def _encode_joined(
    backend, encode, texts: list[str], eos_token_id: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Encode runs of documents joined by the EOS text, so one encoded string yields ids, EOS, ids, EOS, ...

    Per-string overhead dominated short documents (a line of poetry): joining ~8k characters per string made
    encoding ~1.8x faster on the Tang poems.  The caller joins only documents without any special-token
    string.  It is exact only when the EOS is an added token matched as is (no lstrip/rstrip/single_word/
    normalisation) and no special token is matched on normalised text, since the backend then encodes the
    pieces between added tokens independently.  A pre-tokenizer that treats the first piece of a string
    specially (Metaspace with ``prepend_scheme="first"``) would still differ, so the first documents are also
    encoded one by one and compared; any difference, or a special token matched across a document boundary
    (the EOS count is then wrong), returns None (encode per document).
    """
    added_tokens = backend.get_added_tokens_decoder()
    added = added_tokens.get(eos_token_id)
    if added is None or added.lstrip or added.rstrip or added.single_word or added.normalized:
        return None
    if any(token.special and token.normalized for token in added_tokens.values()):
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
    for ids in _encode_as_text(backend, encode, strings, specials_as_text=False):
        flat_ids.extend(ids)
    flat = np.array(flat_ids, dtype=np.int32)
    ends = np.flatnonzero(flat == eos_token_id)
    if len(ends) != len(texts):
        return None
    lengths = np.diff(ends, prepend=-1)
    checked = min(len(texts), _JOINED_CHECK_DOCS)
    alone, _ = _flatten_with_eos(
        _encode_as_text(backend, encode, texts[:checked], specials_as_text=True), eos_token_id
    )
    if not np.array_equal(alone, flat[: len(alone)]):
        return None
    return flat, lengths


def _iter_tokenized_writing(
    dataset, tokenizer, eos_token_id: int, text_column: str, path: Path, counts: dict
):
    """Yield every batch's flat token ids while writing the per-document ids to ``path``, so that packing at
    another block size later reuses them without tokenizing again; the documents holding a special-token
    string are counted into ``counts`` and written next to ``path`` when the file is complete."""
    counts[_SPECIAL_TEXT_COLUMN] = 0
    # The backend encodes with the GIL released but uses the cores unevenly (about 1.35x on 2 cores here), so
    # the next batch is encoded in a worker thread while this one is written and packed in Python.
    with arrow_file_writer(path, _TOKENIZED_FEATURES) as writer, ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for texts in itertools.chain(iter_column_batches(dataset, text_column), [None]):
            encoding = (
                None
                if texts is None
                else pool.submit(_encode_documents, tokenizer, texts.to_pylist(), eos_token_id)
            )
            if pending is not None:
                flat, lengths, special_docs = pending.result()
                counts[_SPECIAL_TEXT_COLUMN] += special_docs
                offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
                np.cumsum(lengths, out=offsets[1:])
                writer.write_table(pa.table({"input_ids": pa.ListArray.from_arrays(offsets, flat)}))
                yield flat
            pending = encoding
    path.with_suffix(".json").write_text(json.dumps(counts))


def _require_eos(tokenizer) -> int:
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token; packing appends EOS after every document")
    return tokenizer.eos_token_id


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
    packed lazily into an IterableDataset.  If ``stats`` is a dict it receives documents, tokens, blocks,
    dropped_remainder_tokens and special_token_strings_in_text (documents whose text holds a special-token
    string, encoded as text) (for streams: filled while the packed stream is consumed).
    """
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
            features=_PACKED_FEATURES,
            gen_kwargs={"tokenized": tokenized, "block_size": block_size, "stats": stats},
        )

    cache_root = resolve_cache_dir(cache_dir) / "packed"
    cache_root.mkdir(parents=True, exist_ok=True)
    # "special-tokens-as-text": entries written before user text stopped being read as control tokens are stale.
    tokenized_key = digest(
        PIPELINE_VERSION,
        "special-tokens-as-text",
        dataset._fingerprint,
        tokenizer_fingerprint(tokenizer),
        text_column,
    )
    packed_key = digest(tokenized_key, block_size)
    packed_path = cache_root / f"packed-{packed_key}.arrow"
    stats_path = cache_root / f"packed-{packed_key}.json"
    if packed_path.exists() and stats_path.exists():
        logger.info("loading packed blocks from cache %s", packed_path)
        stats.update(json.loads(stats_path.read_text()))
        return datasets.Dataset.from_file(str(packed_path))

    tokenized_path = cache_root / f"tokenized-{tokenized_key}.arrow"
    counts: dict = {}
    if tokenized_path.exists() and tokenized_path.with_suffix(".json").exists():
        counts.update(json.loads(tokenized_path.with_suffix(".json").read_text()))
        token_arrays = _iter_token_arrays(datasets.Dataset.from_file(str(tokenized_path)))
    else:
        token_arrays = _iter_tokenized_writing(
            dataset, tokenizer, eos_token_id, text_column, tokenized_path, counts
        )
    totals: dict = {}
    blocks = _iter_blocks(token_arrays, block_size, totals)
    write_arrow_file(packed_path, _PACKED_FEATURES, (_blocks_table(array) for array in blocks))
    totals.update(counts)
    if totals[_SPECIAL_TEXT_COLUMN]:
        logger.warning(
            "%d documents contain special-token strings such as %s; they were encoded as ordinary text",
            totals[_SPECIAL_TEXT_COLUMN],
            tokenizer.eos_token,
        )
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
    stats[_SPECIAL_TEXT_COLUMN] = 0

    def token_arrays():
        nonlocal documents
        for example in tokenized:
            documents += 1
            stats[_SPECIAL_TEXT_COLUMN] += int(example[_SPECIAL_TEXT_COLUMN])
            yield np.asarray(example["input_ids"], dtype=np.int64)

    totals = stats
    for blocks in _iter_blocks(token_arrays(), block_size, totals):
        for row in blocks:
            yield {"input_ids": row.tolist()}
    stats["documents"] = documents


# ------------------------------------------------------------------------------------------ byte counting


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
        if byte_level and _BYTE_LEVEL_ALPHABET.issuperset(token):
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


def document_rows(texts: list[str], tokenizer, block_size: int) -> tuple[datasets.Dataset, dict]:
    """One row per document, ``EOS ids EOS``, for evaluation that never starts a document mid-way.

    Packed blocks cut documents, and a model shown the middle of a document without its opening cannot know
    what was chosen there, so packed evaluation sits above a corpus's entropy floor by an amount no model can
    remove. Here each document is predicted from its own start (the leading EOS plays the part of the previous
    document's end, as in training) and the trailing EOS is charged, which is how the floor is defined. A
    document longer than a block continues in further rows that repeat the previous row's last token, so every
    token is predicted exactly once; ``stats["documents_split"]`` counts them (those later rows lack context).
    """
    eos_token_id = _require_eos(tokenizer)
    flat, lengths, _ = _encode_documents(tokenizer, list(texts), eos_token_id)
    rows, split = [], 0
    for ids in np.split(flat, np.cumsum(lengths)[:-1]):
        sequence = np.concatenate([[eos_token_id], ids])
        split += len(sequence) > block_size
        for start in range(0, len(sequence) - 1, block_size - 1):
            rows.append(sequence[start : start + block_size].tolist())
    dataset = datasets.Dataset.from_dict({"input_ids": rows})
    return dataset, {"documents": len(lengths), "rows": len(rows), "documents_split": int(split)}
