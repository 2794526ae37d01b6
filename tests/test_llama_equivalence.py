"""wenlm computes exactly what transformers' Llama computes for the same shapes and weights.

This pins the architecture (pre-norm RMSNorm, rotary positions, GQA, SwiGLU, tied embeddings) to a reference
implementation, and it guards the speed work in modeling_wenlm.py: any "optimisation" that changes the math
fails here.
"""

import pytest
import torch
from helpers import tiny_config_fields
from transformers import LlamaForCausalLM

from wenlm.modeling import WenLMConfig, WenLMForCausalLM
from wenlm.training.export import llama_config_from_wenlm, llama_twin

VOCAB = 211


def wenlm_config(**overrides) -> WenLMConfig:
    fields = tiny_config_fields(
        VOCAB,
        width=48,
        rope_theta=50000.0,
        rms_norm_eps=1e-5,
        hidden_act="silu",
        tie_word_embeddings=True,
        initializer_range=0.2,
    )
    return WenLMConfig(**{**fields, **overrides})


def paired_models(**overrides) -> tuple[LlamaForCausalLM, WenLMForCausalLM]:
    """Llama and wenlm with the same weights, through wenlm.training.export (the twin the benchmarks compare
    against), so these tests also prove the benchmarks compare identical math."""
    torch.manual_seed(0)
    wenlm = WenLMForCausalLM(wenlm_config(**overrides))
    # A larger init than the default makes logits far from uniform so the comparison is meaningful.
    with torch.no_grad():
        for parameter in wenlm.parameters():
            parameter.normal_(0.0, 0.2)
    llama = llama_twin(wenlm)
    assert llama.state_dict().keys() == wenlm.state_dict().keys(), "weight names must match Llama's exactly"
    return llama, wenlm


def batch(seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (3, 20), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, :7] = 0  # left padding
    mask[2, 15:] = 0  # right padding
    return ids, mask


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_same_logits_and_loss_as_llama(attn_implementation):
    llama, wenlm = paired_models()
    for model in (llama, wenlm):
        model.eval().config._attn_implementation = attn_implementation
    ids, mask = batch()
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        reference = llama(ids, labels=ids)
        ours = wenlm(ids, labels=ids)
        assert (reference.logits - ours.logits).abs().max() <= 1e-5
        assert abs(reference.loss.item() - ours.loss.item()) <= 1e-5

        reference = llama(ids, attention_mask=mask, labels=labels)
        ours = wenlm(ids, attention_mask=mask, labels=labels)
        real = mask.bool()
        assert (reference.logits[real] - ours.logits[real]).abs().max() <= 1e-5
        assert abs(reference.loss.item() - ours.loss.item()) <= 1e-5


def test_same_gradients_as_llama():
    llama, wenlm = paired_models()
    ids, mask = batch(seed=5)
    labels = ids.masked_fill(mask == 0, -100)
    for model in (llama, wenlm):
        model.train()
        model(ids, attention_mask=mask, labels=labels).loss.backward()
    llama_grads = dict(llama.named_parameters())
    for name, parameter in wenlm.named_parameters():
        expected = llama_grads[name].grad
        if name == "model.embed_tokens.weight":
            # Llama's embedding has padding_idx, which zeroes that row's input gradient; only the tied output
            # projection contributes there, so compare the other rows.
            keep = torch.arange(VOCAB) != wenlm.config.pad_token_id
            expected, parameter_grad = expected[keep], parameter.grad[keep]
        else:
            parameter_grad = parameter.grad
        assert torch.allclose(parameter_grad, expected, atol=1e-5, rtol=1e-4), name


def test_shift_labels_change_the_loss_exactly_as_for_llama():
    llama, wenlm = paired_models()
    ids, mask = batch(seed=13)
    # Targets that are not the next input token: a loss over shift_labels differs from the one over labels.
    shift_labels = torch.roll(ids, shifts=3, dims=1).masked_fill(mask == 0, -100)
    with torch.no_grad():
        plain = [model(ids, attention_mask=mask, labels=ids).loss for model in (llama, wenlm)]
        shifted = [
            model(ids, attention_mask=mask, labels=ids, shift_labels=shift_labels).loss
            for model in (llama, wenlm)
        ]
        counted = [
            model(
                ids,
                attention_mask=mask,
                labels=ids,
                shift_labels=shift_labels,
                num_items_in_batch=torch.tensor(17),
            ).loss
            for model in (llama, wenlm)
        ]
    assert abs(shifted[0].item() - plain[0].item()) > 1e-3, "shift_labels must change Llama's loss"
    for reference, ours in (plain, shifted, counted):
        assert abs(reference.item() - ours.item()) <= 1e-5


def test_llama_config_keeps_rope_scaling_and_refuses_what_llama_lacks():
    config = wenlm_config(rope_parameters={"rope_type": "linear", "rope_theta": 50000.0, "factor": 2.0})
    assert llama_config_from_wenlm(config).rope_parameters["factor"] == 2.0
    with pytest.raises(ValueError, match="dropout=0.1 has no Llama equivalent"):
        llama_config_from_wenlm(wenlm_config(dropout=0.1))
