"""GPU benchmark of wenlm vs transformers' Llama (identical shapes and weights), presets small and base, bfloat16.

NOT RUN ON A GPU YET: only the CPU smoke mode below has been exercised. The device command (one call, well under
10 minutes; --budget-s stops starting new cases after 480 s and the JSON is written after every case):

    cd benchmarks && python bench_gpu.py --output gpu_h200.json

Code-path check on a CPU-only machine (nano, seq 64, 1 repeat, 4 new tokens, 1 thread; timings meaningless):

    cd benchmarks && python bench_gpu.py --device cpu --smoke --output /tmp/gpu_smoke.json

Precision: model weights, gradients and AdamW state are bfloat16 (the models are cast, no autocast), for wenlm
and Llama alike; the loss softmax runs in float32 inside both. TF32 stays at torch's default (off).

1. Training step (forward with labels, backward, AdamW step, zero_grad) at seq 256 and 1024, 32768 tokens per
   step, for Llama, wenlm and wenlm with loss_chunk_size=256 (bench_train.VARIANTS), with attention "sdpa" and, only if flash_attn
   imports, "flash_attention_2". bench_train.bench_case does the timing: variants interleaved, median of repeats.
2. MFU = achieved FLOP/s (common.flops_per_token x tokens / step time) / measured bf16 matmul peak (best of
   several 8192^3 torch.mm).
3. Greedy generate() with KV cache (bench_generate.bench_case): batch 1 and 8, prompt 128 and 512, 128 new tokens,
   attention "sdpa", tokens/s, decode tokens/s and time to first token.

Order: sdpa training, then generation, then flash-attention training, so the budget guard drops the least
essential cases first.
"""

import argparse
import sys
import time

import torch
from bench_generate import add_shape_arguments
from bench_generate import bench_case as generate_case
from bench_train import VARIANTS, print_case
from bench_train import case_from_args as train_case_from_args
from common import BENCH_VOCAB, machine_info, matmul_peak_gflops, write_json

TRAIN_VARIANTS = ["llama", "wenlm", "wenlm-fused-loss"]
# 32768 tokens per step at both lengths: enough work per kernel that a 20-90M-parameter model is not bound by
# launch overhead, and far below 139 GiB even with Llama's full float32 logits (~1 GiB at vocab 8192).
GPU_TRAIN_BATCH = {256: 128, 1024: 32}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu together with --smoke")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes (nano, seq 64, 1 repeat, 4 new tokens) to check the code paths",
    )
    parser.add_argument("--presets", nargs="+", default=["small", "base"])
    parser.add_argument("--seq-lens", nargs="+", type=int, default=[256, 1024])
    parser.add_argument("--variants", nargs="+", default=TRAIN_VARIANTS, choices=list(VARIANTS))
    parser.add_argument("--repeats", type=int, default=7, help="interleaved training repeats")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps per variant")
    parser.add_argument("--steps-per-repeat", type=int, default=5)
    add_shape_arguments(parser)
    parser.add_argument("--generate-repeats", type=int, default=3)
    parser.add_argument(
        "--budget-s",
        type=float,
        default=480.0,
        help="no new case starts after this many seconds; the JSON is written either way",
    )
    parser.add_argument("--output", default="gpu.json")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(presets=["nano"], seq_lens=[64], repeats=1, warmup=1, steps_per_repeat=1)
        vars(args).update(batch_sizes=[1, 2], prompt_lens=[16], new_tokens=4, generate_repeats=1)
    return args


def check_device(args: argparse.Namespace) -> torch.device:
    """Exit with a message, not a traceback: the usual mistake is running this on a CPU-only machine."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit(
            f"bench_gpu.py: CUDA is not available here (torch {torch.__version__}, built for CUDA "
            f"{torch.version.cuda}). This benchmark needs an NVIDIA GPU; to check its code paths on CPU run "
            f"`python bench_gpu.py --device cpu --smoke`."
        )
    if device.type == "cpu" and not args.smoke:
        sys.exit(
            "bench_gpu.py: --device cpu is only for --smoke; CPU timings come from bench_train.py and "
            "bench_generate.py."
        )
    if device.type not in ("cuda", "cpu"):
        sys.exit(f"bench_gpu.py: unsupported --device {args.device!r}; use cuda, or cpu with --smoke.")
    if device.type == "cuda" and device.index is None:
        # torch.cuda.set_device rejects a CUDA device without an index.
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def pick_dtype(device: torch.device) -> torch.dtype:
    """bfloat16, unless this CPU build cannot train in it (then float32, so the smoke run still checks the code)."""
    if device.type == "cuda":
        return torch.bfloat16
    try:
        layer = torch.nn.Linear(8, 8, dtype=torch.bfloat16)
        optimizer = torch.optim.AdamW(layer.parameters())
        layer(torch.randn(2, 8, dtype=torch.bfloat16)).sum().backward()
        optimizer.step()
        return torch.bfloat16
    except RuntimeError:
        return torch.float32


def attention_implementations(device: torch.device) -> tuple[list[str], str]:
    if device.type != "cuda":
        return ["sdpa"], "flash_attention_2 skipped: CUDA only"
    try:
        import flash_attn  # noqa: F401
    except Exception as error:  # a broken wheel raises OSError/RuntimeError, not only ImportError
        return [
            "sdpa"
        ], f"flash_attention_2 skipped: flash_attn does not import ({type(error).__name__}: {error})"
    return ["sdpa", "flash_attention_2"], f"flash_attn {getattr(flash_attn, '__version__', '?')} imports"


def device_info(device: torch.device, dtype: torch.dtype) -> dict:
    info = {
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "torch_cuda": torch.version.cuda,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            {
                "gpu": torch.cuda.get_device_name(device),
                "gpu_count": torch.cuda.device_count(),
                "compute_capability": f"{props.major}.{props.minor}",
                "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                "cudnn": torch.backends.cudnn.version(),
            }
        )
    return info


def train_batch(args: argparse.Namespace, seq_len: int) -> int:
    return 2 if args.smoke else GPU_TRAIN_BATCH.get(seq_len, max(1, 32768 // seq_len))


def print_generate(case: dict) -> None:
    for name, m in case["models"].items():
        speedup = case["wenlm_speedup_vs_llama"] if name == "wenlm" else 1.0
        print(
            f"{case['preset']:6} {case['batch_size']:5} {case['prompt_len']:6} {name:6} {m['median_total_s']:8.3f} "
            f"{m['median_ttft_s'] * 1e3:8.1f} {m['tokens_per_s']:8.1f} {m['decode_tokens_per_s']:12.1f} "
            f"{speedup:8.2f}"
        )


def run_train_case(args, preset, seq_len, attn, device, dtype, info, peak) -> dict:
    case = train_case_from_args(
        args,
        preset,
        seq_len,
        batch_size=train_batch(args, seq_len),
        device=device,
        dtype=dtype,
        attn_implementation=attn,
    )
    case["attn_implementation"], case["dtype"] = attn, info["dtype"]
    for variant in case["variants"].values():
        variant["mfu"] = variant["achieved_gflops"] / peak
    print_case(case, f" {case['attn_implementation']}")
    return case


def run_generate_case(args, preset, shape, attn, device, dtype, info, print_header: bool) -> dict:
    batch_size, prompt_len = shape
    case = generate_case(
        preset,
        batch_size,
        prompt_len,
        args.new_tokens,
        args.generate_repeats,
        device=device,
        dtype=dtype,
        attn_implementation=attn,
    )
    case["attn_implementation"], case["dtype"] = attn, info["dtype"]
    if print_header:
        print(
            f"\ngreedy generate(), KV cache, {attn}, {args.new_tokens} new tokens, median of {args.generate_repeats}"
        )
        print(
            f"{'preset':6} {'batch':>5} {'prompt':>6} {'model':6} {'total s':>8} {'TTFT ms':>8} "
            f"{'tok/s':>8} {'decode tok/s':>12} {'vs llama':>8}"
        )
    print_generate(case)
    return case


def main() -> None:
    args = parse_args()
    device = check_device(args)
    start = time.perf_counter()
    if device.type == "cpu":
        # The smoke run only checks code paths; one thread keeps it off the other cores of a shared machine.
        torch.set_num_threads(1)
    else:
        torch.cuda.set_device(device)
    dtype = pick_dtype(device)
    attn_impls, flash_note = attention_implementations(device)
    info = {**machine_info(), **device_info(device, dtype)}
    peak_size, peak_repeats = (256, 2) if args.smoke else (8192, 10)
    # The first calls also warm up cuBLAS and the clocks; the best of the rest is the peak.
    matmul_peak_gflops(peak_size, 3, device, dtype)
    peak = matmul_peak_gflops(peak_size, peak_repeats, device, dtype)

    print(
        f"{info.get('gpu', info['cpu'])}, torch {info['torch']}, CUDA {info['torch_cuda']}, {info['dtype']} "
        f"weights, vocab {BENCH_VOCAB}{', SMOKE (tiny sizes)' if args.smoke else ''}"
    )
    print(
        f"{info['dtype']} matmul peak ({peak_size}^3 torch.mm, best of {peak_repeats}): {peak / 1e3:.1f} TFLOP/s"
    )
    print(f"attention: {', '.join(attn_impls)} ({flash_note})")

    train_cases, generate_cases, skipped, errors = [], [], [], []
    jobs = [("train", "sdpa", preset, seq_len) for preset in args.presets for seq_len in args.seq_lens]
    jobs += [
        ("generate", "sdpa", preset, (batch_size, prompt_len))
        for preset in args.presets
        for batch_size in args.batch_sizes
        for prompt_len in args.prompt_lens
    ]
    jobs += [
        ("train", attn, preset, seq_len)
        for attn in attn_impls
        if attn != "sdpa"
        for preset in args.presets
        for seq_len in args.seq_lens
    ]

    def payload(complete: bool) -> dict:
        return {
            "benchmark": "bench_gpu: training step (forward+backward+AdamW step+zero_grad), MFU, greedy generate()",
            "smoke": args.smoke,
            "complete": complete,
            "precision": f"model weights cast to {info['dtype']}, no autocast",
            "vocab_size": BENCH_VOCAB,
            "machine": info,
            "attn_implementations": attn_impls,
            "flash_attn": flash_note,
            "matmul_peak": {
                "gflops": peak,
                "size": peak_size,
                "dtype": info["dtype"],
                "best_of": peak_repeats,
            },
            "train": {
                "repeats": args.repeats,
                "warmup_steps": args.warmup,
                "steps_per_repeat": args.steps_per_repeat,
                "variants": {name: VARIANTS[name] for name in args.variants},
                "cases": train_cases,
            },
            "generate": {
                "repeats": args.generate_repeats,
                "new_tokens": args.new_tokens,
                "attn_implementation": "sdpa",
                "cases": generate_cases,
            },
            "budget_s": args.budget_s,
            "elapsed_s": time.perf_counter() - start,
            "skipped": skipped,
            "errors": errors,
        }

    for kind, attn, preset, shape in jobs:
        label = f"{kind} {preset} {attn} {shape}"
        if time.perf_counter() - start > args.budget_s:
            skipped.append(label)
            continue
        try:
            if kind == "train":
                train_cases.append(run_train_case(args, preset, shape, attn, device, dtype, info, peak))
            else:
                generate_cases.append(
                    run_generate_case(
                        args, preset, shape, attn, device, dtype, info, print_header=not generate_cases
                    )
                )
        except Exception as error:
            # The device run is one shot: a failing case (a flash-attention kernel, memory) is recorded and the
            # rest still run. The smoke run exists to surface such errors, so there it stops.
            if args.smoke:
                raise
            errors.append({"case": label, "error": f"{type(error).__name__}: {error}"})
            print(f"\n{label}: FAILED {type(error).__name__}: {error}")
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        # Rewritten after every case so a run cut short by the device's time limit still leaves results.
        path = write_json(args.output, payload(complete=False))

    path = write_json(args.output, payload(complete=not skipped and not errors))
    if skipped:
        print(f"\nbudget of {args.budget_s:.0f} s exceeded; skipped: {'; '.join(skipped)}")
    print(f"\n{time.perf_counter() - start:.0f} s in all; wrote {path}")


if __name__ == "__main__":
    main()
