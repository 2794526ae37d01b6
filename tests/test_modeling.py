"""Model behaviour: config validation, caching, padding, attention backends, checkpointing, heads."""

import json
import logging
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from helpers import tiny_config_fields
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

from wenlm.modeling import PRESETS, WenLMConfig, WenLMForCausalLM, WenLMForSequenceClassification, WenLMModel
from wenlm.training.hub.validate import HIDE_WENLM

VOCAB = 97


def tiny_config(**overrides) -> WenLMConfig:
    return WenLMConfig(**tiny_config_fields(VOCAB, **overrides))


def tiny_model(seed: int = 0, **overrides) -> WenLMForCausalLM:
    torch.manual_seed(seed)
    # A larger init than the default makes logits far from uniform so comparisons are meaningful.
    return WenLMForCausalLM(tiny_config(initializer_range=0.2, **overrides)).eval()


def random_ids(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, length), generator=generator)


@pytest.mark.parametrize(
    "overrides, parameter",
    [
        (dict(hidden_size=30, num_attention_heads=4), "hidden_size"),
        (dict(num_attention_heads=4, num_key_value_heads=3), "num_key_value_heads"),
        (dict(num_hidden_layers=0), "num_hidden_layers"),
        (dict(vocab_size=-5), "vocab_size"),
        (dict(hidden_act="swishy"), "hidden_act"),
        (dict(dropout=1.5), "dropout"),
        (dict(pad_token_id=500), "pad_token_id"),
    ],
)
def test_invalid_config_names_the_parameter(overrides, parameter):
    with pytest.raises(ValueError, match=parameter):
        tiny_config(**overrides)


def test_divisibility_error_lists_valid_choices():
    with pytest.raises(ValueError, match=r"Valid num_key_value_heads: \[1, 2, 4\]"):
        tiny_config(num_attention_heads=4, num_key_value_heads=3)


def test_presets_and_unknown_preset():
    sizes = {name: WenLMConfig.from_preset(name, vocab_size=32000).num_parameters() for name in PRESETS}
    assert sizes["nano"] < sizes["micro"] < sizes["small"] < sizes["base"]
    assert 25e6 < sizes["small"] < 40e6 and 100e6 < sizes["base"] < 150e6
    with pytest.raises(ValueError, match="Valid presets: nano, micro, small, base"):
        WenLMConfig.from_preset("huge")


def test_parameter_count_formula_matches_module():
    for tie in (True, False):
        config = tiny_config(tie_word_embeddings=tie)
        model = WenLMForCausalLM(config)
        assert model.num_parameters() == config.num_parameters()
        assert WenLMModel(config).num_parameters() == config.num_parameters() - (
            0 if tie else VOCAB * config.hidden_size
        )


def test_rope_theta_keyword_lands_in_rope_parameters():
    config = tiny_config(rope_theta=500000.0)
    assert config.rope_parameters["rope_theta"] == 500000.0
    reloaded = WenLMConfig.from_dict(config.to_dict())
    assert reloaded.rope_parameters["rope_theta"] == 500000.0


def test_labels_loss_matches_manual_shifted_cross_entropy():
    model = tiny_model()
    ids = random_ids(2, 12)
    labels = ids.clone()
    labels[0, :4] = -100
    out = model(ids, labels=labels)
    logits = out.logits[:, :-1].reshape(-1, VOCAB)
    expected = torch.nn.functional.cross_entropy(logits, labels[:, 1:].reshape(-1), ignore_index=-100)
    assert torch.allclose(out.loss, expected, atol=1e-6)


def test_cached_generation_equals_uncached():
    model = tiny_model()
    prompt = random_ids(1, 7)
    with_cache = model.generate(prompt, max_new_tokens=20, do_sample=False, use_cache=True, pad_token_id=0)
    without_cache = model.generate(
        prompt, max_new_tokens=20, do_sample=False, use_cache=False, pad_token_id=0
    )
    assert with_cache.shape[1] == 27
    assert torch.equal(with_cache, without_cache)


def test_incremental_forward_with_cache_matches_full_forward():
    model = tiny_model()
    ids = random_ids(2, 10)
    full = model(ids).logits
    first = model(ids[:, :6], use_cache=True)
    second = model(ids[:, 6:], cache=first.cache, use_cache=True)
    assert torch.allclose(full[:, 6:], second.logits, atol=1e-5)
    # The 4.x keyword still works (transformers' deprecation shim renames it).
    legacy = model(ids[:, 6:], past_key_values=model(ids[:, :6], use_cache=True).cache)
    assert torch.allclose(full[:, 6:], legacy.logits, atol=1e-5)


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_left_padded_batch_generation_equals_single_prompts(attn_implementation):
    model = tiny_model(attn_implementation=attn_implementation)
    model.config._attn_implementation = attn_implementation
    prompts = [random_ids(1, n, seed=n)[0] for n in (3, 9, 6)]
    longest = max(len(p) for p in prompts)
    input_ids = torch.zeros(len(prompts), longest, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, prompt in enumerate(prompts):
        input_ids[row, longest - len(prompt) :] = prompt
        attention_mask[row, longest - len(prompt) :] = 1
    batched = model.generate(
        input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=12, do_sample=False, pad_token_id=0
    )
    for row, prompt in enumerate(prompts):
        alone = model.generate(prompt[None], max_new_tokens=12, do_sample=False, pad_token_id=0)
        assert torch.equal(batched[row, longest:], alone[0, len(prompt) :]), f"prompt {row} differs"


def test_sdpa_and_eager_give_the_same_logits_with_padding():
    model = tiny_model()
    ids = random_ids(2, 16)
    mask = torch.ones_like(ids)
    mask[1, :5] = 0
    model.config._attn_implementation = "sdpa"
    sdpa_logits = model(ids, attention_mask=mask).logits
    model.config._attn_implementation = "eager"
    eager_logits = model(ids, attention_mask=mask).logits
    assert (sdpa_logits[0] - eager_logits[0]).abs().max() <= 1e-5
    assert (sdpa_logits[1, 5:] - eager_logits[1, 5:]).abs().max() <= 1e-5


def test_output_attentions_and_hidden_states():
    model = tiny_model()
    ids = random_ids(2, 8)
    out = model(ids, output_attentions=True, output_hidden_states=True)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 4, 8, 8)
    rows = out.attentions[0].sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5)
    assert torch.all(out.attentions[0].triu(diagonal=1) == 0), "attention must be causal"
    assert len(out.hidden_states) == 3
    base = model.model(ids)
    assert torch.allclose(out.hidden_states[-1], base.last_hidden_state, atol=1e-5)
    assert torch.allclose(out.hidden_states[0], model.model.embed_tokens(ids))


def test_return_dict_false_and_inputs_embeds():
    model = tiny_model()
    ids = random_ids(1, 6)
    logits = model(ids).logits
    as_tuple = model(ids, return_dict=False, use_cache=False)
    assert isinstance(as_tuple, tuple) and torch.allclose(as_tuple[0], logits)
    from_embeds = model(inputs_embeds=model.get_input_embeddings()(ids)).logits
    assert torch.allclose(from_embeds, logits, atol=1e-6)
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model(ids, inputs_embeds=model.get_input_embeddings()(ids))


def test_gradient_checkpointing_gives_the_same_gradients():
    ids = random_ids(2, 12)
    grads = []
    for checkpointing in (False, True):
        model = tiny_model().train()
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model(ids, labels=ids).loss.backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6), name


@pytest.mark.slow
def test_a_few_optimizer_steps_reduce_the_loss():
    model = tiny_model().train()
    ids = random_ids(4, 16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model(ids, labels=ids).loss
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert losses[-1] < 0.7 * losses[0]


def test_tied_embeddings_share_storage_and_survive_reload(tmp_path):
    model = tiny_model()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert reloaded.lm_head.weight.data_ptr() == reloaded.model.embed_tokens.weight.data_ptr()
    ids = random_ids(1, 9)
    assert torch.allclose(model(ids).logits, reloaded(ids).logits, atol=1e-6)


def test_untied_embeddings_round_trip(tmp_path):
    model = tiny_model(tie_word_embeddings=False)
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    model.save_pretrained(tmp_path)
    reloaded = WenLMForCausalLM.from_pretrained(tmp_path)
    assert torch.equal(reloaded.lm_head.weight, model.lm_head.weight)


def test_saved_folder_has_safetensors_auto_map_and_remote_code(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"model.safetensors", "config.json", "modeling_wenlm.py", "configuration_wenlm.py"} <= names
    assert not any(name.endswith(".bin") for name in names)
    config = AutoConfig.from_pretrained(tmp_path)
    assert set(config.auto_map) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForCausalLM",
        "AutoModelForSequenceClassification",
    }
    assert isinstance(AutoModel.from_pretrained(tmp_path), WenLMModel)


def test_rotary_buffers_are_recomputed_after_loading(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path)
    reloaded = WenLMForCausalLM.from_pretrained(tmp_path)
    assert torch.equal(reloaded.model.rotary_emb.inv_freq, model.model.rotary_emb.inv_freq)


def test_dtype_and_device_map_loading(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    half = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert half.model.embed_tokens.weight.dtype == torch.bfloat16
    assert half(random_ids(1, 5)).logits.dtype == torch.bfloat16
    mapped = AutoModelForCausalLM.from_pretrained(tmp_path, device_map="auto")
    assert mapped.device.type == "cpu"


def test_resize_token_embeddings_keeps_tying():
    model = tiny_model()
    model.resize_token_embeddings(VOCAB + 7)
    assert model.config.vocab_size == VOCAB + 7
    assert model.lm_head.weight.shape[0] == VOCAB + 7
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert model(torch.tensor([[VOCAB + 3]])).logits.shape[-1] == VOCAB + 7


@pytest.fixture
def fresh_warnings_once():
    """transformers' warning_once remembers every message it logged in this process, whichever test caused it."""
    logging.Logger.warning_once.cache_clear()
    yield
    logging.Logger.warning_once.cache_clear()


def test_input_longer_than_max_positions_is_computed_as_llama_does_with_one_warning(
    caplog, fresh_warnings_once
):
    model = tiny_model()
    with caplog.at_level("WARNING"):
        logits = model(random_ids(1, 65)).logits
        model(random_ids(1, 66))
    assert logits.shape[1] == 65 and torch.isfinite(logits).all()
    warnings = [record for record in caplog.records if "max_position_embeddings=64" in record.getMessage()]
    assert len(warnings) == 1 and "Truncate the input" in warnings[0].getMessage()


@pytest.mark.slow
def test_sequence_classification_trains_pools_last_token_and_round_trips(tmp_path):
    torch.manual_seed(0)
    config = tiny_config(num_labels=3, id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2})
    model = WenLMForSequenceClassification(config).train()
    ids = random_ids(6, 10)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = model(ids, labels=labels).loss
        first = first if first is not None else loss.item()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert loss.item() < 0.5 * first
    model.eval()
    # Left padding must not change the prediction: the last real token is pooled.
    padded = torch.cat([torch.zeros(6, 3, dtype=torch.long), ids], dim=1)
    mask = torch.cat([torch.zeros(6, 3, dtype=torch.long), torch.ones_like(ids)], dim=1)
    plain_logits = model(ids).logits
    assert torch.allclose(model(padded, attention_mask=mask).logits, plain_logits, atol=1e-5)
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert torch.allclose(reloaded(ids).logits, plain_logits, atol=1e-6)


def test_token_ids_outside_the_vocabulary_fail_clearly():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"token id 97 is outside the model's vocabulary \(vocab_size=97\)"):
        model(torch.tensor([[5, 97]]))
    with pytest.raises(ValueError, match="resize_token_embeddings"):
        model(torch.tensor([[-1, 5]]))


def test_dropout_applies_in_training_only():
    model = tiny_model(dropout=0.3)
    ids = random_ids(2, 8)
    model.train()
    assert not torch.allclose(model(ids).logits, model(ids).logits)
    model.eval()
    assert torch.equal(model(ids).logits, model(ids).logits)


def test_residual_branch_outputs_start_depth_scaled():
    # o_proj and down_proj add into the residual stream; scaling their init by 1/sqrt(2 * layers) keeps its
    # variance from growing with depth. Every other matrix keeps initializer_range.
    torch.manual_seed(0)
    config = tiny_config(hidden_size=128, intermediate_size=256, num_hidden_layers=8, initializer_range=0.02)
    for model in (WenLMForCausalLM(config), AutoModelForCausalLM.from_config(config)):
        layer = model.model.layers[3]
        scaled = 0.02 / (2 * 8) ** 0.5
        for weight in (layer.self_attn.o_proj.weight, layer.mlp.down_proj.weight):
            assert weight.std().item() == pytest.approx(scaled, rel=0.1)
        for weight in (
            layer.self_attn.q_proj.weight,
            layer.mlp.up_proj.weight,
            model.model.embed_tokens.weight,
        ):
            assert weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_old_config_with_training_keys_loads_and_saves_without_them(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    config_path = tmp_path / "config.json"
    saved = json.loads(config_path.read_text())
    assert "loss_chunk_size" not in saved and "compile_decoder_layers" not in saved
    # A folder written by an earlier wenlm still has the training-only keys.
    config_path.write_text(json.dumps({**saved, "loss_chunk_size": 256, "compile_decoder_layers": True}))
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert reloaded(random_ids(1, 6)).logits.shape == (1, 6, VOCAB)
    reloaded.save_pretrained(tmp_path / "again")
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert "loss_chunk_size" not in again and "compile_decoder_layers" not in again


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_packed_row_longer_than_the_context_equals_the_unpacked_sequences(attn_implementation):
    model = tiny_model()
    model.config._attn_implementation = attn_implementation
    sequences = [random_ids(1, n, seed=n) for n in (40, 64, 23)]  # 127 tokens, context 64
    packed = torch.cat(sequences, dim=1)
    position_ids = torch.cat([torch.arange(s.shape[1]) for s in sequences])[None]
    with torch.no_grad():
        packed_logits = model(packed, position_ids=position_ids).logits
        alone = torch.cat([model(s).logits for s in sequences], dim=1)
    assert (packed_logits - alone).abs().max() <= 1e-5


def test_positions_past_the_context_warn_only_without_rope_scaling(caplog, fresh_warnings_once):
    with caplog.at_level("WARNING"):
        tiny_model()(random_ids(1, 10), position_ids=torch.arange(61, 71)[None])
        assert [record for record in caplog.records if "past the trained context" in record.getMessage()]
        caplog.clear()
        logging.Logger.warning_once.cache_clear()
        for rope in ({"rope_type": "linear", "factor": 2.0}, {"rope_type": "dynamic", "factor": 2.0}):
            model = tiny_model(rope_parameters={"rope_theta": 10000.0, **rope})
            out = model.generate(random_ids(1, 60), max_new_tokens=30, do_sample=False, pad_token_id=0)
            assert out.shape[1] == 90 and torch.isfinite(model(out).logits).all()
    # RoPE scaling is made to go past the context: no warning.
    assert not [record for record in caplog.records if "past the trained context" in record.getMessage()]


@pytest.mark.slow
def test_compiled_fullgraph_static_cache_generation_equals_eager():
    if shutil.which("g++") is None:
        pytest.skip("torch.compile needs a C++ compiler (g++) on CPU")
    model = tiny_model()
    prompt = random_ids(1, 5)
    settings = dict(max_new_tokens=6, do_sample=False, pad_token_id=0, cache_implementation="static")
    eager = model.generate(prompt, **settings)
    model.forward = torch.compile(model.forward, fullgraph=True)
    compiled = model.generate(prompt, **settings)
    assert torch.equal(compiled, eager)


def test_classifier_pools_by_attention_mask_even_where_the_pad_id_is_a_real_token():
    torch.manual_seed(0)
    model = WenLMForSequenceClassification(tiny_config(num_labels=2, initializer_range=0.2)).eval()
    ids = random_ids(2, 7)
    ids[:, -1] = (
        0  # a sequence ending in a token that shares the pad id (a tokenizer padding with end-of-text)
    )
    alone = model(ids, attention_mask=torch.ones_like(ids)).logits
    right_padded = torch.cat([ids, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones_like(ids), torch.zeros(2, 3, dtype=torch.long)], dim=1)
    assert torch.allclose(model(right_padded, attention_mask=mask).logits, alone, atol=1e-5)
    # Without a mask the pad-id rule of transformers' generic head applies and pools the token before it.
    without_mask = model(ids).logits
    assert not torch.allclose(without_mask, alone, atol=1e-5)
    assert torch.allclose(without_mask, model(ids[:, :-1]).logits, atol=1e-5)


def test_embedding_accessors_come_from_the_base_class():
    for cls in (WenLMModel, WenLMForCausalLM, WenLMForSequenceClassification):
        assert "get_input_embeddings" not in vars(cls) and "set_input_embeddings" not in vars(cls)
        model = cls(tiny_config())
        replacement = torch.nn.Embedding(VOCAB, 32)
        model.set_input_embeddings(replacement)
        assert model.get_input_embeddings() is replacement


@pytest.mark.slow
def test_classifier_loads_as_hub_remote_code_without_wenlm(tmp_path):
    # Guards WenLMForSequenceClassification.__init__: the generic head's AutoModel.from_config would ask for
    # trust_remote_code a second time when wenlm is not installed.
    torch.manual_seed(0)
    model = WenLMForSequenceClassification(tiny_config(num_labels=2)).eval()
    model.save_pretrained(tmp_path)
    script = HIDE_WENLM + textwrap.dedent(f"""
        import torch
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
        assert "wenlm" not in type(model).__module__.split(".")[0]
        print(model.eval()(torch.tensor([[5, 6, 7]])).logits.tolist())
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    expected = model(torch.tensor([[5, 6, 7]])).logits
    assert torch.allclose(
        torch.tensor(json.loads(result.stdout.strip().splitlines()[-1])), expected, atol=1e-5
    )
