"""`wenlm quickstart`: the main job. Trains a tokenizer and a small model on the built-in bilingual corpus with
`wenlm pretrain`, then generates Chinese and English continuations through `pipeline("text-generation")`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wenlm.training.pretrain import main as pretrain_main

PROMPTS = ("小明在", "一天早上，", "Once upon a time,", "Tom said:")

# Sized to finish in under 10 minutes on 2 CPU cores (README records the measured time and bits per byte).
QUICKSTART_PRETRAIN_ARGS = [
    "--preset", "micro",
    "--vocab_size", "4096",
    "--block_size", "256",
    "--per_device_train_batch_size", "16",
    "--learning_rate", "3e-3",
    "--eval_steps", "200",
    "--save_steps", "200",
    "--logging_steps", "25",
]


def generate_samples(model_dir: str | Path, prompts=PROMPTS, max_new_tokens: int = 48, seed: int = 0) -> list[str]:
    from transformers import pipeline, set_seed

    set_seed(seed)
    generator = pipeline("text-generation", model=str(model_dir), trust_remote_code=True)
    outputs = generator(list(prompts), max_new_tokens=max_new_tokens, do_sample=True, top_p=0.9, temperature=0.8)
    return [output[0]["generated_text"] for output in outputs]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="wenlm quickstart", description=__doc__)
    parser.add_argument("--output_dir", default="wenlm-quickstart", help="where the model folder is written")
    parser.add_argument("--num_docs", type=int, default=32000, help="built-in corpus documents to generate")
    parser.add_argument("--num_train_epochs", type=float, default=1.0)
    args, extra = parser.parse_known_args(argv)
    pretrain_args = [
        "--train_files", f"builtin:{args.num_docs}",
        "--output_dir", args.output_dir,
        "--num_train_epochs", str(args.num_train_epochs),
        *QUICKSTART_PRETRAIN_ARGS,
        *extra,  # later options win in HfArgumentParser, so users can override any default above
    ]
    report = pretrain_main(pretrain_args)
    if not report:  # non-main process under torchrun
        return report
    print("\nSamples from pipeline('text-generation'):")
    for text in generate_samples(args.output_dir):
        print("  " + text.replace("\n", " ⏎ "))
    results = report["results"]
    floor = report.get("entropy_floor_bpb")
    print(f"\nvalidation bits per byte: {results['eval_bpb']:.4f}"
          + (f" (corpus entropy floor {floor:.4f})" if floor is not None else ""))
    print(f"model, tokenizer and remote code: {Path(args.output_dir).resolve()}")
    print(f"model card: {Path(args.output_dir).resolve() / 'README.md'}")
    print(f"report: {json.dumps({k: report['training'][k] for k in ('steps', 'tokens_seen', 'wall_time_seconds')})}")
    return report
