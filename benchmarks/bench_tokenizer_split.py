"""Compression of the two split rules (`train_tokenizer(split_rule=...)`), on held-out text.

For each corpus a tokenizer of each rule is trained on the first 90 % of its lines and measured (UTF-8 bytes per
token, higher is better) on the last 10 %; the GPT-2 and Qwen2 tokenizers from ../shared are measured on the same
held-out text for scale. Compression does not depend on the machine's load, so this may run beside other work.

    python benchmarks/bench_tokenizer_split.py [--vocab-size 8000] [--data ../shared/data]
"""

import argparse
import json
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from wenlm.tokenization import tokenizer_stats, train_tokenizer
from wenlm.tokenization.bpe import SPLIT_RULES

RESULTS = Path(__file__).resolve().parent / "results" / "tokenizer_split.json"
# (label, path below the data folder)
CORPORA = [
    ("CMRC2018 Chinese Wikipedia", "chinese_prose/cmrc2018_wiki_contexts.txt"),
    ("DRCD Chinese Wikipedia (simplified)", "chinese_prose/drcd_wiki_contexts_simplified.txt"),
    ("Tang poems (simplified)", "chinese_poetry/tang_simplified.txt"),
    ("TinyStories sample", "tinystories/tinystories_sample.txt"),
    ("Tiny Shakespeare", "tiny_shakespeare/input.txt"),
    ("WikiText-2 (valid)", "wikitext2/raw/wiki.valid.raw"),
]
REFERENCES = ["gpt2", "qwen2"]


def split_lines(path: Path, held_out_share: float = 0.1) -> tuple[list[str], list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = int(len(lines) * (1 - held_out_share))
    return lines[:cut], lines[cut:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument(
        "--max-chars", type=int, default=3_000_000, help="training text per corpus (first chars)"
    )
    options = parser.parse_args()
    references = {
        name: PreTrainedTokenizerFast(
            tokenizer_file=str(options.data / "reference_tokenizers" / name / "tokenizer.json")
        )
        for name in REFERENCES
    }
    rows = []
    for label, relative in CORPORA:
        train, held_out = split_lines(options.data / relative)
        train_text, total = [], 0
        for line in train:  # the same prefix of the training lines for every rule
            if total >= options.max_chars:
                break
            train_text.append(line)
            total += len(line)
        row = {"corpus": label, "train_chars": total, "held_out_chars": sum(map(len, held_out))}
        for rule in SPLIT_RULES:
            tokenizer = train_tokenizer(iter(train_text), vocab_size=options.vocab_size, split_rule=rule)
            row[f"wenlm {rule}"] = tokenizer_stats(tokenizer, held_out)["bytes_per_token"]
        for name, tokenizer in references.items():
            row[name] = tokenizer_stats(tokenizer, held_out)["bytes_per_token"]
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"vocab_size": options.vocab_size, "rows": rows}, indent=1, ensure_ascii=False)
    )
    columns = [f"wenlm {rule}" for rule in SPLIT_RULES] + REFERENCES
    print("\n| text (held-out 10 %) | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for row in rows:
        print(f"| {row['corpus']} | " + " | ".join(f"{row[column]:.2f}" for column in columns) + " |")


if __name__ == "__main__":
    main()
