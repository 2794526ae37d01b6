"""`wenlm evaluate`: language-modelling metrics checked against a direct computation, batched left-padded
generation equal to one-at-a-time generation, row formats, and eval_results.json merging."""

import json
import math
import shutil

import pytest
import torch
from helpers import cli_flags
from test_finetune import tiny_base, tokenizer, write_lines  # noqa: F401  (session fixtures shared with it)
from transformers import AutoModelForCausalLM, AutoTokenizer

from wenlm.training.commands import evaluate as evaluate_cli
from wenlm.training.evaluation.evaluate import (
    document_windows,
    generate_answers,
    prompt_and_reference,
    uses_chat_format,
)


def test_windows_predict_every_token_once_including_the_final_eos():
    ids = list(range(10, 27))  # 17 tokens
    windows = list(document_windows(ids, eos_id=2, window=6))
    predicted = [token for window, context in windows for token in window[context:]]
    assert predicted == ids + [2]
    assert all(len(window) <= 6 for window, _ in windows)
    assert windows[0][0][0] == 2  # a document is read after <|eos|>, as in packed pretraining


def test_lm_metrics_match_a_direct_computation(tmp_path, tiny_base, tokenizer):  # noqa: F811
    documents = ["Xiaoming went to the park.", "小明和丽丽去了公园。\n他们很开心。", "Lili said: hello!"]
    data = write_lines(tmp_path / "docs.jsonl", [{"text": doc} for doc in documents])
    metrics = evaluate_cli.main(
        cli_flags(
            model=tiny_base,
            task="lm",
            validation_files=data,
            save_results="false",
            per_device_eval_batch_size=2,
        )
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for document in documents:
            ids = [2, *tokenizer(document, add_special_tokens=False)["input_ids"], 2]
            logits = model(torch.tensor([ids])).logits[0, :-1]
            total += torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="sum").item()
            count += len(ids) - 1
    n_bytes = sum(len(doc.encode()) for doc in documents)
    assert metrics["tokens"] == count and metrics["bytes"] == n_bytes and metrics["documents"] == 3
    assert metrics["loss"] == pytest.approx(total / count, rel=1e-4)
    assert metrics["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-4)
    assert metrics["bits_per_byte"] == pytest.approx(total / n_bytes / math.log(2), rel=1e-4)


@pytest.mark.slow
def test_batched_left_padded_generation_equals_one_by_one(tiny_base, tokenizer):  # noqa: F811
    model = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    prompts = [
        "Where were Lili and Tom?",
        "小明在哪里？",
        "What was the weather like on that very long day?",
        "Hi",
    ]
    for chat in (True, False):
        batched = generate_answers(model, tokenizer, prompts, chat=chat, batch_size=4, max_new_tokens=6)
        single = [
            generate_answers(model, tokenizer, [p], chat=chat, batch_size=1, max_new_tokens=6)[0]
            for p in prompts
        ]
        assert batched == single
        assert tokenizer.padding_side == "left"


def test_row_formats_for_each_generation_task():
    assert prompt_and_reference({"prompt": "p", "response": "r"}, "qa") == ("p", "r")
    assert prompt_and_reference({"context": "c", "question": "q", "answer": "a"}, "qa") == ("c\nq", "a")
    assert prompt_and_reference({"source": "你好", "target": "hello"}, "translate") == ("你好", "hello")
    assert prompt_and_reference({"text": "long", "summary": "short"}, "summarize") == ("long", "short")
    with pytest.raises(ValueError, match="'source', 'target'"):
        prompt_and_reference({"question": "q"}, "translate")


def test_results_merge_into_the_folder_and_errors_are_clear(tmp_path, tiny_base):  # noqa: F811
    folder = tmp_path / "model"
    shutil.copytree(tiny_base, folder)
    qa = write_lines(tmp_path / "qa.jsonl", [{"prompt": "Where?", "response": "park"}] * 3)
    translate = write_lines(tmp_path / "tr.jsonl", [{"source": "你好", "target": "hello"}] * 2)
    first = evaluate_cli.main(
        cli_flags(model=folder, task="qa", validation_files=qa, max_new_tokens=3, max_samples=2)
    )
    second = evaluate_cli.main(
        cli_flags(model=folder, task="translate", validation_files=translate, max_new_tokens=3)
    )
    results = json.loads((folder / "eval_results.json").read_text())
    assert set(results) == {"qa", "translate"}
    assert results["qa"]["num_samples"] == 2 and results["qa"]["task_type"] == "question-answering"
    assert results["qa"]["metrics"]["exact_match"] == first["exact_match"]
    assert set(results["translate"]["metrics"]) >= {"chrf", "bleu"}
    assert results["translate"]["metrics"]["chrf"] == second["chrf"]
    assert not (folder / "README.md").exists()  # no training report, so no card to re-render

    with pytest.raises(ValueError, match=r"tr.jsonl row/line 1: needs string fields 'prompt' and 'response'"):
        evaluate_cli.main(["--model", str(folder), "--task", "qa", "--validation_files", str(translate)])
    with pytest.raises(FileNotFoundError, match="--validation_files"):
        evaluate_cli.main(
            ["--model", str(folder), "--task", "lm", "--validation_files", str(tmp_path / "none.txt")]
        )
    bad = write_lines(tmp_path / "bad.jsonl", ["{oops"])
    with pytest.raises(ValueError, match="line 1: invalid JSON"):
        evaluate_cli.main(["--model", str(folder), "--task", "qa", "--validation_files", str(bad)])
    with pytest.raises(ValueError, match="--max_samples must be at least 1"):
        evaluate_cli.main(
            ["--model", str(folder), "--task", "qa", "--validation_files", str(qa), "--max_samples", "0"]
        )


def test_lm_reads_plain_text_documents_from_several_files(tmp_path, tiny_base):  # noqa: F811
    text = tmp_path / "docs.txt"
    text.write_text("First document.\nStill first.\n\nSecond document.\n", encoding="utf-8")
    rows = write_lines(tmp_path / "more.jsonl", [{"text": "Third."}, {"text": "Fourth."}])
    metrics = evaluate_cli.main(
        cli_flags(
            model=tiny_base, task="lm", validation_files=[text, rows], save_results="false", max_samples=3
        )
    )
    assert metrics["documents"] == 3
    assert metrics["bytes"] == len(b"First document.\nStill first.") + len(b"Second document.") + len(
        b"Third."
    )


def test_old_flag_spellings_still_work_and_warn(tmp_path, tiny_base):  # noqa: F811
    folder = tmp_path / "model"
    shutil.copytree(tiny_base, folder)
    data = write_lines(
        tmp_path / "docs.jsonl", [{"text": "Lili said: hello!"}, {"text": "小明和丽丽去了公园。"}]
    )
    new = evaluate_cli.main(
        cli_flags(
            model=folder, task="lm", validation_files=data, save_results="false", per_device_eval_batch_size=1
        )
    )
    with pytest.warns(FutureWarning) as warned:
        old = evaluate_cli.main(
            ["--model", str(folder), "--task", "lm", "--data", str(data), "--no_save", "--batch_size", "1"]
        )
    messages = " ".join(str(warning.message) for warning in warned)
    for spelling in ("--validation_files", "--save_results false", "--per_device_eval_batch_size"):
        assert spelling in messages
    assert old == new
    assert not (folder / "eval_results.json").exists()  # --no_save still means: do not touch the folder


def test_options_file_and_dashed_spellings(tmp_path):
    options = tmp_path / "evaluate.yaml"
    options.write_text(
        "model: my-model\ntask: qa\nvalidation_files: [a.jsonl, b.jsonl]\nsave_results: false\n"
        "max_samples: 5\n",
        encoding="utf-8",
    )
    source, parsed = evaluate_cli.parse_args([str(options), "--max_samples", "7"])  # a later flag wins
    assert source.model == "my-model" and source.revision is None
    assert parsed.validation_files == ["a.jsonl", "b.jsonl"] and parsed.save_results is False
    assert parsed.max_samples == 7 and parsed.per_device_eval_batch_size == 16
    _, dashed = evaluate_cli.parse_args(
        [
            "--model",
            "m",
            "--task",
            "lm",
            "--validation-files",
            "x.txt",
            "--per-device-eval-batch-size",
            "4",
            "--save-results",
            "false",
        ]
    )
    assert dashed.per_device_eval_batch_size == 4 and dashed.save_results is False
    assert dashed.validation_files == ["x.txt"]


def test_auto_prompt_format_follows_the_training_task_not_the_stop_tokens(tmp_path, tiny_base):  # noqa: F811
    # Every saved wenlm folder has a chat template and stops at <|end|>; only a chat fine-tune gets chat prompts.
    folder = tmp_path / "model"
    shutil.copytree(tiny_base, folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.generation_config.eos_token_id = [2, 6]
    folder_tokenizer = AutoTokenizer.from_pretrained(folder)
    assert folder_tokenizer.chat_template
    (folder / "training_report.json").unlink(missing_ok=True)
    assert not uses_chat_format(model, folder_tokenizer, "auto")
    (folder / "training_report.json").write_text(json.dumps({"wenlm_command": "wenlm pretrain"}))
    assert not uses_chat_format(model, folder_tokenizer, "auto")
    (folder / "training_report.json").write_text(json.dumps({"task": "sft"}))
    assert uses_chat_format(model, folder_tokenizer, "auto")
    assert not uses_chat_format(model, folder_tokenizer, "plain")
