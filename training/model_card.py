"""Model cards rendered from a model folder's reports with the Jinja templates in `model_cards/`.

Every section is filled from `training_report.json` (and `eval_results.json` when `wenlm evaluate` ran);
a field missing from the reports is an error, never an empty section.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from huggingface_hub import EvalResult, ModelCard, ModelCardData

TRAINING_REPORT = "training_report.json"
EVAL_RESULTS = "eval_results.json"
CARD_FILE = "README.md"


def template_text(name: str) -> str:
    return resources.files("wenlm.model_cards").joinpath(name).read_text(encoding="utf-8")


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.3e}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def load_reports(folder: Path) -> tuple[dict, dict]:
    report_path = folder / TRAINING_REPORT
    if not report_path.is_file():
        raise FileNotFoundError(
            f"{report_path} is missing: a model card is rendered from the report that `wenlm pretrain` or "
            "`wenlm finetune` writes. Train with wenlm first, or write the card by hand."
        )
    report = json.loads(report_path.read_text(encoding="utf-8"))
    eval_path = folder / EVAL_RESULTS
    evaluations = json.loads(eval_path.read_text(encoding="utf-8")) if eval_path.is_file() else {}
    return report, evaluations


def detect_languages(report: dict) -> list[str]:
    stats = report.get("tokenizer", {}).get("stats_by_language") or {}
    languages = [language for language in ("zh", "en") if language in stats]
    return languages or ["en"]


def card_metadata(report: dict, evaluations: dict, model_name: str) -> ModelCardData:
    results = report.get("results", {})
    task = report.get("task", "text-generation")
    pipeline_tag = "text-classification" if task == "classification" else "text-generation"
    dataset_names = [s["spec"][4:] for s in report.get("data", {}).get("sources", []) if isinstance(s, dict)
                     and str(s.get("spec", "")).startswith("hub:")]
    eval_results = []
    dataset_label = "validation split of the training corpus"
    for metric_name, key in (("loss", "eval_loss"), ("perplexity", "eval_perplexity"), ("bits per byte", "eval_bpb")):
        if results.get(key) is not None:
            eval_results.append(EvalResult(task_type="text-generation", dataset_type="custom", dataset_name=dataset_label,
                                           metric_type=key.removeprefix("eval_"), metric_name=metric_name,
                                           metric_value=round(float(results[key]), 4)))
    for task_name, metrics in evaluations.items():
        for metric, value in metrics.get("metrics", {}).items():
            if isinstance(value, (int, float)):
                eval_results.append(EvalResult(task_type=metrics.get("task_type", pipeline_tag), dataset_type="custom",
                                               dataset_name=metrics.get("data", task_name), metric_type=metric,
                                               metric_name=f"{task_name} {metric}", metric_value=round(float(value), 4)))
    return ModelCardData(
        language=detect_languages(report),
        license=report.get("license", "apache-2.0"),
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=["wenlm", "causal-lm" if pipeline_tag == "text-generation" else "text-classification", "custom_code"],
        datasets=dataset_names or None,
        base_model=report.get("base_model"),
        model_name=model_name,
        eval_results=eval_results or None,
    )


def _architecture_rows(report: dict) -> list[tuple[str, str]]:
    config = report["model"]["config"]
    return [
        ("parameters (total)", _fmt(report["model"]["parameters"])),
        ("parameters (non-embedding)", _fmt(report["model"]["non_embedding_parameters"])),
        ("layers", _fmt(config["num_hidden_layers"])),
        ("hidden size", _fmt(config["hidden_size"])),
        ("attention heads / key-value heads", f"{config['num_attention_heads']} / {config['num_key_value_heads']}"),
        ("feed-forward size", _fmt(config["intermediate_size"])),
        ("context length", _fmt(config["max_position_embeddings"])),
        ("vocabulary", _fmt(config["vocab_size"])),
        ("preset", report["model"].get("preset") or "custom"),
    ]


def _tokenizer_table(report: dict) -> str:
    stats = report["tokenizer"].get("stats_by_language") or {}
    if not stats:
        return "Tokenizer statistics were not measured for this run."
    rows = [[language, s["bytes_per_token"], s["chars_per_token"], s["tokens"]] for language, s in stats.items()]
    return ("Measured on the validation text, by language:\n\n"
            + _table(["language", "UTF-8 bytes per token", "characters per token", "tokens measured"], rows))


def _data_sections(report: dict) -> tuple[str, str, str]:
    data = report["data"]
    sources = [s["spec"] if isinstance(s, dict) else str(s) for s in data.get("sources", [])]
    documents, tokens = data.get("documents") or {}, data.get("tokens") or {}
    summary = f"Sources: {', '.join(f'`{s}`' for s in sources)}."
    if documents:
        summary += (f" After cleaning, {_fmt(documents['train'])} training and {_fmt(documents['validation'])} "
                    f"validation documents (held out by document), {_fmt(tokens['train'])} and "
                    f"{_fmt(tokens['validation'])} tokens, packed into blocks of {data['block_size']} tokens.")
    if data.get("invalid_utf8_bytes"):
        summary += f" {_fmt(data['invalid_utf8_bytes'])} invalid UTF-8 bytes were replaced by U+FFFD."
    cleaning = data.get("cleaning") or {}
    rows = [[name, step.get("documents_in"), step.get("documents_out"), step.get("chars_in"), step.get("chars_out")]
            for name, step in cleaning.items() if isinstance(step, dict) and "documents_in" in step]
    table = (_table(["cleaning step", "documents in", "documents out", "characters in", "characters out"], rows)
             if rows else "Per-step cleaning counts are not available (streaming run).")
    pii = data.get("pii") or {}
    pii_summary = ""
    if data.get("scrub_pii") and pii:
        pii_summary = "Replaced: " + ", ".join(f"{count} {kind}" for kind, count in pii.items()) + "."
    return summary, table, pii_summary


def _procedure_table(report: dict) -> str:
    training = report["training"]
    rows = [[name, value] for name, value in training["hyperparameters"].items()]
    hardware = training["hardware"]
    rows += [
        ["optimizer steps", training["steps"]],
        ["training tokens", training["tokens_seen"]],
        ["compute (6·N·D FLOPs)", float(training["flops_estimate"])],
        ["processes", training.get("world_size", 1)],
        ["hardware", f"{hardware['device']} ({hardware['cpu_count']} CPU cores, torch {hardware['torch']})"],
        ["wall time (s)", training["wall_time_seconds"]],
        ["training throughput (tokens/s)", training.get("train_tokens_per_second") or "n/a"],
    ]
    return _table(["setting", "value"], rows)


def _results_text(report: dict, evaluations: dict) -> str:
    results = report["results"]
    rows = [[name, results[key]] for name, key in (
        ("final training loss (nats/token)", "final_train_loss"), ("validation loss (nats/token)", "eval_loss"),
        ("validation perplexity", "eval_perplexity"), ("validation bits per byte", "eval_bpb"),
    ) if results.get(key) is not None]
    text = _table(["metric", "value"], rows) if rows else "No validation metrics were recorded."
    floor = report.get("entropy_floor_bpb")
    if floor is not None and results.get("eval_bpb") is not None:
        text += (f"\n\nThe built-in corpus has a known entropy of {floor:.4f} bits per byte: no model can go below "
                 f"it. This model is {results['eval_bpb'] - floor:.4f} bits per byte above that floor.")
    for task_name, entry in evaluations.items():
        metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in entry.get("metrics", {}).items())
        text += f"\n\n`wenlm evaluate --task {task_name}` on `{entry.get('data', '?')}`: {metrics}."
    return text


def _scaling_section(report: dict, folder: Path) -> str:
    study = report.get("scaling_study")
    if not study:
        return ""
    study_dir = Path(study)
    report_md = study_dir / "REPORT.md"
    if not report_md.is_file():
        raise FileNotFoundError(f"--scaling_study {study}: {report_md} not found; run `wenlm scaling` first.")
    plot = study_dir / "scaling.png"
    text = f"From the study in `{study}` (see its REPORT.md for the full table and fits)."
    if plot.is_file():
        (folder / "scaling.png").write_bytes(plot.read_bytes())
        text += "\n\n![data-scale study](scaling.png)"
    return text


def render_model_card(folder: str | Path, repo_id: str | None = None) -> ModelCard:
    folder = Path(folder)
    report, evaluations = load_reports(folder)
    model_name = repo_id.split("/")[-1] if repo_id else folder.resolve().name
    languages = detect_languages(report)
    is_builtin = any(str(s.get("spec", s) if isinstance(s, dict) else s).startswith("builtin")
                     for s in report["data"].get("sources", []))
    summary_, cleaning_table, pii_summary = _data_sections(report)
    base_model = report.get("base_model")
    summary = (f"A {_fmt(report['model']['parameters'])}-parameter wenlm language model "
               + (f"fine-tuned from `{base_model}` for {report.get('task', 'instruction following')}"
                  if base_model else "pretrained from scratch")
               + f" on {'the wenlm built-in synthetic bilingual corpus' if is_builtin else 'the data described below'}"
               + f" ({', '.join(languages)}).")
    context = dict(
        card_data=card_metadata(report, evaluations, model_name).to_yaml(),
        model_name=model_name,
        summary=summary,
        architecture=_architecture_rows(report),
        tied=report["model"]["config"].get("tie_word_embeddings", True),
        tokenizer=report["tokenizer"],
        tokenizer_table=_tokenizer_table(report),
        data_summary=summary_,
        cleaning_table=cleaning_table,
        scrub_pii=report["data"].get("scrub_pii", False),
        pii_summary=pii_summary,
        procedure_table=_procedure_table(report),
        results_text=_results_text(report, evaluations),
        loss_curve="loss_curve.png",
        scaling_section=_scaling_section(report, folder),
        usage_id=repo_id or str(folder),
        # Explicit either way: without the flag AutoTokenizer asks interactively, since config.json has auto_map.
        tokenizer_remote_arg=f", trust_remote_code={bool(report['tokenizer'].get('jieba'))}",
        example_prompt="从前，" if languages[0] == "zh" else "Once upon a time,",
        intended_uses=("Research and teaching: studying how small language models learn, how loss depends on data "
                       "and size, and as a starting point for fine-tuning on narrow tasks. Not for production "
                       "use, advice, or any decision about people."),
        privacy_text=(("The training text was scrubbed of common PII patterns, but pattern matching misses "
                       "names, addresses and anything unusual; the model can still reproduce training text.")
                      if report["data"].get("scrub_pii") else
                      ("PII scrubbing was off: anything personal in the training text may be reproduced verbatim."
                       + (" The built-in corpus is synthetic and holds no real personal data." if is_builtin else ""))),
        generalisation_text=("Trained on a synthetic grammar, it knows nothing beyond that grammar's vocabulary "
                             "and templates." if is_builtin else
                             "Expect it to work only on text like its training data; quality drops sharply outside it."),
        languages_text=f"Trained on {', '.join(languages)} text; other languages are tokenized losslessly but not modelled.",
        parameters_text=_fmt(report["model"]["parameters"]),
        wenlm_command=report.get("wenlm_command", "wenlm"),
    )
    template_name = "finetuned.md" if base_model else "pretrained.md"
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    content = environment.from_string(template_text(template_name)).render(**context)
    return ModelCard(content)


def write_model_card(folder: str | Path, repo_id: str | None = None) -> Path:
    card = render_model_card(folder, repo_id=repo_id)
    path = Path(folder) / CARD_FILE
    card.save(path)
    return path
