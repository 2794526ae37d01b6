"""Shared helpers for the wenlm benchmarks: paired wenlm/Llama models with identical shapes and weights,
machine description, the --threads option, matmul peak and robust timing."""

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

from wenlm.modeling import PRESETS, WenLMConfig, WenLMForCausalLM
from wenlm.training.export import llama_twin

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BENCH_VOCAB = 8192


def wenlm_config(preset: str, max_positions: int, vocab_size: int = BENCH_VOCAB, **overrides) -> WenLMConfig:
    fields = {
        **PRESETS[preset],
        "max_position_embeddings": max(max_positions, PRESETS[preset]["max_position_embeddings"]),
    }
    return WenLMConfig(vocab_size=vocab_size, **{**fields, **overrides})


def build_pair(config: WenLMConfig, seed: int = 0) -> tuple[WenLMForCausalLM, LlamaForCausalLM]:
    """wenlm and Llama models holding the same weights (wenlm.training.export.llama_twin)."""
    torch.manual_seed(seed)
    wenlm = WenLMForCausalLM(config)
    return wenlm, llama_twin(wenlm)


def flops_per_token(config: WenLMConfig, seq_len: int) -> tuple[int, str]:
    """Training FLOPs per token, PaLM-style: 6*N + 12*L*d*T, with N = non-embedding parameters + the vocabulary
    projection counted once (tied or not, the lm_head matmul runs once per token)."""
    n = config.num_parameters(exclude_embeddings=True) + config.vocab_size * config.hidden_size
    attention = 12 * config.num_hidden_layers * config.num_attention_heads * config.head_dim * seq_len
    return 6 * n + attention, "6*(N_non_embedding + d*V) + 12*L*(heads*head_dim)*T"


def place(
    model: torch.nn.Module,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    attn_implementation: str | None = None,
) -> torch.nn.Module:
    """`model` moved to `device`/`dtype`, with the attention implementation set after the move (transformers checks
    flash-attention against the weights' device and dtype). The defaults leave a CPU float32 model as it is."""
    model = model.to(device=device, dtype=dtype)
    if attn_implementation is not None:
        model.set_attn_implementation(attn_implementation)
    return model


def synchronize(device: str | torch.device = "cpu") -> None:
    """Wait for queued GPU work so wall-clock timings cover it; a no-op on CPU, where ops run eagerly."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(
    size: int = 2048, repeats: int = 5, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> float:
    """Best GFLOP/s of a square torch.mm (float32 at the current thread count by default): the MFU denominator."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def machine_info() -> dict:
    model_name = platform.processor()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model_name = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": model_name,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_at_start": load,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's choice). On a shared, overloaded machine 1 thread avoids "
        "OpenMP threads waiting on descheduled peers, which slowed 2-thread steps ~5x here",
    )


def start_cpu_run(threads: int | None) -> dict:
    """Sets torch's thread count to --threads (when given) before anything is timed, then describes the machine
    (machine_info) and prints it on the line a CPU benchmark's output opens with."""
    if threads:
        torch.set_num_threads(threads)
    info = machine_info()
    print(
        f"{info['cpu']}, {info['torch_threads']} threads, torch {info['torch']}, load {info['load_average_at_start']}"
    )
    return info


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_json(name: str, payload: dict) -> Path:
    # A bare file name lands in benchmarks/results/; a path with folders is taken as given.
    path = Path(name) if Path(name).parent != Path(".") else RESULTS_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
