"""wenlm as transformers' Llama: the config conversion and a Llama model holding the same weights.

wenlm's computation is Llama's (tests/test_llama_equivalence.py pins that) and its weight names are identical,
so a wenlm checkpoint is a Llama checkpoint once the config says so. The benchmarks compare against this very
twin, and `wenlm export --to llama` writes it as a folder that loads with no remote code.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoTokenizer, LlamaConfig, LlamaForCausalLM
from transformers.models.auto.tokenization_auto import get_tokenizer_config

from wenlm.modeling import WenLMConfig, WenLMForCausalLM
from wenlm.tokenization import stop_token_ids
from wenlm.training.utils import write_atomically

# Fields with the same name and meaning in both configs.
_SHARED_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "max_position_embeddings",
    "rms_norm_eps",
    "hidden_act",
    "initializer_range",
    "attention_dropout",
    "tie_word_embeddings",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
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
    return LlamaConfig(
        **shared, rope_parameters=dict(config.rope_parameters), attention_bias=False, mlp_bias=False
    )


def llama_twin(model: WenLMForCausalLM) -> LlamaForCausalLM:
    """A LlamaForCausalLM holding exactly `model`'s weights (the state-dict names are identical), in its dtype
    and on its device, with the same attention implementation."""
    llama = LlamaForCausalLM(llama_config_from_wenlm(model.config))
    llama.load_state_dict(model.state_dict(), strict=True)
    llama.to(device=model.device, dtype=model.dtype)
    llama.config._attn_implementation = model.config._attn_implementation
    return llama


# ---------------------------------------------------------------------------------- wenlm export --to llama

# Largest logit difference between the wenlm model and its Llama export that still counts as the same model, per
# dtype of the weights (the two run the same operations; float32 agrees to rounding).
_LOGIT_TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-9}
_LOW_PRECISION_TOLERANCE = 1e-2
# A short mixed Chinese/English text the export is checked on before anything is written.
_PROBE_TEXT = "小明在公园里读书。The cat sat on the mat, 然后睡着了。"
LLAMA_CARD_MARKER = "<!-- Written by `wenlm export --to llama`. -->"


def load_wenlm(model: str, revision: str | None) -> tuple[WenLMForCausalLM, Any]:
    """The wenlm model and tokenizer at `model` (folder or Hub id); refuses another architecture by name."""
    if not Path(model).is_dir() and (model.startswith((".", "/", "~")) or model.count("/") > 1):
        raise FileNotFoundError(f"--model {model}: no such model folder (and not a Hub id NAME/MODEL).")
    try:
        config = AutoConfig.from_pretrained(model, revision=revision)
    except OSError as error:  # a Hub id that does not resolve, or a folder without config.json
        raise FileNotFoundError(f"--model {model}: cannot load its config.json: {error}") from None
    except ValueError as error:  # a config.json that names no model type transformers knows
        raise ValueError(f"--model {model}: not a model config: {error}") from None
    if not isinstance(config, WenLMConfig):
        raise ValueError(
            f"--model {model}: config.json has model_type {config.model_type!r}, not 'wenlm'; wenlm export "
            "converts models written by wenlm pretrain / finetune."
        )
    # A tokenizer with code of its own (wenlm's jieba tokenizer) is refused before any of that code could run.
    if "auto_map" in get_tokenizer_config(model, revision=revision):
        raise ValueError(
            f"--model {model}: its tokenizer runs Python code of its own (wenlm's jieba pre-segmentation, "
            "--use_jieba), which a stock Llama folder cannot carry; export a model trained without --use_jieba."
        )
    tokenizer = AutoTokenizer.from_pretrained(model, revision=revision, trust_remote_code=False)
    wenlm_model = WenLMForCausalLM.from_pretrained(
        model, revision=revision, config=config, dtype="auto"
    ).eval()
    return wenlm_model, tokenizer


def check_same_logits(model: WenLMForCausalLM, llama: LlamaForCausalLM, tokenizer) -> float:
    """The largest logit difference of the two models on a probe text; refuses a difference beyond rounding."""
    ids = tokenizer(_PROBE_TEXT, return_tensors="pt").input_ids[:, : model.config.max_position_embeddings]
    ids = ids.to(model.device)
    with torch.no_grad():
        difference = (model(ids).logits.float() - llama(ids).logits.float()).abs().max().item()
    tolerance = _LOGIT_TOLERANCE.get(model.dtype, _LOW_PRECISION_TOLERANCE)
    if not difference <= tolerance:
        raise RuntimeError(
            f"The Llama export's logits differ from the wenlm model's by {difference:.3g} (allowed {tolerance:g}); "
            "nothing was written. Please report this with the model's config.json."
        )
    return difference


def llama_card(model: str, revision: str | None, command: str, difference: float) -> str:
    """A short model card: where the weights came from and that the conversion changes no number."""
    is_folder = Path(model).exists()
    source = f"the local folder `{Path(model).resolve()}`" if is_folder else f"the Hub model `{model}`"
    if revision:
        source += f" (revision `{revision}`)"
    base_model = "" if is_folder else f"base_model: {model}\n"
    return (
        f"---\nlibrary_name: transformers\npipeline_tag: text-generation\ntags:\n- llama\n- wenlm\n{base_model}---\n"
        f"{LLAMA_CARD_MARKER}\n\n"
        f"# Llama export of a wenlm model\n\n"
        f"This folder is {source}, converted losslessly to a stock `LlamaForCausalLM`: wenlm's computation is "
        f"Llama's and its weight names are Llama's, so the weights are copied unchanged and only the config is "
        f"renamed. On a probe text its logits equal the wenlm model's (largest difference {difference:.1e}).\n\n"
        f"It needs no remote code and no wenlm:\n\n"
        f"```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        f'tokenizer = AutoTokenizer.from_pretrained("PATH")\nmodel = AutoModelForCausalLM.from_pretrained("PATH")\n```\n\n'
        f"Generation stops at `<|eos|>` and at the end of a chat turn `<|end|>`.\n\n"
        f"Made with:\n\n```bash\n{command}\n```\n"
    )


def check_output_folder(output_dir: Path) -> None:
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise FileExistsError(
            f"--output_dir {output_dir} already exists and is not an empty folder; choose another --output_dir or "
            "delete it: wenlm export never overwrites files."
        )


def export_command(model: str, revision: str | None, output_dir: Path, *options: str) -> str:
    """The `wenlm export` command line that writes `output_dir`, for the exported folder's card."""
    revision_option = ["--revision", revision] if revision else []
    return " ".join(
        ["wenlm export", "--model", model, *revision_option, *options, "--output_dir", str(output_dir)]
    )


@contextmanager
def folder_written_whole(output_dir: Path) -> Iterator[Path]:
    """A staging folder beside `output_dir` to write into; renamed to `output_dir` when the block succeeds and
    removed when it fails, so the folder appears complete or not at all."""
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        yield staging
        if output_dir.exists():
            output_dir.rmdir()  # checked empty before writing; the rename needs the name free
        os.replace(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def export_llama(model: str, output_dir: str | Path, revision: str | None = None) -> Path:
    """Write `model` (a wenlm folder or Hub id) to `output_dir` as a LlamaForCausalLM folder: config.json,
    model.safetensors, the tokenizer files, generation_config.json and a README.md saying where it came from.
    The folder appears complete or not at all."""
    output_dir = Path(output_dir)
    check_output_folder(output_dir)
    wenlm_model, tokenizer = load_wenlm(model, revision)
    llama = llama_twin(wenlm_model).eval()
    difference = check_same_logits(wenlm_model, llama, tokenizer)
    llama.generation_config = copy.deepcopy(wenlm_model.generation_config)
    llama.generation_config.eos_token_id = stop_token_ids(
        tokenizer, wenlm_model.generation_config.eos_token_id
    )
    tokenizer.model_max_length = llama.config.max_position_embeddings
    command = export_command(model, revision, output_dir, "--to llama")
    with folder_written_whole(output_dir) as staging:
        llama.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        write_atomically(staging / "README.md", llama_card(model, revision, command, difference))
    return output_dir
