"""`wenlm export --to gguf`: the file's contents read back with the `gguf` package. llama.cpp itself runs the
file in benchmarks/interop_llamacpp.py (a heavy build, not CI); here: metadata, vocabulary, exact f32 weights,
the RoPE reordering checked against transformers' rotation, quantised types, refusals."""

import json

import gguf
import numpy as np
import pytest
import torch
from helpers import save_wenlm_folder
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from wenlm.modeling import WenLMForCausalLM
from wenlm.tokenization import END_OF_TURN_TOKEN, PII_PLACEHOLDERS
from wenlm.training.cli import main as cli_main
from wenlm.training.export import GGUF_CARD_MARKER, export_gguf
from wenlm.training.export.gguf_file import permute_for_ggml_rope


def read(folder, outtype):
    return gguf.GGUFReader(folder / f"model-{outtype}.gguf")


def field(reader, key):
    return reader.fields[key].contents()


@pytest.fixture(scope="module")
def f32_folder(wenlm_folder):
    return export_gguf(str(wenlm_folder), wenlm_folder.parent / "f32", outtype="f32")


def test_metadata_and_vocabulary(f32_folder, wenlm_folder):
    reader = read(f32_folder, "f32")
    config = json.loads((wenlm_folder / "config.json").read_text())
    tokenizer_json = json.loads((wenlm_folder / "tokenizer.json").read_text())
    assert field(reader, "general.architecture") == "llama"
    assert field(reader, "tokenizer.ggml.model") == "gpt2" and field(reader, "tokenizer.ggml.pre") == "qwen2"
    assert field(reader, "llama.block_count") == config["num_hidden_layers"]
    assert field(reader, "llama.attention.head_count_kv") == config["num_key_value_heads"]
    assert field(reader, "llama.context_length") == config["max_position_embeddings"]
    assert field(reader, "llama.rope.dimension_count") == config["head_dim"]
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    assert len(tokens) == config["vocab_size"] and len(types) == len(tokens)
    vocab = tokenizer_json["model"]["vocab"]
    assert all(tokens[index] == token for token, index in vocab.items())  # byte-level texts, same ids
    assert len(field(reader, "tokenizer.ggml.merges")) == len(tokenizer_json["model"]["merges"])
    assert (field(reader, "tokenizer.ggml.bos_token_id"), field(reader, "tokenizer.ggml.eos_token_id")) == (
        1,
        2,
    )
    assert tokens[field(reader, "tokenizer.ggml.eot_token_id")] == END_OF_TURN_TOKEN
    assert field(reader, "tokenizer.ggml.add_bos_token") is False
    assert types[2] == gguf.TokenType.CONTROL and types[6] == gguf.TokenType.CONTROL
    # PII placeholders stay in decoded text, as with skip_special_tokens in transformers.
    assert {types[tokens.index(text)] for text in PII_PLACEHOLDERS.values()} == {gguf.TokenType.USER_DEFINED}
    assert "<|assistant|>" in field(reader, "tokenizer.chat_template")
    assert GGUF_CARD_MARKER in (f32_folder / "README.md").read_text()
    assert 'PARAMETER stop "<|end|>"' in (f32_folder / "Modelfile").read_text()


def test_f32_weights_are_the_models_with_query_and_key_rows_reordered(f32_folder, wenlm_folder):
    model = WenLMForCausalLM.from_pretrained(wenlm_folder)
    config = model.config
    tensors = {tensor.name: tensor for tensor in read(f32_folder, "f32").tensors}
    assert "output.weight" not in tensors  # tied: llama.cpp reuses token_embd
    assert len(tensors) == 2 + 9 * config.num_hidden_layers
    state = model.state_dict()

    def weight(name):
        return torch.from_numpy(np.array(tensors[name].data)).reshape(
            tuple(reversed(tensors[name].shape.tolist()))
        )

    assert torch.equal(weight("token_embd.weight"), state["model.embed_tokens.weight"])
    assert torch.equal(weight("blk.1.ffn_down.weight"), state["model.layers.1.mlp.down_proj.weight"])
    assert torch.equal(weight("blk.0.attn_norm.weight"), state["model.layers.0.input_layernorm.weight"])
    query = state["model.layers.0.self_attn.q_proj.weight"]
    assert torch.equal(
        weight("blk.0.attn_q.weight"), permute_for_ggml_rope(query, config.num_attention_heads)
    )
    assert not torch.equal(weight("blk.0.attn_q.weight"), query)


def test_reordered_rows_make_ggml_rope_equal_transformers_rope():
    # ggml's `llama` RoPE rotates adjacent pairs (2i, 2i+1); transformers rotates (i, i + d/2). With the rows
    # reordered, the interleaved rotation of the reordered projection is the reordered transformers rotation.
    torch.manual_seed(0)
    heads, head_dim, positions = 2, 8, 5
    weight, hidden = torch.randn(heads * head_dim, 16), torch.randn(positions, 16)
    inv_freq = 1.0 / 10000 ** (torch.arange(0, head_dim, 2).float() / head_dim)
    angles = torch.outer(torch.arange(positions).float(), inv_freq)  # [positions, head_dim / 2]
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
    query = (hidden @ weight.T).view(positions, heads, head_dim).transpose(0, 1)[None]
    rotated, _ = apply_rotary_pos_emb(query, query, cos[None], sin[None])
    expected = rotated[0].transpose(0, 1).reshape(positions, heads * head_dim)
    interleaved = (hidden @ permute_for_ggml_rope(weight, heads).T).view(positions, heads, head_dim // 2, 2)
    even, odd = interleaved[..., 0], interleaved[..., 1]
    cos_i, sin_i = angles.cos()[:, None], angles.sin()[:, None]
    ggml = torch.stack([even * cos_i - odd * sin_i, even * sin_i + odd * cos_i], -1).reshape(positions, -1)
    reorder = permute_for_ggml_rope(torch.arange(heads * head_dim).float()[:, None], heads).long().flatten()
    assert torch.allclose(ggml, expected[:, reorder], atol=1e-5)


@pytest.mark.parametrize("outtype, tolerance", [("f16", 1e-3), ("q8_0", 2e-2)])
def test_smaller_types_stay_close(wenlm_folder, tmp_path, outtype, tolerance):
    assert (
        cli_main(
            [
                "export",
                "--model",
                str(wenlm_folder),
                "--to",
                "gguf",
                "--outtype",
                outtype,
                "--output_dir",
                str(tmp_path / outtype),
            ]
        )
        == 0
    )
    reader = read(tmp_path / outtype, outtype)
    tensors = {tensor.name: tensor for tensor in reader.tensors}
    expected_type = gguf.GGMLQuantizationType[outtype.upper()]
    assert tensors["blk.0.ffn_up.weight"].tensor_type == expected_type
    assert tensors["blk.0.ffn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    up = WenLMForCausalLM.from_pretrained(wenlm_folder).state_dict()["model.layers.0.mlp.up_proj.weight"]
    stored = gguf.quants.dequantize(tensors["blk.0.ffn_up.weight"].data, expected_type).reshape(up.shape)
    assert np.abs(stored - up.numpy()).max() <= tolerance * np.abs(up.numpy()).max()


def test_refuses_a_tokenizer_llama_cpp_would_split_differently(tmp_path, capsys):
    folder = save_wenlm_folder(tmp_path / "wenlm-rule", split_rule="wenlm")
    assert (
        cli_main(["export", "--model", str(folder), "--to", "gguf", "--output_dir", str(tmp_path / "out")])
        == 2
    )
    error = capsys.readouterr().err
    assert "wenlm's own split rule" in error and "--split_rule qwen2" in error and "--to llama" in error
    assert not (tmp_path / "out").exists()


def test_refuses_rope_scaling_without_a_gguf_equivalent(tmp_path):
    folder = save_wenlm_folder(
        tmp_path / "dynamic", rope_parameters={"rope_type": "dynamic", "rope_theta": 1e4, "factor": 2.0}
    )
    with pytest.raises(ValueError, match="rope_type 'dynamic'"):
        export_gguf(str(folder), tmp_path / "out")
    assert not (tmp_path / "out").exists()
