"""The text as the model sees it: token ids with readable pieces, and each token's surprisal in bits."""

from __future__ import annotations

import math

import torch

LOG2 = math.log(2.0)


def encode(tokenizer, text: str, max_length: int) -> tuple[list[int], list[str]]:
    """Token ids of `text` behind a start token, and each token's piece of the text.

    Packed pretraining puts <|eos|> before every document, so that is the context a text starts from (a tokenizer
    that adds its own BOS keeps it); the start token's piece is its name. Pieces come from the character offsets,
    so a Chinese character split over two byte-level tokens shows once, on the token that completes it, instead
    of as two replacement characters.
    """
    encoding = tokenizer(text, add_special_tokens=True, return_offsets_mapping=tokenizer.is_fast)
    ids = list(encoding["input_ids"])
    offsets = list(encoding["offset_mapping"]) if tokenizer.is_fast else [None] * len(ids)
    starts = {tokenizer.bos_token_id, tokenizer.eos_token_id} - {None}
    if (not ids or ids[0] not in starts) and tokenizer.eos_token_id is not None:
        ids, offsets = [tokenizer.eos_token_id, *ids], [(0, 0), *offsets]
    ids, offsets = ids[:max_length], offsets[:max_length]
    return ids, token_pieces(tokenizer, text, ids, offsets)


def token_pieces(tokenizer, text: str, ids: list[int], offsets: list) -> list[str]:
    pieces, covered = [], 0
    for token_id, span in zip(ids, offsets):
        if span is None:  # a slow tokenizer has no offsets: decode the token alone
            pieces.append(tokenizer.decode([token_id]))
        elif span[0] == span[1]:  # a special token (start marker) covers no text
            pieces.append(tokenizer.convert_ids_to_tokens(token_id))
        else:
            start, end = max(span[0], covered), span[1]
            pieces.append(text[start:end])
            covered = max(covered, end)
    return pieces


def next_token_bits(log_probs: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """-log2 p(token i+1 | tokens <= i) for each position i but the last, from log-probs (natural log) of shape
    (positions, vocab)."""
    return -log_probs[:-1].gather(-1, ids[1:, None]).squeeze(-1) / LOG2


def token_records(log_probs: torch.Tensor, ids: list[int], pieces: list[str], tokenizer, top_k: int) -> list[dict]:
    """One record per token: its piece, its surprisal in bits (none for the first: nothing predicts it) and the
    top-k predictions the model made for that position from the tokens before it."""
    bits = next_token_bits(log_probs, torch.tensor(ids)).tolist()
    top = log_probs.exp().topk(min(top_k, log_probs.shape[-1]), dim=-1)
    records = [{"index": 0, "id": ids[0], "text": pieces[0], "surprisal_bits": None, "top": []}]
    for position in range(1, len(ids)):
        predictions = [
            {"id": token_id, "text": tokenizer.decode([token_id]), "probability": probability}
            for token_id, probability in zip(top.indices[position - 1].tolist(), top.values[position - 1].tolist())
        ]
        records.append({"index": position, "id": ids[position], "text": pieces[position],
                        "surprisal_bits": bits[position - 1], "top": predictions})
    return records
