"""Exposure of a canary (Carlini et al., "The Secret Sharer", 2019): how far up the model ranks the true secret
among every secret the format allows, in bits.

    exposure = log2 |candidate space| - log2 rank,   rank = #{candidates c : bits(c) <= bits(secret)}

where bits(x) is the sequence's log-perplexity, -log2 P(sentence with x), read from the model. A secret the model
ranks first has the largest possible exposure, log2 |space|; one it ranks like a random candidate about 1 bit.
A space up to `exact_limit` secrets is enumerated; a larger one is estimated as in the paper: the bits of random
candidates are fitted with a skew-normal distribution and exposure = -log2 CDF(bits(secret)), capped to
[0, log2 |space|]. The empirical estimate from the same sample (which cannot exceed log2 of the sample size) is
reported beside it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import torch
from scipy import stats

from wenlm.training.inspection.canaries import Canary, candidate, candidate_index
from wenlm.training.inspection.tokens import encode

LOG2 = math.log(2.0)


@torch.no_grad()
def sequence_bits(model, tokenizer, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """-log2 P(text) for each text, every token after the start token (<|eos|>, as in packed training) scored."""
    model.eval()
    encoded = [encode(tokenizer, text, max_length=10**9)[0] for text in texts]
    results = np.empty(len(encoded), dtype=np.float64)
    # Sorted by length so a batch pads little; padding is masked out of attention and of the sum.
    order = sorted(range(len(encoded)), key=lambda index: len(encoded[index]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(encoded[index]) for index in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, index in enumerate(chunk):
            ids[row, : len(encoded[index])] = torch.tensor(encoded[index])
            mask[row, : len(encoded[index])] = 1
        logits = (
            model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.float().cpu()
        )
        log_probs = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        totals = -(log_probs * mask[:, 1:]).sum(-1) / LOG2
        results[chunk] = totals.double().numpy()
    return results


def exact_exposure(secret_bits: float, all_bits: np.ndarray) -> dict:
    """Exposure from the bits of every candidate (the secret's own entry included)."""
    rank = int(np.sum(all_bits <= secret_bits))
    rank = max(rank, 1)  # the secret itself is a candidate, whatever float rounding did to its own entry
    space = len(all_bits)
    return {
        "method": "exact",
        "rank": rank,
        "candidate_space": space,
        "exposure": math.log2(space) - math.log2(rank),
    }


def sampled_exposure(secret_bits: float, sample_bits: np.ndarray, space: int) -> dict:
    """Exposure estimated from the bits of random candidates: skew-normal fit (the paper's extrapolation) and the
    empirical share of the sample at or below the secret."""
    maximum = math.log2(space)
    shape, location, scale = stats.skewnorm.fit(sample_bits)
    log_cdf = float(stats.skewnorm.logcdf(secret_bits, shape, location, scale))
    fitted = min(max(-log_cdf / LOG2, 0.0), maximum)
    at_or_below = int(np.sum(sample_bits <= secret_bits))
    empirical = math.log2(len(sample_bits) + 1) - math.log2(at_or_below + 1)
    return {
        "method": "skew-normal fit",
        "rank": max(1.0, space * 2.0**-fitted),
        "candidate_space": space,
        "exposure": fitted,
        "empirical_exposure": min(empirical, maximum),
        "samples": len(sample_bits),
        "skewnorm": {"shape": shape, "location": location, "scale": scale},
    }


def canary_exposure(
    model,
    tokenizer,
    canary: Canary,
    exact_limit: int = 20000,
    samples: int = 2000,
    seed: int = 0,
    batch_size: int = 64,
) -> dict:
    """Exposure of one canary: every candidate scored when the space holds at most `exact_limit`, else
    `samples` random candidates (other than the secret)."""
    space = canary.candidate_space
    secret_index = candidate_index(canary.format, canary.digits, canary.secret)
    if space <= exact_limit:
        texts = [
            canary.prefix + candidate(canary.format, canary.digits, index) + canary.suffix
            for index in range(space)
        ]
        all_bits = sequence_bits(model, tokenizer, texts, batch_size)
        result = exact_exposure(float(all_bits[secret_index]), all_bits)
        result["secret_bits"] = float(all_bits[secret_index])
        result["median_candidate_bits"] = float(np.median(all_bits))
        return result
    rng = random.Random(f"{seed}-{canary.id}")
    indices: set[int] = set()
    while len(indices) < min(samples, space - 1):
        index = rng.randrange(space)
        if index != secret_index:
            indices.add(index)
    texts = [
        canary.prefix + candidate(canary.format, canary.digits, index) + canary.suffix for index in indices
    ]
    bits = sequence_bits(model, tokenizer, [canary.sentence, *texts], batch_size)
    result = sampled_exposure(float(bits[0]), bits[1:], space)
    result["secret_bits"] = float(bits[0])
    result["median_candidate_bits"] = float(np.median(bits[1:]))
    return result


@torch.no_grad()
def greedy_reproduces(model, tokenizer, canary: Canary) -> bool:
    """Whether greedy decoding after the canary's prefix writes its secret. The prompt is the sentence's own
    tokens up to the first one that reaches into the secret, so it is cut where training text was cut (a space
    before the secret may be a token of its own or the start of the secret's first token)."""
    ids, pieces = encode(tokenizer, canary.sentence, max_length=10**9)
    kept, covered = 1, 0
    while kept < len(ids) and covered + len(pieces[kept]) <= len(canary.prefix):
        covered += len(pieces[kept])
        kept += 1
    wanted = canary.prefix[covered:] + canary.secret
    prompt = torch.tensor([ids[:kept]], device=model.device)
    output = model.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        do_sample=False,
        max_new_tokens=len(ids) - kept,
        pad_token_id=tokenizer.pad_token_id,
    )
    return tokenizer.decode(output[0, kept:], skip_special_tokens=True).startswith(wanted)
