"""Training-data extraction: how often greedy decoding from the first `prefix_tokens` tokens of a training
document reproduces its next `suffix_tokens` tokens exactly (k-extractability, Carlini et al., "Extracting
Training Data from Large Language Models", 2021, and "Quantifying Memorization", 2023), by how many exact copies
of the document the training files hold.

The documents are read and cleaned as `wenlm pretrain` does with the same options (sources, normalisation,
--min_doc_chars, --dedup, the --validation_split hold-out, --scrub_pii), so every sampled document is one the model
trained on, as it saw it. Copies are counted on the normalised text before de-duplication; with --dedup true (the
default) the model saw one of them.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import datasets
import torch

from wenlm.training.args import DataArguments
from wenlm.training.data.cache import content_hash, resolve_cache_dir
from wenlm.training.data.cleaning import clean_dataset, normalize_text
from wenlm.training.data.pii import scrub_pii
from wenlm.training.data.sources import load_source, resolve_sources
from wenlm.training.data.splitting import split_by_document
from wenlm.training.inspection.tokens import encode
from wenlm.training.utils.secrets import redact_secrets


def copies_bucket(copies: int) -> str:
    """Powers of two: '1', '2-3', '4-7', ..."""
    low = 1 << (copies.bit_length() - 1)
    return str(low) if low == 1 else f"{low}-{2 * low - 1}"


def read_training_documents(data_args: DataArguments) -> tuple[datasets.Dataset, Counter]:
    """The training split as `wenlm pretrain` builds it (before PII scrubbing) and the copies of each normalised
    text in the files, by content hash."""
    if data_args.streaming:
        raise ValueError("wenlm audit reads the training files in memory: drop --streaming (or pass false)")
    cache_dir = resolve_cache_dir(data_args.cache_dir)
    parts = [
        part
        for source in resolve_sources(data_args.train_files)
        for part in load_source(source, data_args, cache_dir, {})
    ]
    raw = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    copies = Counter(content_hash(normalize_text(text)) for text in raw["text"])
    # The hold-out picks documents by position, so it is the same with or without scrubbing; scrubbing is left
    # to the few sampled documents.
    cleaned, _, _ = clean_dataset(raw, dataclasses.replace(data_args, scrub_pii=False))
    train, _ = split_by_document(
        cleaned,
        data_args.validation_split,
        seed=data_args.corpus_seed,
        max_validation_docs=data_args.max_validation_docs,
    )
    return train, copies


def sample_by_copies(
    texts: list[str], copies: Counter, samples: int, seed: int = 0
) -> dict[str, list[tuple]]:
    """Up to `samples` distinct texts in all, shared evenly across the copy buckets that have any (a bucket with
    fewer texts gives its share to the others); each entry is (text, copies)."""
    buckets: dict[str, list[tuple]] = {}
    seen = set()
    for text in texts:
        key = content_hash(text)
        if key not in seen:
            seen.add(key)
            count = max(copies.get(key, 1), 1)
            buckets.setdefault(copies_bucket(count), []).append((text, count))
    rng = random.Random(seed)
    for members in buckets.values():
        rng.shuffle(members)
    chosen: dict[str, list[tuple]] = {name: [] for name in buckets}
    while samples > 0 and any(len(chosen[name]) < len(buckets[name]) for name in buckets):
        for name in buckets:
            if samples > 0 and len(chosen[name]) < len(buckets[name]):
                chosen[name].append(buckets[name][len(chosen[name])])
                samples -= 1
    return chosen


def split_tokens(
    tokenizer, text: str, prefix_tokens: int, suffix_tokens: int
) -> tuple[list[int], list[int]] | None:
    """(start token + the first prefix_tokens tokens, the next suffix_tokens), or None for a shorter text."""
    ids = encode(tokenizer, text, max_length=1 + prefix_tokens + suffix_tokens)[0]
    if len(ids) < 1 + prefix_tokens + suffix_tokens:
        return None
    return ids[: 1 + prefix_tokens], ids[1 + prefix_tokens :]


@torch.no_grad()
def greedy_continuations(
    model, prefixes: list[list[int]], length: int, pad_token_id: int | None, batch_size: int = 64
) -> list[list[int]]:
    """`length` greedily decoded tokens after each prefix (all prefixes the same length); shorter when the
    model ends the text."""
    outputs = []
    for start in range(0, len(prefixes), batch_size):
        ids = torch.tensor(prefixes[start : start + batch_size], device=model.device)
        generated = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=length,
            pad_token_id=pad_token_id,
        )
        outputs += generated[:, ids.shape[1] :].tolist()
    return outputs


def matched_tokens(generated: list[int], expected: list[int]) -> int:
    """How many tokens of `expected` the generation reproduces before the first difference."""
    count = 0
    for produced, wanted in zip(generated, expected):
        if produced != wanted:
            break
        count += 1
    return count


def extraction_rows(matches: dict[str, list[tuple[int, int]]], suffix_tokens: int) -> list[dict]:
    """Per copy bucket: documents tested, how many were extracted exactly (all suffix tokens), the share, and the
    mean number of suffix tokens reproduced. `matches` maps a bucket to (copies, matched tokens) per document."""
    rows = []
    for name, results in sorted(
        matches.items(), key=lambda item: min(c for c, _ in item[1]) if item[1] else 0
    ):
        if not results:
            continue
        extracted = sum(1 for _, matched in results if matched >= suffix_tokens)
        rows.append(
            {
                "copies": name,
                "documents": len(results),
                "extracted": extracted,
                "extraction_rate": extracted / len(results),
                "mean_matched_tokens": sum(matched for _, matched in results) / len(results),
            }
        )
    return rows


def measure_extraction(
    model,
    tokenizer,
    data_args: DataArguments,
    prefix_tokens: int = 32,
    suffix_tokens: int = 16,
    samples: int = 200,
    seed: int = 0,
    batch_size: int = 64,
) -> dict:
    """Read the training documents, sample them by copies, and measure k-extractability; returns the rows of
    `extraction_rows` and the settings."""
    train, copies = read_training_documents(data_args)
    chosen = sample_by_copies(train["text"], copies, samples, seed)
    matches: dict[str, list[tuple[int, int]]] = {}
    too_short = 0
    for name, members in chosen.items():
        pairs, counts = [], []
        for text, count in members:
            split = split_tokens(
                tokenizer, scrub_pii(text)[0] if data_args.scrub_pii else text, prefix_tokens, suffix_tokens
            )
            if split is None:
                too_short += 1
                continue
            pairs.append(split)
            counts.append(count)
        generated = greedy_continuations(
            model, [prefix for prefix, _ in pairs], suffix_tokens, tokenizer.pad_token_id, batch_size
        )
        matches[name] = [
            (count, matched_tokens(output, suffix))
            for count, output, (_, suffix) in zip(counts, generated, pairs)
        ]
    return {
        "method": f"greedy decoding from the first {prefix_tokens} tokens of a training document; extracted "
        f"when the next {suffix_tokens} tokens are reproduced exactly",
        "prefix_tokens": prefix_tokens,
        "suffix_tokens": suffix_tokens,
        "samples": samples,
        "documents_too_short": too_short,
        "dedup": data_args.dedup,
        "scrub_pii": data_args.scrub_pii,
        "train_files": [redact_secrets(str(spec)) for spec in data_args.train_files],
        "by_copies": extraction_rows(matches, suffix_tokens),
    }
