"""Before/after fine-tuning scores on the three built-in tasks (qa, translate, classify).

Starts from a pretrained quickstart-style model (``--base``; e.g. the folder of
``wenlm pretrain --train_files builtin:20000 --preset micro --vocab_size 4096 --block_size 256 ...``), writes the
task rows with the built-in generator (training seed 0, validation seed 1), scores the untuned model, fine-tunes
with ``wenlm finetune`` and scores again with ``wenlm evaluate``. Writes benchmarks/results/tasks.json and prints a
markdown table.

    python benchmarks/bench_tasks.py --base /tmp/qs --work_dir /tmp/bench_tasks
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from wenlm.training.commands import evaluate as evaluate_cli
from wenlm.training.commands import finetune as finetune_cli
from wenlm.training.corpus.grammar import write_jsonl
from wenlm.training.report import hardware_description

RESULTS = Path(__file__).resolve().parent / "results" / "tasks.json"
# task kind -> (finetune task, evaluate task, headline metrics)
TASKS = {
    "qa": ("sft", "qa", ("exact_match", "f1")),
    "translate": ("sft", "translate", ("chrf", "bleu")),
    "classify": ("classification", "classification", ("accuracy", "macro_f1")),
}


def untuned_classifier(base: Path, train_file: Path, folder: Path) -> Path:
    """The base model with a fresh (untrained) classification head over the task's labels: the 'before' score."""
    labels = sorted(
        {json.loads(line)["label"] for line in train_file.read_text(encoding="utf-8").splitlines()}
    )
    id2label = dict(enumerate(labels))
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        trust_remote_code=True,
    )
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base, trust_remote_code=True).save_pretrained(folder)
    return folder


def score(model: Path, task: str, data: Path, samples: int, chat: bool) -> dict:
    argv = [
        "--model",
        str(model),
        "--task",
        task,
        "--validation_files",
        str(data),
        "--max_samples",
        str(samples),
        "--per_device_eval_batch_size",
        "32",
        "--max_new_tokens",
        "48",
        "--save_results",
        "false",
    ]
    if chat:
        argv += ["--prompt_format", "chat"]
    return evaluate_cli.main(argv)


def run_task(kind: str, args, work: Path) -> dict:
    finetune_task, eval_task, headline = TASKS[kind]
    train, validation = work / f"{kind}-train.jsonl", work / f"{kind}-validation.jsonl"
    write_jsonl(kind, args.train_rows, 0, train, overwrite=True)
    write_jsonl(kind, args.eval_samples, 1, validation, overwrite=True)
    is_generation = finetune_task == "sft"
    if is_generation:
        before = score(args.base, eval_task, validation, args.eval_samples, chat=True)
    else:
        before = score(
            untuned_classifier(args.base, train, work / f"{kind}-untuned"),
            eval_task,
            validation,
            args.eval_samples,
            chat=False,
        )
    output = work / f"{kind}-tuned"
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    report = finetune_cli.main(
        [
            "--model",
            str(args.base),
            "--task",
            finetune_task,
            "--train_files",
            str(train),
            "--validation_files",
            str(validation),
            "--output_dir",
            str(output),
            "--max_steps",
            str(args.steps[kind]),
            "--learning_rate",
            str(args.learning_rate),
            "--per_device_train_batch_size",
            "16",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--logging_steps",
            "10",
            "--disable_tqdm",
            "true",
        ]
    )
    finetune_seconds = time.perf_counter() - started
    started = time.perf_counter()
    after = score(output, eval_task, validation, args.eval_samples, chat=is_generation)
    return {
        "task": kind,
        "metrics": list(headline),
        "before": {name: before[name] for name in headline},
        "after": {name: after[name] for name in headline},
        "steps": report["training"]["steps"],
        "train_rows": args.train_rows,
        "eval_samples": args.eval_samples,
        "learning_rate": args.learning_rate,
        "finetune_seconds": round(finetune_seconds, 1),
        "eval_seconds": round(time.perf_counter() - started, 1),
        "tokens_seen": report["training"]["tokens_seen"],
        "validation_loss": report["results"]["eval_loss"],
        "examples": after.get("examples", [])[:2],
    }


def markdown_table(results: list[dict]) -> str:
    lines = [
        "| task | metric | untuned | fine-tuned | steps | fine-tune time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        for metric in result["metrics"]:
            lines.append(
                f"| {result['task']} | {metric} | {result['before'][metric]:.1f} | "
                f"{result['after'][metric]:.1f} | {result['steps']} | {result['finetune_seconds']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", type=Path, required=True, help="pretrained wenlm model folder")
    parser.add_argument("--work_dir", type=Path, default=Path("/tmp/wenlm_bench_tasks"))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--train_rows", type=int, default=4000)
    parser.add_argument("--eval_samples", type=int, default=100)
    parser.add_argument("--qa_steps", type=int, default=150)
    parser.add_argument("--translate_steps", type=int, default=150)
    parser.add_argument("--classify_steps", type=int, default=60)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.steps = {"qa": args.qa_steps, "translate": args.translate_steps, "classify": args.classify_steps}
    args.work_dir.mkdir(parents=True, exist_ok=True)
    results = [run_task(kind, args, args.work_dir) for kind in args.tasks]
    record = {
        "command": "python benchmarks/bench_tasks.py " + " ".join(__import__("sys").argv[1:]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {**hardware_description(), "python": platform.python_version()},
        "base_model": str(args.base),
        "base_report": _base_summary(args.base),
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(markdown_table(results))
    print(f"wrote {args.output}")


def _base_summary(base: Path) -> dict:
    path = base / "training_report.json"
    if not path.is_file():
        return {}
    report = json.loads(path.read_text(encoding="utf-8"))
    return {
        "preset": report["model"].get("preset"),
        "parameters": report["model"]["parameters"],
        "steps": report["training"]["steps"],
        "eval_bpb": report["results"].get("eval_bpb"),
    }


if __name__ == "__main__":
    main()
