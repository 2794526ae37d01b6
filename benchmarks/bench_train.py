"""Training-step throughput of wenlm vs transformers' Llama with identical shapes, weights and dtype.

One timed step = forward with labels, backward, AdamW step, zero_grad. Variants run interleaved (A, B, C, A, B,
C, ...) in one process so load changes on the shared machine hit all of them alike; each variant's figure is the
median over repeats after warm-up.

    python benchmarks/bench_train.py                      # full run, writes results/train_throughput.json
    python benchmarks/bench_train.py --quick              # nano only, seq 256, few repeats
    python benchmarks/bench_train.py --presets small --seq-lens 1024 --repeats 7
"""

import argparse
import time

import torch
from common import (
    BENCH_VOCAB,
    add_threads_argument,
    build_pair,
    flops_per_token,
    matmul_peak_gflops,
    median,
    place,
    start_cpu_run,
    synchronize,
    wenlm_config,
    write_json,
)
from torch.profiler import ProfilerActivity, profile

from wenlm.training.trainer import fused_training_loss

# Batch sizes that make one float32 step take roughly 0.1-1 s on a 2-core CPU.
BATCH = {
    ("nano", 256): 8,
    ("nano", 1024): 2,
    ("micro", 256): 8,
    ("micro", 1024): 2,
    ("small", 256): 2,
    ("small", 1024): 1,
    ("base", 256): 2,
    ("base", 1024): 1,
}

# Training speed options (see BENCHMARKS.md), applied the way `wenlm pretrain` applies them: the trainer's fused
# loss (--loss_chunk_size) and torch.compile of the whole model (--torch_compile true). None: Llama, stock loss.
VARIANTS = {
    "llama": None,
    "wenlm": {},
    "wenlm-fused-loss": {"loss_chunk_size": 256},
    "wenlm-fast": {"loss_chunk_size": 256, "torch_compile": True},
    # The Trainer's --bf16 on CPU: float32 weights and optimizer, forward and backward under bf16 autocast.
    "wenlm-bf16": {"autocast_bf16": True},
    "wenlm-fused-loss-bf16": {"loss_chunk_size": 256, "autocast_bf16": True},
}


def make_step(
    model,
    batch: torch.Tensor,
    loss_chunk_size: int = 0,
    torch_compile: bool = False,
    autocast_bf16: bool = False,
):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    forward = torch.compile(model) if torch_compile else model
    inputs = {"input_ids": batch, "labels": batch}

    def step() -> float:
        with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
            if loss_chunk_size:
                loss, _ = fused_training_loss(forward, model.lm_head.weight, inputs, loss_chunk_size)
            else:
                loss = forward(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


GEMM_OPS = {"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm"}


def time_breakdown(step) -> dict:
    """Shares of one profiled step: matrix multiplications, attention kernels, the optimizer, and the rest.

    GEMMs and attention kernels already run near the machine's limits and identical math needs the same ones,
    so 1 / (their share + the optimizer's) of the reference model bounds what any same-math implementation can
    gain at the same kernel speed.
    """

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        started = time.perf_counter()
        step()
        wall = time.perf_counter() - started
    gemm = attention = optimizer = 0.0
    for event in profiler.key_averages():
        if event.key in GEMM_OPS:
            gemm += event.self_cpu_time_total
        elif "scaled_dot_product" in event.key or "flash_attention" in event.key:
            attention += event.self_cpu_time_total
        elif event.key.startswith("Optimizer.step"):
            optimizer += event.cpu_time_total
    shares = {
        name: value / 1e6 / wall
        for name, value in (("gemm", gemm), ("attention", attention), ("optimizer", optimizer))
    }
    shares["other"] = max(0.0, 1.0 - sum(shares.values()))
    return {"profiled_step_s": wall, "shares": shares}


def bench_case(
    preset: str,
    seq_len: int,
    variants: list[str],
    repeats: int,
    warmup: int,
    steps_per_repeat: int,
    *,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    attn_implementation: str | None = None,
    breakdown: bool = False,
) -> dict:
    """The keyword arguments serve bench_gpu.py; their defaults are this script's CPU float32 run."""
    batch_size = batch_size or BATCH.get((preset, seq_len), 1)
    base_config = wenlm_config(preset, seq_len)
    generator = torch.Generator().manual_seed(0)
    batch = torch.randint(3, BENCH_VOCAB, (batch_size, seq_len), generator=generator).to(device)
    steps = {}
    compile_seconds = {}
    for name in variants:
        options = VARIANTS[name]
        wenlm, llama = build_pair(base_config)
        model = place(llama if options is None else wenlm, device, dtype, attn_implementation)
        steps[name] = make_step(model, batch, **(options or {}))
        synchronize(device)
        start = time.perf_counter()
        for _ in range(warmup):
            steps[name]()
        synchronize(device)
        compile_seconds[name] = time.perf_counter() - start
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name in variants:
            synchronize(device)
            start = time.perf_counter()
            for _ in range(steps_per_repeat):
                steps[name]()
            synchronize(device)
            times[name].append((time.perf_counter() - start) / steps_per_repeat)
    flops, formula = flops_per_token(base_config, seq_len)
    tokens = batch_size * seq_len
    result = {
        "preset": preset,
        "seq_len": seq_len,
        "batch_size": batch_size,
        "tokens_per_step": tokens,
        "non_embedding_params": base_config.num_parameters(exclude_embeddings=True),
        "flops_per_token": flops,
        "flops_formula": formula,
        "variants": {},
    }
    for name in variants:
        step_time = median(times[name])
        result["variants"][name] = {
            "median_step_s": step_time,
            "step_times_s": times[name],
            "tokens_per_s": tokens / step_time,
            "achieved_gflops": flops * tokens / step_time / 1e9,
            "warmup_s": compile_seconds[name],
        }
        if breakdown:
            result["variants"][name]["breakdown"] = time_breakdown(steps[name])
    if "llama" in variants:
        llama_time = result["variants"]["llama"]["median_step_s"]
        for name in variants:
            result["variants"][name]["speedup_vs_llama"] = (
                llama_time / result["variants"][name]["median_step_s"]
            )
    return result


def case_from_args(args: argparse.Namespace, preset: str, seq_len: int, **options) -> dict:
    """bench_case with the variants and step counts of the command line, this script's or bench_gpu.py's."""
    return bench_case(
        preset, seq_len, args.variants, args.repeats, args.warmup, args.steps_per_repeat, **options
    )


def print_case(case: dict, label: str = "") -> None:
    print(
        f"\n{case['preset']} seq {case['seq_len']} batch {case['batch_size']}{label} "
        f"({case['flops_per_token'] / 1e6:.1f} MFLOP/token)"
    )
    print(f"  {'variant':18} {'step ms':>9} {'tok/s':>10} {'MFU':>6} {'vs llama':>8} {'warm-up s':>9}")
    for name, v in case["variants"].items():
        speedup = v.get("speedup_vs_llama", float("nan"))
        print(
            f"  {name:18} {v['median_step_s'] * 1e3:9.2f} {v['tokens_per_s']:10.0f} {v['mfu']:6.1%} "
            f"{speedup:8.2f} {v['warmup_s']:9.1f}"
        )
    for name, v in case["variants"].items():
        if "breakdown" in v:
            shares = v["breakdown"]["shares"]
            bound = 1.0 / max(1e-9, shares["gemm"] + shares["attention"] + shares["optimizer"])
            print(
                f"  {name:18} profiled step: "
                + ", ".join(f"{k} {x:.0%}" for k, x in shares.items())
                + f"; same-math bound {bound:.2f}x its own step"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["nano", "micro", "small"])
    parser.add_argument("--seq-lens", nargs="+", type=int, default=[256, 1024])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed steps per variant (includes compilation)"
    )
    parser.add_argument("--steps-per-repeat", type=int, default=2)
    add_threads_argument(parser)
    parser.add_argument("--quick", action="store_true", help="nano, seq 256, 3 repeats: a smoke run")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="profile one extra step per variant: GEMM / attention / optimizer / other shares",
    )
    parser.add_argument("--output", default="train_throughput.json")
    args = parser.parse_args()
    if args.quick:
        vars(args).update(presets=["nano"], seq_lens=[256], repeats=3, warmup=2)

    info = start_cpu_run(args.threads)
    peak = matmul_peak_gflops()
    bf16_peak = matmul_peak_gflops(dtype=torch.bfloat16)
    print(
        f"matmul peak (2048^3 torch.mm, best of 5): float32 {peak:.1f}, bfloat16 {bf16_peak:.1f} GFLOP/s; "
        f"vocab {BENCH_VOCAB}"
    )
    cases = []
    for preset in args.presets:
        for seq_len in args.seq_lens:
            case = case_from_args(args, preset, seq_len, breakdown=args.breakdown)
            # On a shared machine one peak measurement can land in a busy moment and understate the peak (MFU
            # above 100% happened); the best peak seen so far in this run is the denominator.
            peak = max(peak, matmul_peak_gflops())
            bf16_peak = max(bf16_peak, matmul_peak_gflops(dtype=torch.bfloat16))
            cases.append(case)
            # Every case's MFU uses the best peak seen so far, so all cases of one JSON share one denominator; an
            # autocast step's GEMMs run in bf16, so its MFU is against the bf16 peak.
            for done in cases:
                for name, variant in done["variants"].items():
                    bf16 = (VARIANTS[name] or {}).get("autocast_bf16", False)
                    variant["mfu"] = variant["achieved_gflops"] / (bf16_peak if bf16 else peak)
            # Rewritten after every case so an interrupted run on the shared machine still leaves results.
            path = write_json(
                args.output,
                {
                    "benchmark": "training step (forward+backward+AdamW step+zero_grad), float32 weights",
                    "vocab_size": BENCH_VOCAB,
                    "matmul_peak_gflops": peak,
                    "bf16_matmul_peak_gflops": bf16_peak,
                    "machine": info,
                    "repeats": args.repeats,
                    "warmup_steps": args.warmup,
                    "steps_per_repeat": args.steps_per_repeat,
                    "variants": {name: VARIANTS[name] for name in args.variants},
                    "cases": cases,
                },
            )
            print_case(case)
    print(
        f"\nMFU in the JSON uses the run's best matmul peaks, float32 {peak:.1f} and bfloat16 {bf16_peak:.1f} "
        f"GFLOP/s (cases printed earlier may show lower ones); wrote {path}"
    )


if __name__ == "__main__":
    main()
