"""wenlm computes exactly what transformers' Llama computes for the same shapes and weights.

This pins the architecture (pre-norm RMSNorm, rotary positions, GQA, SwiGLU, tied embeddings) to a reference
implementation, and it guards the speed work in modeling_wenlm.py: any "optimisation" that changes the math
fails here.
"""

import importlib.util
from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM

from wenlm.modeling import WenLMConfig, WenLMForCausalLM

VOCAB = 211


def wenlm_config(**overrides) -> WenLMConfig:
    fields = dict(vocab_size=VOCAB, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=64,
                  rope_theta=50000.0, rms_norm_eps=1e-5, hidden_act="silu", tie_word_embeddings=True,
                  initializer_range=0.2)
    return WenLMConfig(**{**fields, **overrides})


def _benchmark_helpers():
    """benchmarks/common.py builds the Llama twin that the speed benchmarks compare against; testing that very
    function proves the benchmarks compare identical math."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "common.py"
    spec = importlib.util.spec_from_file_location("wenlm_benchmark_common", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


llama_config_like = _benchmark_helpers().llama_like


def paired_models(**overrides) -> tuple[LlamaForCausalLM, WenLMForCausalLM]:
    torch.manual_seed(0)
    config = wenlm_config(**overrides)
    llama = LlamaForCausalLM(llama_config_like(config))
    # A larger init than the default makes logits far from uniform so the comparison is meaningful.
    with torch.no_grad():
        for parameter in llama.parameters():
            parameter.normal_(0.0, 0.2)
    wenlm = WenLMForCausalLM(config)
    llama_state = llama.state_dict()
    wenlm_state = wenlm.state_dict()
    assert llama_state.keys() == wenlm_state.keys(), "weight names must match Llama's exactly"
    missing, unexpected = wenlm.load_state_dict(llama_state, strict=True)
    assert not missing and not unexpected
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


def test_fused_training_loss_matches_llama_loss_and_gradients():
    llama, wenlm = paired_models(loss_chunk_size=16)
    ids, mask = batch(seed=7)
    labels = ids.masked_fill(mask == 0, -100)
    llama.train()
    wenlm.train()
    reference = llama(ids, attention_mask=mask, labels=labels)
    ours = wenlm(ids, attention_mask=mask, labels=labels)
    assert ours.logits is None, "the fused loss must not build full-vocabulary logits"
    assert abs(reference.loss.item() - ours.loss.item()) <= 1e-5
    reference.loss.backward()
    ours.loss.backward()
    llama_grads = dict(llama.named_parameters())
    for name, parameter in wenlm.named_parameters():
        expected, got = llama_grads[name].grad, parameter.grad
        if name == "model.embed_tokens.weight":
            keep = torch.arange(VOCAB) != wenlm.config.pad_token_id
            expected, got = expected[keep], got[keep]
        assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4), name


def test_fused_loss_honours_num_items_in_batch_and_stays_off_outside_training():
    _, wenlm = paired_models(loss_chunk_size=7)
    ids, mask = batch(seed=9)
    labels = ids.masked_fill(mask == 0, -100)
    wenlm.eval()
    with torch.no_grad():
        reference = wenlm(ids, attention_mask=mask, labels=labels, num_items_in_batch=torch.tensor(40))
    assert reference.logits is not None, "evaluation must keep returning logits"
    wenlm.train()
    fused = wenlm(ids, attention_mask=mask, labels=labels, num_items_in_batch=torch.tensor(40))
    assert fused.logits is None
    assert torch.allclose(fused.loss, reference.loss, atol=1e-5)
    assert wenlm(ids, attention_mask=mask).logits is not None, "without labels there is no fused path"
    with torch.no_grad():
        assert wenlm(ids, labels=labels).logits is not None, "no gradient, no fused path"


def test_compile_flag_leaves_generation_and_evaluation_eager():
    _, wenlm = paired_models(compile_decoder_layers=True)
    wenlm.eval()
    prompt = batch()[0][:1, :5]
    wenlm.generate(prompt, max_new_tokens=3, do_sample=False, pad_token_id=0)
    wenlm(prompt, labels=prompt)
    assert wenlm.model._compiled_training_layers is None, "only training forwards may compile"
    assert "_compiled" not in " ".join(wenlm.state_dict()), "compiled wrappers must not change weight names"


def test_per_call_chunk_size_overrides_the_config_both_ways():
    llama, wenlm = paired_models()  # config: stock loss
    ids, mask = batch(seed=11)
    labels = ids.masked_fill(mask == 0, -100)
    llama.train()
    wenlm.train()
    reference = llama(ids, attention_mask=mask, labels=labels).loss
    fused = wenlm(ids, attention_mask=mask, labels=labels, loss_chunk_size=5)
    assert fused.logits is None and abs(fused.loss.item() - reference.item()) <= 1e-5
    assert wenlm.config.loss_chunk_size is None, "a per-call chunk size must not leak into the saved config"
    wenlm.config.loss_chunk_size = 5
    stock = wenlm(ids, attention_mask=mask, labels=labels, loss_chunk_size=0)
    assert stock.logits is not None, "loss_chunk_size=0 turns the fused loss off for that call"
    assert abs(stock.loss.item() - reference.item()) <= 1e-5
