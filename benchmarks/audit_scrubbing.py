"""Does PII scrubbing help? The quickstart recipe (micro, 32,000 built-in documents) trained twice on the built-in corpus with the same canaries, once
without and once with `--scrub_pii`, then `wenlm audit` on both: canary exposure by copies and extraction of
training text by copies, side by side.

The canaries are Chinese mobile numbers (`--canary_format phone`), the kind of secret the scrubber replaces; the
built-in corpus itself contains names, places and numbers but no personal data patterns, so extraction measures
how much generic training text the model reproduces. Each run is `wenlm pretrain` + `wenlm audit` through the CLI.

    python benchmarks/audit_scrubbing.py [--output_dir benchmarks/results/audit_scrubbing] [--num_docs 32000]
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from wenlm.training.cli import main as cli_main

RESULTS = Path(__file__).resolve().parent / "results" / "audit_scrubbing"


def run(scratch: Path, scrub: bool, num_docs: int, canaries: int, repeats: str) -> dict:
    name = "scrubbed" if scrub else "plain"
    model_dir = scratch / name
    data = [
        "--train_files",
        f"builtin:{num_docs}",
        "--cache_dir",
        str(scratch / "cache"),
        "--scrub_pii",
        str(scrub),
    ]
    # The quickstart's recipe (QUICKSTART_DEFAULTS) through `wenlm pretrain`, which takes the canary options.
    recipe = [
        "--preset",
        "micro",
        "--block_size",
        "256",
        "--learning_rate",
        "3e-3",
        "--vocab_size",
        "4096",
        "--disable_tqdm",
        "true",
    ]
    assert (
        cli_main(
            [
                "pretrain",
                "--output_dir",
                str(model_dir),
                *data,
                *recipe,
                "--canaries",
                str(canaries),
                "--canary_repeats",
                repeats,
                "--canary_format",
                "phone",
            ]
        )
        == 0
    )
    assert (
        cli_main(
            [
                "audit",
                "--model",
                str(model_dir),
                "--canaries",
                f"{model_dir}.canaries.json",
                "--output_dir",
                str(scratch / f"{name}-audit"),
                *data,
            ]
        )
        == 0
    )
    result = json.loads((scratch / f"{name}-audit" / "audit.json").read_text())
    report = json.loads((model_dir / "training_report.json").read_text())
    result["eval_bpb"] = report["results"]["eval_bpb"]
    result["pii"] = report["data"].get("pii")
    for file in ("audit.md", "exposure.png"):
        shutil.copy(scratch / f"{name}-audit" / file, RESULTS / f"{name}-{file}")
    return result


def table(results: dict) -> str:
    lines = [
        "| copies | " + " | ".join(f"{name}: mean exposure (bits) / greedy" for name in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    groups = [row["repeats"] for row in next(iter(results.values()))["canaries"]["by_repeats"]]
    for index, repeats in enumerate(groups):
        cells = []
        for result in results.values():
            row = result["canaries"]["by_repeats"][index]
            cells.append(f"{row['mean_exposure']:.2f} / {row['greedy_reproduced']} of {row['canaries']}")
        lines.append(f"| {repeats} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| document copies | " + " | ".join(f"{name}: extracted / tested" for name in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    buckets = [row["copies"] for row in next(iter(results.values()))["extraction"]["by_copies"]]
    for index, copies in enumerate(buckets):
        cells = [
            f"{r['extraction']['by_copies'][index]['extracted']} / {r['extraction']['by_copies'][index]['documents']}"
            for r in results.values()
        ]
        lines.append(f"| {copies} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "validation bits/byte: " + ", ".join(f"{name} {r['eval_bpb']:.4f}" for name, r in results.items())
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_docs", type=int, default=32000)
    parser.add_argument("--canaries", type=int, default=4)
    parser.add_argument("--canary_repeats", default="1,4,16")
    options = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        results = {
            name: run(Path(scratch), scrub, options.num_docs, options.canaries, options.canary_repeats)
            for name, scrub in (("plain", False), ("scrubbed", True))
        }
    (RESULTS / "audit_scrubbing.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    (RESULTS / "audit_scrubbing.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
