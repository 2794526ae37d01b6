"""`wenlm export --to gguf`: a GGUF file llama.cpp (and so Ollama, LM Studio, llama-cpp-python) runs.

Written with the `gguf` package, as architecture `llama`. llama.cpp's own converter is not installable from PyPI
(llama-cpp-python's wheel does not carry it) and it would not recognise a tokenizer trained here (it identifies
pre-tokenizers by hashing the tokenization of a fixed text); what it would do for a Llama folder is short, and
done here: Llama's weights under GGUF names, the query/key rows reordered for ggml's RoPE, and the byte-level
BPE vocabulary with the pre-tokenizer named. The tokenizer must use a split rule llama.cpp implements
(`train_tokenizer(split_rule="qwen2")`, the default); benchmarks/interop_llamacpp.py proves the file end to end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import torch

from wenlm.tokenization import split_rule_of, stop_token_ids
from wenlm.training.export.llama import check_output_folder, export_command, folder_written_whole, load_wenlm
from wenlm.training.utils import write_atomically

# --outtype -> (ggml type of the 2-D weights, GGUF file type). Norm weights stay float32 in every type, as
# llama.cpp's converter keeps them.
OUTTYPES = {
    "f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
}
# wenlm split rule -> llama.cpp's name of the same pre-tokenizer.
LLAMA_CPP_PRE_TOKENIZERS = {"qwen2": "qwen2"}
GGUF_CARD_MARKER = "<!-- Written by `wenlm export --to gguf`. -->"


def check_exportable(config: Any, tokenizer: Any, model: str) -> str:
    """llama.cpp's name for the tokenizer's split rule; refuses, by option, what llama.cpp would compute
    differently."""
    rule = split_rule_of(tokenizer)
    if rule not in LLAMA_CPP_PRE_TOKENIZERS:
        described = "wenlm's own split rule" if rule == "wenlm" else "a pre-tokenizer"
        raise ValueError(
            f"--model {model}: its tokenizer cuts text with {described}, which llama.cpp does not implement, so "
            "llama.cpp would tokenize text differently. To export to GGUF, train with a tokenizer made with "
            "`--split_rule qwen2` (the default); `--to llama` exports this model as it is."
        )
    rope_type = config.rope_parameters.get("rope_type", "default")
    if rope_type not in ("default", "linear"):
        raise ValueError(
            f"--model {model}: rope_parameters rope_type {rope_type!r} has no exact GGUF equivalent here (default and "
            "linear do); export with --to llama instead."
        )
    return LLAMA_CPP_PRE_TOKENIZERS[rule]


def permute_for_ggml_rope(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Query/key rows reordered from transformers' rotate-half RoPE layout (pairs (i, i + d/2)) to ggml's
    interleaved one (pairs (2i, 2i + 1)) that llama.cpp's `llama` architecture applies."""
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, -1).transpose(1, 2).reshape(weight.shape)


def gguf_tensors(model: Any) -> list[tuple[str, torch.Tensor]]:
    """(GGUF name, float32 tensor) for every weight llama.cpp reads; a tied head is not written (llama.cpp reuses
    the embedding when `output.weight` is absent)."""
    config = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    tensors = []
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        gguf_name = names.get_name(name, try_suffixes=(".weight",))
        if gguf_name is None:
            raise RuntimeError(
                f"wenlm export --to gguf: no GGUF name for weight {name!r}; please report this."
            )
        tensor = tensor.detach().float().cpu()
        if name.endswith("self_attn.q_proj.weight"):
            tensor = permute_for_ggml_rope(tensor, config.num_attention_heads)
        elif name.endswith("self_attn.k_proj.weight"):
            tensor = permute_for_ggml_rope(tensor, config.num_key_value_heads)
        tensors.append((gguf_name, tensor))
    return tensors


def add_tensor(
    writer: gguf.GGUFWriter, name: str, tensor: torch.Tensor, weight_type: gguf.GGMLQuantizationType
):
    data = tensor.numpy()
    block_size, _ = gguf.GGML_QUANT_SIZES[weight_type]
    if data.ndim == 1 or weight_type == gguf.GGMLQuantizationType.F32 or data.shape[-1] % block_size:
        # 1-D norms, and rows q8_0 blocks of 32 cannot tile, stay float32 (llama.cpp's converter does the same).
        writer.add_tensor(name, data.astype(np.float32))
    elif weight_type == gguf.GGMLQuantizationType.F16:
        writer.add_tensor(name, data.astype(np.float16))
    else:
        writer.add_tensor(name, gguf.quants.quantize(data, weight_type), raw_dtype=weight_type)


def vocabulary(tokenizer: Any, vocab_size: int) -> tuple[list[str], list[int], list[str]]:
    """Token texts, GGUF token types and merges of a byte-level BPE tokenizer, padded to the model's rows."""
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    added = {token["id"]: token for token in backend["added_tokens"]}
    by_id = {index: token for token, index in backend["model"]["vocab"].items()}
    by_id.update({index: token["content"] for index, token in added.items()})
    if max(by_id) >= vocab_size:
        raise ValueError(
            f"The tokenizer has ids up to {max(by_id)} but the model only {vocab_size} embedding rows."
        )
    texts, types = [], []
    for index in range(vocab_size):
        if index not in by_id:  # embedding rows no token uses
            texts.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        texts.append(by_id[index])
        if index not in added:
            types.append(gguf.TokenType.NORMAL)
        else:
            # Special tokens are control tokens (matched in text only when asked); the PII placeholders are
            # ordinary added tokens, always matched and kept when decoding, as in transformers.
            types.append(gguf.TokenType.CONTROL if added[index]["special"] else gguf.TokenType.USER_DEFINED)
    merges = [pair if isinstance(pair, str) else " ".join(pair) for pair in backend["model"]["merges"]]
    return texts, [int(kind) for kind in types], merges


def add_metadata(
    writer: gguf.GGUFWriter, model: Any, tokenizer: Any, pre_tokenizer: str, outtype: str, name: str
):
    config = model.config
    writer.add_name(name)
    writer.add_file_type(int(OUTTYPES[outtype][1]))
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_key_length(config.head_dim)
    writer.add_value_length(config.head_dim)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_dimension_count(config.head_dim)
    writer.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    if config.rope_parameters.get("rope_type") == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(config.rope_parameters["factor"]))
    writer.add_vocab_size(config.vocab_size)
    texts, types, merges = vocabulary(tokenizer, config.vocab_size)
    writer.add_tokenizer_model("gpt2")  # llama.cpp's name for byte-level BPE
    writer.add_tokenizer_pre(pre_tokenizer)
    writer.add_token_list(texts)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    # <|end|> closes a chat turn: llama.cpp stops at it as at the end of text (the transformers export does too).
    end_of_turn = [token_id for token_id in stop_token_ids(tokenizer) if token_id != tokenizer.eos_token_id]
    if end_of_turn:
        writer.add_eot_token_id(end_of_turn[0])
    # wenlm tokenizers add no BOS: prompts are encoded as the model was trained.
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def write_gguf(model: Any, tokenizer: Any, path: Path, outtype: str, pre_tokenizer: str, name: str) -> None:
    writer = gguf.GGUFWriter(path, arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    add_metadata(writer, model, tokenizer, pre_tokenizer, outtype, name)
    for tensor_name, tensor in gguf_tensors(model):
        add_tensor(writer, tensor_name, tensor, OUTTYPES[outtype][0])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def ollama_modelfile(gguf_name: str) -> str:
    """An Ollama Modelfile for the GGUF beside it: wenlm's chat format and its two stop tokens."""
    return (
        f"FROM ./{gguf_name}\n"
        'TEMPLATE """{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n"""\n'
        'PARAMETER stop "<|end|>"\nPARAMETER stop "<|eos|>"\n'
    )


def gguf_card(model: str, gguf_name: str, command: str) -> str:
    return (
        f"{GGUF_CARD_MARKER}\n\n# GGUF export of a wenlm model\n\n"
        f"`{gguf_name}` is `{model}` as a llama.cpp model (architecture `llama`, byte-level BPE with llama.cpp's "
        f"`qwen2` pre-tokenizer, stops at `<|eos|>` and `<|end|>`).\n\n"
        f'```bash\nllama-cli -m {gguf_name} -p "从前有一个" -n 64      # llama.cpp\n'
        f"llama-server -m {gguf_name} --port 8080              # OpenAI-compatible server\n"
        f"ollama create my-wenlm -f Modelfile && ollama run my-wenlm   # Ollama, with the Modelfile here\n```\n\n"
        f"Made with:\n\n```bash\n{command}\n```\n"
    )


def export_gguf(
    model: str, output_dir: str | Path, revision: str | None = None, outtype: str = "f16"
) -> Path:
    """Write `model` (a wenlm folder or Hub id) to `output_dir` as `model-<outtype>.gguf` plus an Ollama
    `Modelfile` and a README.md; the folder appears complete or not at all."""
    if outtype not in OUTTYPES:
        raise ValueError(f"--outtype must be one of {', '.join(OUTTYPES)}, got {outtype!r}.")
    output_dir = Path(output_dir)
    check_output_folder(output_dir)
    wenlm_model, tokenizer = load_wenlm(model, revision)
    pre_tokenizer = check_exportable(wenlm_model.config, tokenizer, model)
    gguf_name = f"model-{outtype}.gguf"
    command = export_command(model, revision, output_dir, "--to gguf", "--outtype", outtype)
    with folder_written_whole(output_dir) as staging:
        name = Path(model).name or model
        write_gguf(wenlm_model, tokenizer, staging / gguf_name, outtype, pre_tokenizer, name)
        write_atomically(staging / "Modelfile", ollama_modelfile(gguf_name))
        write_atomically(staging / "README.md", gguf_card(model, gguf_name, command))
    return output_dir
