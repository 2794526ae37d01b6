"""Quality per compute: character-level tiny Shakespeare under a fixed wall-clock budget.

Data: the first 90% of input.txt (by characters) trains, the last 10% validates, like nanoGPT's
shakespeare_char. The vocabulary is the set of characters in the whole file (65), as in nanoGPT.
Training: stock transformers.Trainer (or --loop minimal: a plain PyTorch loop doing the same steps, to measure
the Trainer's overhead), AdamW, linear warm-up then a cosine decay driven by *elapsed wall-clock time*, so the
schedule ends exactly when the budget does whatever the machine's speed. The budget covers training only;
the final validation pass is extra.
Metric: validation bits per character = total nats over every validation character / characters / ln 2,
from non-overlapping windows of --context characters (each character predicted once, with up to
context-1 characters of history).

Recipes (`--recipes`, several, run one after another in this one process, each from the same seed, so a ratio between
them is not a ratio between machines or days): `old` is the recipe of 2026-12-01 (AdamW, float32, the options
below); `new` is RECIPES["new"]; `name:key=value,...` overrides any option (`optim=muon`, `muon_lr=0.04`, `bf16=1`,
`width=192`, `lr=3e-3`, ...). With --repeats > 1 each repeat walks the recipes in a rotated order.

    python benchmarks/bench_shakespeare.py --budget-s 600 --recipes old new    # the reported run
    python benchmarks/bench_shakespeare.py --budget-s 60 --recipes old try:optim=muon,muon_lr=0.03  # tuning
"""

import argparse
import math
import time
from pathlib import Path

import torch
from common import machine_info, write_json
from torch.utils.data import IterableDataset
from transformers import Trainer, TrainerCallback, TrainingArguments

from wenlm.modeling import WenLMConfig, WenLMForCausalLM
from wenlm.training.trainer import MuonWithAdamW, decoder_matrix_names

DEFAULT_DATA = Path("/work/shared/data/tiny_shakespeare/input.txt")
NANOGPT_REFERENCE = {
    "config": "nanoGPT shakespeare_char CPU: 4 layers, 4 heads, width 128, context 64, "
    "batch 12, 2000 iterations, dropout 0",
    "val_nats_per_char": 1.886,
    "val_bits_per_char": 1.886 / math.log(2),
    "wall_clock_s": 148,
}


# What differs from the old recipe (the command-line options, which are 2026-12-01's settings).
RECIPES = {
    "old": {},
    "new": {"optim": "muon", "bf16": True},
}


class RandomWindows(IterableDataset):
    """Endless random windows of context+1 characters; the model shifts labels inside, so each window trains
    `context` next-character predictions (nanoGPT's x/y pair)."""

    def __init__(self, ids: torch.Tensor, context: int, seed: int):
        self.ids, self.context, self.seed = ids, context, seed

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)
        while True:
            start = int(torch.randint(len(self.ids) - self.context - 1, (1,), generator=generator))
            window = self.ids[start : start + self.context + 1]
            yield {"input_ids": window, "labels": window}


def time_cosine_schedule(optimizer, budget_s: float, warmup_s: float, min_ratio: float = 0.1):
    """LambdaLR whose factor depends on wall-clock time since the first step, not on the step count."""
    start = []

    def factor(_step: int) -> float:
        now = time.perf_counter()
        if not start:
            start.append(now)
        elapsed = now - start[0]
        if elapsed < warmup_s:
            return max(elapsed / warmup_s, 1e-3)
        progress = min((elapsed - warmup_s) / max(budget_s - warmup_s, 1e-9), 1.0)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class StopAtBudget(TrainerCallback):
    def __init__(self, budget_s: float):
        self.budget_s = budget_s
        self.start = None
        self.steps = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1
        if time.perf_counter() - self.start >= self.budget_s:
            control.should_training_stop = True


@torch.no_grad()
def validation_bits_per_char(
    model, ids: torch.Tensor, context: int, batch_size: int = 64
) -> tuple[float, int]:
    model.eval()
    total_nats, predicted = 0.0, 0
    starts = list(range(0, len(ids) - 1, context))
    for first in range(0, len(starts), batch_size):
        windows = [ids[s : s + context + 1] for s in starts[first : first + batch_size]]
        longest = max(len(w) for w in windows)
        batch = torch.zeros(len(windows), longest, dtype=torch.long)
        labels = torch.full_like(batch, -100)
        mask = torch.zeros_like(batch)
        for row, window in enumerate(windows):
            batch[row, : len(window)] = window
            labels[row, : len(window)] = window
            mask[row, : len(window)] = 1
        logits = model(input_ids=batch, attention_mask=mask).logits[:, :-1].float()
        targets = labels[:, 1:]
        total_nats += torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum"
        ).item()
        predicted += int((targets != -100).sum())
    return total_nats / predicted / math.log(2), predicted


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--budget-s", type=float, default=600.0)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument(
        "--mlp", type=int, default=None, help="SwiGLU width; default 8/3 * width rounded to 32"
    )
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup-s", type=float, default=10.0)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the model (the Trainer's torch_compile)"
    )
    parser.add_argument("--bf16", action="store_true", help="the Trainer's bf16 autocast (trainer loop only)")
    parser.add_argument("--loop", choices=["trainer", "minimal"], default="trainer")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads; 1 is faster on an overloaded machine"
    )
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument(
        "--optim",
        choices=["adamw", "muon"],
        default="adamw",
        help="muon: wenlm's MuonWithAdamW (Muon for the decoder matrices, AdamW at --lr for the rest)",
    )
    parser.add_argument("--muon-lr", type=float, default=0.02)
    parser.add_argument("--muon-weight-decay", type=float, default=0.01)
    parser.add_argument(
        "--recipes", nargs="+", default=["old"], help="old, new, or name:key=value,... (see above)"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--output", default="shakespeare.json")
    return parser.parse_args()


def recipe_args(base: argparse.Namespace, spec: str) -> tuple[str, argparse.Namespace]:
    """(name, options) of one --recipes entry: a RECIPES name, or name:key=value,... over the command line."""
    name, _, overrides = spec.partition(":")
    if not overrides and name not in RECIPES:
        raise SystemExit(
            f"--recipes: {name!r} is not one of {', '.join(RECIPES)}; write name:key=value,... instead"
        )
    values = dict(RECIPES.get(name, {}))
    for pair in filter(None, overrides.split(",")):
        key, _, text = pair.partition("=")
        key = key.replace("-", "_")
        if not hasattr(base, key):
            raise SystemExit(f"--recipes {spec!r}: no option {key!r}")
        default = getattr(base, key)
        if isinstance(default, bool):
            values[key] = text.lower() in ("1", "true")
        elif default is None or isinstance(default, int):
            values[key] = int(text)
        else:
            values[key] = type(default)(text)
    return name, argparse.Namespace(**{**vars(base), **values})


def build_model(args: argparse.Namespace, vocab_size: int) -> WenLMForCausalLM:
    mlp = args.mlp or 32 * round(8 * args.width / 3 / 32)
    torch.manual_seed(args.seed)
    config = WenLMConfig(
        vocab_size=vocab_size,
        hidden_size=args.width,
        intermediate_size=mlp,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=args.context + 1,
        dropout=args.dropout,
        pad_token_id=None,
        bos_token_id=None,
        eos_token_id=None,
        use_cache=False,
    )
    return WenLMForCausalLM(config)


def train_with_trainer(args, model, dataset, optimizer, scheduler) -> int:
    stopper = StopAtBudget(args.budget_s)
    training_args = TrainingArguments(
        output_dir="/tmp/wenlm_bench_shakespeare",
        per_device_train_batch_size=args.batch_size,
        max_steps=10**9,
        logging_steps=200,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        max_grad_norm=1.0,
        seed=args.seed,
        torch_compile=args.compile,
        bf16=args.bf16,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        optimizers=(optimizer, scheduler),
        callbacks=[stopper],
    )
    trainer.train()
    return stopper.steps


def train_minimal(args, model, dataset, optimizer, scheduler, start: float) -> int:
    """nanoGPT's loop shape: forward, backward, clip, step, until the budget is spent."""
    model.train()
    forward = torch.compile(model) if args.compile else model
    steps = 0
    for batch in torch.utils.data.DataLoader(dataset, batch_size=args.batch_size):
        loss = forward(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        steps += 1
        if steps % 200 == 0:
            print(f"step {steps} loss {loss.item():.4f} {time.perf_counter() - start:.0f} s", flush=True)
        if time.perf_counter() - start >= args.budget_s:
            break
    return steps


def build_optimizer(args: argparse.Namespace, model: WenLMForCausalLM) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (nanoGPT's grouping), or Muon on the decoder matrices beside it."""
    muon_names = decoder_matrix_names(model) if args.optim == "muon" else set()
    named = [(n, p) for n, p in model.named_parameters() if n not in muon_names]
    groups = [
        {"params": [p for _, p in named if p.dim() >= 2], "weight_decay": args.weight_decay},
        {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0},
    ]
    if args.optim == "adamw":
        return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.99))
    muon = [p for n, p in model.named_parameters() if n in muon_names]
    return MuonWithAdamW(
        muon,
        groups,
        muon_lr=args.muon_lr,
        muon_weight_decay=args.muon_weight_decay,
        lr=args.lr,
        betas=(0.9, 0.99),
    )


def run_recipe(
    args: argparse.Namespace, train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int
) -> dict:
    model = build_model(args, vocab_size)
    optimizer = build_optimizer(args, model)
    scheduler = time_cosine_schedule(optimizer, args.budget_s, args.warmup_s)
    dataset = RandomWindows(train_ids, args.context, args.seed)
    start = time.perf_counter()
    if args.loop == "trainer":
        steps = train_with_trainer(args, model, dataset, optimizer, scheduler)
    else:
        steps = train_minimal(args, model, dataset, optimizer, scheduler, start)
    train_s = time.perf_counter() - start
    tokens = steps * args.batch_size * args.context
    bits, characters = validation_bits_per_char(model, val_ids, args.context)
    return {
        "parameters": model.num_parameters(),
        "steps": steps,
        "train_s": train_s,
        "train_chars_per_s": tokens / train_s,
        "val_characters": characters,
        "val_bits_per_char": bits,
        "val_nats_per_char": bits * math.log(2),
    }


def main() -> None:
    args = parse_args()
    if not args.data.is_file():
        raise FileNotFoundError(f"{args.data} not found; pass --data PATH to tiny Shakespeare's input.txt.")
    if args.threads:
        torch.set_num_threads(args.threads)
    text = args.data.read_text(encoding="utf-8")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    split = int(0.9 * len(ids))
    train_ids, val_ids = ids[:split], ids[split:]
    recipes = [recipe_args(args, spec) for spec in args.recipes]
    if len({name for name, _ in recipes}) != len(recipes):
        raise SystemExit("--recipes: give each recipe its own name")

    info = machine_info()
    print(
        f"{info['cpu']}, {info['torch_threads']} threads, load {info['load_average_at_start']}; vocab {len(chars)}, "
        f"{args.loop} loop, budget {args.budget_s:.0f} s per run, recipes {', '.join(n for n, _ in recipes)}"
    )
    reference_bits = NANOGPT_REFERENCE["val_bits_per_char"]
    runs = []
    for repeat in range(args.repeats):
        shift = repeat % len(recipes)
        for name, options in recipes[shift:] + recipes[:shift]:
            result = run_recipe(options, train_ids, val_ids, len(chars))
            changed = {k: v for k, v in vars(options).items() if v != getattr(args, k) and k != "recipes"}
            runs.append(
                {
                    "recipe": name,
                    "repeat": repeat,
                    "changed_options": {k: str(v) for k, v in changed.items()},
                    **result,
                }
            )
            print(
                f"{name} (repeat {repeat}, {result['parameters']:,} parameters, {changed or 'as given'}): "
                f"{result['steps']} steps in {result['train_s']:.0f} s = {result['train_chars_per_s']:,.0f} char/s; "
                f"validation {result['val_bits_per_char']:.4f} bits/char "
                f"({result['val_nats_per_char']:.4f} nats/char); nanoGPT reference {reference_bits:.4f}",
                flush=True,
            )
            path = write_json(
                args.output,
                {
                    "benchmark": "tiny Shakespeare, char-level, fixed wall-clock budget",
                    "machine": info,
                    "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "recipes": {
                        n: {k: str(v) for k, v in vars(o).items() if v != getattr(args, k)}
                        for n, o in recipes
                    },
                    "vocab_size": len(chars),
                    "runs": runs,
                    "nanogpt_reference": NANOGPT_REFERENCE,
                },
            )
    first = recipes[0][0]
    for name, _ in recipes[1:]:
        ratio = [
            b["val_bits_per_char"] / a["val_bits_per_char"]
            for a, b in zip(
                [r for r in runs if r["recipe"] == first], [r for r in runs if r["recipe"] == name]
            )
        ]
        print(f"{name} / {first} bits per char: " + ", ".join(f"{x:.4f}" for x in ratio))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
