"""TRL trains a wenlm model given by name: a few SFT and DPO steps through `SFTTrainer` and `DPOTrainer`.

The model is named by its folder (as a Hub id would be), so TRL loads it itself: wenlm's code is remote code there
and needs `model_init_kwargs={"trust_remote_code": True}` in the trainer's config (the model card says so); the
tokenizer is passed in, loaded with `trust_remote_code=True`, because transformers' AutoTokenizer reads the model
config first and would otherwise ask on the terminal whether to run its code. Each run must finish with a finite
loss that moved, and the saved folder must load back. Needs `pip install trl`.

    python benchmarks/interop_trl.py [--model wenlm-quickstart] [--steps 8]
"""

import argparse
import datetime
import json
import math
import tempfile
from pathlib import Path

import trl
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

RESULTS = Path(__file__).resolve().parent / "results" / "interop_trl.json"
QUESTIONS = [
    ("小明在哪里？", "公园。", "不知道。"),
    ("Where is Tom?", "At the park.", "No idea."),
    ("小红喜欢什么？", "风筝。", "什么都不喜欢。"),
    ("What does Lily like?", "Her kite.", "Nothing."),
]


def common_options(output_dir: str, steps: int) -> dict:
    return dict(
        output_dir=output_dir,
        max_steps=steps,
        per_device_train_batch_size=4,
        learning_rate=1e-4,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        model_init_kwargs={"trust_remote_code": True},
    )


def losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def run_sft(model: str, steps: int, scratch: Path) -> dict:
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": good}]}
        for q, good, _ in QUESTIONS
    ] * 4
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(**common_options(str(scratch / "sft"), steps), assistant_only_loss=True),
        train_dataset=Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(model, trust_remote_code=True),
    )
    trainer.train()
    trainer.save_model(scratch / "sft")
    AutoModelForCausalLM.from_pretrained(scratch / "sft", trust_remote_code=True)  # loads back
    return {"losses": losses(trainer)}


def run_dpo(model: str, steps: int, scratch: Path) -> dict:
    rows = [
        {
            "prompt": [{"role": "user", "content": q}],
            "chosen": [{"role": "assistant", "content": good}],
            "rejected": [{"role": "assistant", "content": bad}],
        }
        for q, good, bad in QUESTIONS
    ] * 4
    trainer = DPOTrainer(
        model=model,
        args=DPOConfig(**common_options(str(scratch / "dpo"), steps)),
        train_dataset=Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(model, trust_remote_code=True),
    )
    trainer.train()
    trainer.save_model(scratch / "dpo")
    AutoModelForCausalLM.from_pretrained(scratch / "dpo", trust_remote_code=True)
    history = [entry for entry in trainer.state.log_history if "rewards/accuracies" in entry]
    return {
        "losses": losses(trainer),
        "final_reward_accuracy": history[-1]["rewards/accuracies"] if history else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="wenlm-quickstart")
    parser.add_argument("--steps", type=int, default=8)
    options = parser.parse_args()
    report = {"date": datetime.date.today().isoformat(), "trl": trl.__version__, "model": options.model}
    with tempfile.TemporaryDirectory() as scratch:
        for name, run in (("sft", run_sft), ("dpo", run_dpo)):
            result = run(options.model, options.steps, Path(scratch))
            values = result["losses"]
            result["ok"] = bool(values) and all(math.isfinite(v) for v in values) and values[-1] != values[0]
            report[name] = result
            print(name, json.dumps(result), flush=True)
    RESULTS.write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
