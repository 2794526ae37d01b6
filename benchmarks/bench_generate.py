"""Greedy decoding speed with the KV cache: wenlm vs transformers' Llama with identical shapes and weights.

For each (preset, batch, prompt length) both models generate exactly --new-tokens tokens (end-of-text is
suppressed); the runs alternate between the models and each figure is the median over repeats.
Time to first token (TTFT) = a generate() call with max_new_tokens=1 (prefill + one token).
Decode rate = batch * (new_tokens - 1) / (total time - TTFT).

    python benchmarks/bench_generate.py            # micro and small, batch 1 and 8, prompt 128 and 512
    python benchmarks/bench_generate.py --quick    # micro, batch 1, prompt 128, 32 new tokens
"""

import argparse
import time

import torch
from common import (
    BENCH_VOCAB,
    add_threads_argument,
    build_pair,
    median,
    place,
    start_cpu_run,
    synchronize,
    wenlm_config,
    write_json,
)


def timed_generate(model, prompt: torch.Tensor, new_tokens: int) -> float:
    synchronize(prompt.device)
    start = time.perf_counter()
    output = model.generate(
        input_ids=prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        use_cache=True,
        pad_token_id=0,
    )
    synchronize(prompt.device)
    elapsed = time.perf_counter() - start
    assert output.shape[1] == prompt.shape[1] + new_tokens
    return elapsed


def bench_case(
    preset: str,
    batch_size: int,
    prompt_len: int,
    new_tokens: int,
    repeats: int,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    attn_implementation: str | None = None,
) -> dict:
    """The keyword arguments serve bench_gpu.py; their defaults are this script's CPU float32 run."""
    config = wenlm_config(preset, prompt_len + new_tokens)
    wenlm, llama = build_pair(config)
    models = {
        name: place(model, device, dtype, attn_implementation).eval()
        for name, model in (("llama", llama), ("wenlm", wenlm))
    }
    generator = torch.Generator().manual_seed(0)
    prompt = torch.randint(3, BENCH_VOCAB, (batch_size, prompt_len), generator=generator).to(device)
    for model in models.values():
        timed_generate(model, prompt, 4)  # warm-up: allocator, kernel selection
    totals = {name: [] for name in models}
    firsts = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            firsts[name].append(timed_generate(model, prompt, 1))
            totals[name].append(timed_generate(model, prompt, new_tokens))
    result = {
        "preset": preset,
        "batch_size": batch_size,
        "prompt_len": prompt_len,
        "new_tokens": new_tokens,
        "models": {},
    }
    for name in models:
        total, first = median(totals[name]), median(firsts[name])
        result["models"][name] = {
            "median_total_s": total,
            "median_ttft_s": first,
            "total_times_s": totals[name],
            "ttft_times_s": firsts[name],
            "tokens_per_s": batch_size * new_tokens / total,
            "decode_tokens_per_s": batch_size * (new_tokens - 1) / max(total - first, 1e-9),
        }
    result["wenlm_speedup_vs_llama"] = (
        result["models"]["llama"]["median_total_s"] / result["models"]["wenlm"]["median_total_s"]
    )
    return result


def add_shape_arguments(parser: argparse.ArgumentParser) -> None:
    """The generation cases' shapes, here and in bench_gpu.py: batch sizes, prompt lengths, tokens generated."""
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8], help="generation batch sizes")
    parser.add_argument("--prompt-lens", nargs="+", type=int, default=[128, 512])
    parser.add_argument("--new-tokens", type=int, default=128)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["micro", "small"])
    add_shape_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3)
    add_threads_argument(parser)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default="generate.json")
    args = parser.parse_args()
    if args.quick:
        vars(args).update(presets=["micro"], batch_sizes=[1], prompt_lens=[128], new_tokens=32, repeats=2)

    info = start_cpu_run(args.threads)
    print(
        f"greedy, KV cache, float32, vocab {BENCH_VOCAB}, {args.new_tokens} new tokens, median of {args.repeats}"
    )
    print(
        f"{'preset':6} {'batch':>5} {'prompt':>6} {'model':6} {'total s':>8} {'TTFT s':>7} {'tok/s':>7} "
        f"{'decode tok/s':>12}"
    )
    cases = []
    for preset in args.presets:
        for batch_size in args.batch_sizes:
            for prompt_len in args.prompt_lens:
                case = bench_case(preset, batch_size, prompt_len, args.new_tokens, args.repeats)
                cases.append(case)
                for name, m in case["models"].items():
                    print(
                        f"{preset:6} {batch_size:5} {prompt_len:6} {name:6} {m['median_total_s']:8.2f} "
                        f"{m['median_ttft_s']:7.3f} {m['tokens_per_s']:7.1f} {m['decode_tokens_per_s']:12.1f}"
                    )
    path = write_json(
        args.output,
        {
            "benchmark": "greedy generate() with KV cache, float32",
            "vocab_size": BENCH_VOCAB,
            "machine": info,
            "repeats": args.repeats,
            "cases": cases,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
