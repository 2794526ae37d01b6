"""`wenlm evaluate --harness`: lm-evaluation-harness on a tiny random wenlm model, offline, with the wenlm tasks
shipped in the package; results recorded for the model card; clear errors for tasks that cannot run."""

import json
import shutil

import datasets
import pytest
from test_finetune import tiny_base, write_lines  # noqa: F401  (session fixture shared with it)

from wenlm.training.args import EvaluateArguments, ModelSourceArguments, parse_options
from wenlm.training.cards.sections import card_metadata
from wenlm.training.commands import evaluate as evaluate_cli
from wenlm.training.evaluation import harness


def harness_options(*argv: str) -> tuple[ModelSourceArguments, EvaluateArguments]:
    return parse_options([ModelSourceArguments, EvaluateArguments], list(argv), command="evaluate")


def request_pairs(samples: list[dict]) -> list[tuple]:
    """(context, continuation or generation settings) of every request lm-eval built for a task's samples."""
    pairs = []
    for sample in samples:
        arguments = sample["arguments"]
        for argument in arguments.values() if isinstance(arguments, dict) else arguments:
            pairs.append(tuple(argument.values()) if isinstance(argument, dict) else tuple(argument))
    return pairs


def test_task_names_split_and_expand():
    assert harness.harness_task_names(["wenlm_qa,arc_easy", "wenlm_qa_zh", " cmmlu "]) == [
        "wenlm_qa_en",
        "wenlm_qa_zh",
        "arc_easy",
        "cmmlu",
    ]
    assert harness.harness_task_names(["wenlm"]) == list(harness.WENLM_TASKS)
    assert harness.row_language({}, "那是一个晴朗的早上。") == "zh"
    assert harness.row_language({}, "One sunny morning.\n一个晴朗的早上。") == "en"
    assert harness.row_language({"lang": "zh"}, "Where?") == "zh"
    for name in harness.WENLM_TASKS:
        config = harness.read_task_yaml(name)
        assert config["task"] == name and config["dataset_path"] == "json"
        assert config["target_delimiter"] == ("" if name.endswith("_zh") else " ")


def test_builtin_tasks_run_with_chinese_answers_right_after_the_prompt(tiny_base):  # noqa: F811
    source, options = harness_options(
        "--model",
        str(tiny_base),
        "--harness",
        "wenlm",
        "--max_samples",
        "3",
        "--num_fewshot",
        "1",
        "--per_device_eval_batch_size",
        "8",
    )
    results, entries = harness.run_harness(source, options, {})
    assert list(entries) == list(harness.WENLM_TASKS)
    for name, entry in entries.items():
        expected = {"exact_match"} if "_qa_" in name else {"acc", "acc_norm"}
        assert set(entry["metrics"]) == expected and set(entry["stderr"]) == expected
        assert all(0 <= value <= 1 for value in entry["metrics"].values())
        assert entry["num_samples"] == 3 and entry["harness"]["num_fewshot"] == 1
        assert entry["task_type"] == ("question-answering" if "_qa_" in name else "text-classification")
        assert ("Chinese" if name.endswith("_zh") else "English") in entry["data"]

    # Multiple choice: each continuation is one label, after a space in English and directly in Chinese.
    chinese = request_pairs(results["samples"]["wenlm_classify_zh"])
    assert {continuation for _, continuation in chinese} == {"晴朗", "下雨", "下雪", "刮风", "多云"}
    assert all(context.endswith("天气：") for context, _ in chinese)
    english = request_pairs(results["samples"]["wenlm_classify_en"])
    assert {continuation for _, continuation in english} == {
        " sunny",
        " rainy",
        " snowy",
        " windy",
        " cloudy",
    }
    # Generation: the one-shot example shows the answer the same way.
    for name, marker, gap in (("wenlm_qa_zh", "答案：", ""), ("wenlm_qa_en", "Answer:", " ")):
        for sample in results["samples"][name]:
            context = request_pairs([sample])[0][0]
            shot = context.split("\n\n")[0]
            answer = shot.rsplit(marker, 1)[1]
            assert answer.startswith(gap) and not answer[len(gap) :].startswith(" "), (name, shot)
            assert context.endswith(marker)


def test_validation_files_are_scored_and_recorded_for_the_card(tmp_path, tiny_base):  # noqa: F811
    folder = tmp_path / "model"
    shutil.copytree(tiny_base, folder)
    rows = [
        {"story": "那是一个下雨的早上。小明在公园。", "weather": "rainy"},
        {"story": "一个晴朗的下午，小红去了海边。", "weather": "sunny"},
        {"story": "One rainy night, Leo went home.", "weather": "rainy"},
    ]
    data = write_lines(tmp_path / "classify.jsonl", rows)
    (folder / "eval_results.json").write_text(
        json.dumps({"qa": {"metrics": {"f1": 50.0}, "data": "qa.jsonl"}})
    )
    printed = evaluate_cli.main(
        [
            "--model",
            str(folder),
            "--harness",
            "wenlm_classify_zh",
            "--validation_files",
            str(data),
            "--text_column",
            "story",
            "--label_column",
            "weather",
        ]
    )
    recorded = json.loads((folder / "eval_results.json").read_text(encoding="utf-8"))
    assert set(recorded) == {"qa", "wenlm_classify_zh"}  # merged, the earlier result kept
    entry = recorded["wenlm_classify_zh"]
    assert entry == json.loads(json.dumps(printed["wenlm_classify_zh"]))
    assert entry["num_samples"] == 2 and entry["data"] == f"{data}, Chinese rows"
    assert set(entry["metrics"]) == {"acc", "acc_norm"}

    metadata = card_metadata({"task": None, "results": {}}, recorded, "tiny")
    indexed = {(result.metric_name, result.task_type) for result in metadata.eval_results}
    assert ("wenlm_classify_zh acc", "text-classification") in indexed
    assert not any("stderr" in name for name, _ in indexed)


def test_tasks_that_cannot_run_are_named(tmp_path, tiny_base, monkeypatch):  # noqa: F811
    model = str(tiny_base)
    with pytest.raises(ValueError, match="--task and --harness are separate runs"):
        harness_options("--model", model, "--harness", "wenlm_qa", "--task", "qa", "--validation_files", "x")
    with pytest.raises(ValueError, match="--task is required"):
        harness_options("--model", model)
    stories = write_lines(tmp_path / "stories.jsonl", [{"prompt": "p", "response": "r"}])
    with pytest.raises(ValueError, match=r"stories.jsonl: its rows fit neither the wenlm qa tasks"):
        evaluate_cli.main(["--model", model, "--harness", "wenlm_qa_zh", "--validation_files", str(stories)])
    english = write_lines(tmp_path / "qa.jsonl", [{"context": "c", "question": "Who?", "answer": "Leo"}])
    with pytest.raises(ValueError, match=r"--harness wenlm_qa_zh: .*qa.jsonl has no Chinese qa rows"):
        evaluate_cli.main(["--model", model, "--harness", "wenlm_qa_zh", "--validation_files", str(english)])
    with pytest.raises(ValueError, match="only the wenlm_\\* harness tasks read them"):
        evaluate_cli.main(["--model", model, "--harness", "arc_easy", "--validation_files", str(english)])

    # Standard names go to lm-eval as they are; offline, a task whose data is not cached is named.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    with pytest.raises(
        ValueError, match=r"--harness arc_easy: its data could not be loaded .*HF_DATASETS_OFFLINE"
    ):
        evaluate_cli.main(["--model", model, "--harness", "wenlm_qa_en,arc_easy", "--max_samples", "1"])
    with pytest.raises(
        ValueError, match="--harness no_such_task: not a task, group or tag lm-evaluation-harness"
    ):
        evaluate_cli.main(["--model", model, "--harness", "no_such_task"])
