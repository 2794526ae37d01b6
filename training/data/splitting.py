"""Validation held out by whole document, never sliced off a packed stream.

Map-style datasets: a seeded random choice of exactly round(fraction * N) (or the given count of) documents.
Streams: the total is unknown, so a fraction selects each document by a seeded hash of its content and a count
takes the first documents of the stream. Both keep the corpus order inside each part.
"""

from __future__ import annotations

import hashlib

import datasets
import numpy as np

from wenlm.training.args import validation_spec
from wenlm.training.data.cache import array_digest, digest


def _hash_fraction(text: str, seed: int) -> float:
    hashed = hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"), digest_size=8, key=str(seed).encode()
    ).digest()
    return int.from_bytes(hashed, "big") / 2**64


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


def _split_stream(dataset, kind: str, amount: float, seed: int, max_validation_docs: int | None):
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


def _validation_count(
    validation_split: float, kind: str, amount: float, total: int, max_docs: int | None
) -> int:
    wanted = amount if kind == "count" else int(total * amount + 0.5)
    if max_docs is not None:
        wanted = min(wanted, max_docs)
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
    return wanted


def split_by_document(
    dataset, validation_split: float, seed: int = 0, max_validation_docs: int | None = None
):
    """Hold out whole documents: return (train, validation), deterministic for a given seed."""
    kind, amount = validation_spec(validation_split)
    if max_validation_docs is not None and max_validation_docs < 1:
        raise ValueError(f"max_validation_docs must be >= 1 or None, got {max_validation_docs}")
    if isinstance(dataset, datasets.IterableDataset):
        return _split_stream(dataset, kind, amount, seed, max_validation_docs)
    total = len(dataset)
    wanted = _validation_count(validation_split, kind, amount, total, max_validation_docs)
    rng = np.random.default_rng(seed)
    is_validation = np.zeros(total, dtype=bool)
    is_validation[rng.choice(total, size=wanted, replace=False)] = True
    selection = array_digest(is_validation)
    train = dataset.select(
        np.flatnonzero(~is_validation), new_fingerprint=digest(dataset._fingerprint, "train", selection)
    )
    validation = dataset.select(
        np.flatnonzero(is_validation), new_fingerprint=digest(dataset._fingerprint, "validation", selection)
    )
    return train, validation
