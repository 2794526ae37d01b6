"""`wenlm generate`: continue prompts (or answer them as chat turns, with --chat) through
`pipeline("text-generation")`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

END_OF_TURN_ID = 6


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """Sampling options shared with `wenlm chat`."""
    parser.add_argument("--model", required=True, help="model folder or Hub id")
    parser.add_argument("--revision", default=None, help="branch, tag or commit of a Hub model")
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top_k", type=int, default=50)
    parser.add_argument("--top_p", type=float, default=0.9)
    parser.add_argument("--repetition_penalty", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0, help="same seed and options, same samples")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--do_sample", dest="do_sample", action="store_true", default=True,
                      help="sample with the options above (default)")
    mode.add_argument("--greedy", dest="do_sample", action="store_false", help="always take the likeliest token")


def check_sampling_arguments(args: argparse.Namespace) -> None:
    if args.max_new_tokens < 1:
        raise ValueError(f"--max_new_tokens must be at least 1, got {args.max_new_tokens}.")
    if args.temperature <= 0:
        raise ValueError(f"--temperature must be positive (use --greedy for deterministic output), got {args.temperature}.")
    if not 0 < args.top_p <= 1:
        raise ValueError(f"--top_p must be in (0, 1], got {args.top_p}.")
    if args.top_k < 0:
        raise ValueError(f"--top_k must be 0 (off) or positive, got {args.top_k}.")
    if args.repetition_penalty <= 0:
        raise ValueError(f"--repetition_penalty must be positive, got {args.repetition_penalty}.")


def generation_kwargs(args: argparse.Namespace, tokenizer) -> dict:
    kwargs = dict(max_new_tokens=args.max_new_tokens, do_sample=args.do_sample,
                  repetition_penalty=args.repetition_penalty, pad_token_id=tokenizer.pad_token_id,
                  eos_token_id=[tokenizer.eos_token_id, END_OF_TURN_ID])
    if args.do_sample:
        kwargs.update(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    return kwargs


def read_prompts(args: argparse.Namespace) -> list[str]:
    prompts = list(args.prompts)
    if args.prompts_file:
        path = Path(args.prompts_file)
        if not path.is_file():
            raise FileNotFoundError(f"--prompts_file {path}: no such file.")
        prompts += [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        raise ValueError("No prompts: give them as arguments or with --prompts_file (one per line).")
    return prompts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wenlm generate", description=__doc__)
    parser.add_argument("prompts", nargs="*", metavar="PROMPT", help="texts to continue")
    parser.add_argument("--prompts_file", default=None, help="a UTF-8 file with one prompt per line")
    parser.add_argument("--chat", action="store_true",
                        help="send each prompt as a user turn through the chat template; print only the reply")
    parser.add_argument("--json", action="store_true", help="print one JSON object per prompt")
    add_sampling_arguments(parser)
    return parser


def generate(args: argparse.Namespace) -> list[str]:
    from transformers import pipeline, set_seed

    check_sampling_arguments(args)
    prompts = read_prompts(args)
    generator = pipeline("text-generation", model=args.model, revision=args.revision, trust_remote_code=True)
    kwargs = generation_kwargs(args, generator.tokenizer)
    set_seed(args.seed)
    if args.chat:
        conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
        outputs = generator(conversations, **kwargs)
        # The pipeline returns the conversation with the reply appended as the last message.
        return [output[0]["generated_text"][-1]["content"] for output in outputs]
    outputs = generator(prompts, **kwargs)
    return [output[0]["generated_text"] for output in outputs]


def main(argv: list[str] | None = None) -> list[str]:
    args = build_parser().parse_args(argv)
    texts = generate(args)
    prompts = read_prompts(args)
    for prompt, text in zip(prompts, texts):
        if args.json:
            print(json.dumps({"prompt": prompt, "generated_text": text}, ensure_ascii=False))
        else:
            print(text if not args.chat else f"{prompt}\n→ {text}")
            print()
    return texts


if __name__ == "__main__":
    main()
