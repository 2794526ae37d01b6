"""wenlm as transformers' Llama: the config conversion and a Llama model holding the same weights.

wenlm's computation is Llama's (tests/test_llama_equivalence.py pins that) and its weight names are identical,
so a wenlm checkpoint is a Llama checkpoint once the config says so. The benchmarks compare against this very
twin; a later `wenlm export --to llama` builds on it.
"""

from __future__ import annotations

from transformers import LlamaConfig, LlamaForCausalLM

from wenlm.modeling import WenLMConfig, WenLMForCausalLM

# Fields with the same name and meaning in both configs.
_SHARED_FIELDS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps", "hidden_act",
    "initializer_range", "attention_dropout", "tie_word_embeddings", "pad_token_id", "bos_token_id", "eos_token_id",
)
# wenlm settings Llama has no field for; a model using them computes something Llama cannot.
_NOT_IN_LLAMA = {"dropout": 0.0}


def llama_config_from_wenlm(config: WenLMConfig) -> LlamaConfig:
    """A LlamaConfig with wenlm's shapes: same widths, GQA, RoPE parameters, RMSNorm eps, activation, tying and
    special token ids; no biases."""
    for name, neutral in _NOT_IN_LLAMA.items():
        if getattr(config, name) != neutral:
            raise ValueError(
                f"llama_config_from_wenlm: {name}={getattr(config, name)!r} has no Llama equivalent; set {name} to "
                f"{neutral!r} before converting."
            )
    shared = {name: getattr(config, name) for name in _SHARED_FIELDS}
    return LlamaConfig(**shared, rope_parameters=dict(config.rope_parameters), attention_bias=False, mlp_bias=False)


def llama_twin(model: WenLMForCausalLM) -> LlamaForCausalLM:
    """A LlamaForCausalLM holding exactly `model`'s weights (the state-dict names are identical), in its dtype
    and on its device, with the same attention implementation."""
    llama = LlamaForCausalLM(llama_config_from_wenlm(model.config))
    llama.load_state_dict(model.state_dict(), strict=True)
    llama.to(device=model.device, dtype=model.dtype)
    llama.config._attn_implementation = model.config._attn_implementation
    return llama
