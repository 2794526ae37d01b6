"""Pieces several test modules build the same way: a tiny model's config, a saved tiny model folder, command-line
arguments for the wenlm commands, and a Python process in which wenlm cannot be imported."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import torch

from wenlm.modeling import WenLMConfig, WenLMForCausalLM
from wenlm.tokenization import train_tokenizer
from wenlm.training.corpus.grammar import generate_documents


def tiny_config_fields(vocab_size: int, /, *, width: int = 32, **overrides) -> dict:
    """Config fields of the tests' tiny decoders: two layers, heads of 8 dimensions, two key/value heads, an MLP
    twice the width and 64 positions; `overrides` replace or add fields (`vocab_size` included: positional-only,
    so a test can pass a bad one). A dict, not a WenLMConfig, because some tests build a stock LlamaConfig or a
    preset from the same shape."""
    fields = dict(
        vocab_size=vocab_size,
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=2,
        num_attention_heads=width // 8,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return {**fields, **overrides}


def cli_flags(**options) -> list[str]:
    """`--name value` for each option in the order given, as the wenlm commands read them; a list or tuple gives
    one flag several values (`--train_files a.jsonl b.jsonl`), and None leaves the flag out."""
    argv = []
    for name, value in options.items():
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        argv += [f"--{name}", *map(str, values)]
    return argv


def save_wenlm_folder(folder, use_jieba=False, split_rule="qwen2", **config_fields):
    """A randomly initialised nano-preset wenlm model shrunk to the tiny shape, with a 500-token BPE trained on
    built-in stories, saved to `folder`."""
    texts = [doc["text"] for doc in generate_documents(300, seed=5)]
    tokenizer = train_tokenizer(
        texts, vocab_size=500, model_max_length=64, use_jieba=use_jieba, split_rule=split_rule
    )
    torch.manual_seed(0)
    config = WenLMConfig.from_preset(
        "nano",
        **tiny_config_fields(
            len(tokenizer), max_position_embeddings=128, initializer_range=0.2, **config_fields
        ),
    )
    model = WenLMForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id  # as folders written before the fix were
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_without_wenlm(script: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    """Runs `script` (which starts with HIDE_WENLM) under `python -I -S`: no user site and no .pth files, so no
    installed or editable wenlm is on the path; the script appends site-packages, its sys.argv[1], by hand. Offline,
    with its own Hugging Face cache in `cwd`; fails the test unless the script exits 0."""
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, sysconfig.get_paths()["purelib"], *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(cwd / "hf"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result
