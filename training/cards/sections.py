"""What a model card says, from a folder's reports: its metadata (languages, datasets, the model-index of
evaluation results) and the text of each section (architecture, tokenizer, data, procedure, results, a linked
scaling study, summary, limitations). `card` reads the reports and renders the template with them."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from wenlm.training.cards.audit_section import audit_privacy_text
from wenlm.training.utils import format_number, is_number, markdown_table

SCALING_PLOT_FILE = "scaling.png"
# Trainer bookkeeping that is not a measurement of the model.
NON_METRIC_RESULTS = {
    "eval_bytes",
    "eval_runtime",
    "eval_samples_per_second",
    "eval_steps_per_second",
    "epoch",
}
METRIC_LABELS = {
    "final_train_loss": "final training loss (nats/token)",
    "eval_loss": "validation loss (nats/token)",
    "eval_perplexity": "validation perplexity",
    "eval_bpb": "validation bits per byte",
    "eval_accuracy": "validation accuracy",
    "eval_macro_f1": "validation macro F1",
    "eval_recall@1": "validation recall@1 (exact search among the validation documents)",
    "eval_recall@10": "validation recall@10",
    "eval_mrr": "validation mean reciprocal rank",
    "eval_f1": "validation F1",
}
COUNT_LABELS = {
    "rows": "rows read",
    "bad_rows": "rows skipped as malformed",
    "truncated": "rows truncated to the context length",
    "train_rows": "training rows",
    "validation_rows": "validation rows",
    "examples": "examples",
    "num_labels": "classes",
    "skip_bad_rows": "malformed rows skipped instead of stopping",
    "block_size": "context length used (tokens)",
}

TASK_DESCRIPTIONS = {
    "sft": "chat / instruction following (supervised fine-tuning on assistant replies only)",
    "classification": "text classification (a linear head on the last non-padding token)",
    "embedding": "text embeddings for retrieval (contrastive InfoNCE on query/document pairs, in-batch negatives)",
}


# --------------------------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------------------------
def card_value(value: Any, digits: int = 4) -> str:
    """A report value as a card shows it: `format_number`, plus what a report can hold that a table of numbers
    does not (a missing value, a diverged loss, lists and mappings)."""
    if value is None:
        return "not recorded"
    if isinstance(value, float) and not math.isfinite(value):
        return "not finite (diverged)"
    if isinstance(value, (list, tuple)):
        return ", ".join(card_value(item) for item in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {card_value(item)}" for key, item in value.items()) or "none"
    return format_number(value, digits)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    return markdown_table(header, [[card_value(cell) for cell in row] for row in rows])


def _source_specs(report: dict) -> list[str]:
    sources = (report.get("data") or {}).get("sources") or []
    return [
        str(source.get("spec", source)) if isinstance(source, dict) else str(source) for source in sources
    ]


def hub_datasets(report: dict) -> list[str]:
    """Hub dataset ids of `hub:NAME[:CONFIG]` sources (the metadata names the dataset, not its config)."""
    names = [spec[len("hub:") :].split(":")[0] for spec in _source_specs(report) if spec.startswith("hub:")]
    return list(dict.fromkeys(name for name in names if name))


def detect_languages(report: dict) -> list[str]:
    """Languages measured in the validation text (tokenizer stats by language), zh first; [] when not measured."""
    stats = (
        (report.get("tokenizer") or {}).get("stats_by_language")
        or (report.get("data") or {}).get("tokenizer_stats_by_language")
        or {}
    )
    measured = [
        language
        for language in ("zh", "en")
        if isinstance(stats.get(language), dict) and stats[language].get("texts", 1)
    ]
    return measured or [language for language in report.get("languages") or [] if isinstance(language, str)]


def _is_builtin(report: dict) -> bool:
    return any(spec.startswith("builtin") for spec in _source_specs(report))


def _metric_label(report: dict, key: str) -> str:
    if key == "eval_loss" and report.get("task") == "classification":
        return "validation loss (cross-entropy per example)"
    if key in ("eval_loss", "final_train_loss") and report.get("task") == "embedding":
        split = "validation" if key == "eval_loss" else "final training"
        return f"{split} InfoNCE loss (per query, in-batch negatives)"
    return METRIC_LABELS.get(key, key.removeprefix("eval_").replace("_", " "))


def _pipeline_tag(report: dict) -> str:
    if report.get("task") == "embedding":
        return "sentence-similarity"
    return "text-classification" if report.get("task") == "classification" else "text-generation"


# --------------------------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------------------------
def _validation_dataset_name(report: dict) -> str:
    if report.get("base_model"):
        return f"validation split of the {report['task']} fine-tuning data"
    return "validation split of the training corpus"


def card_metadata(report: dict, evaluations: dict, model_name: str) -> ModelCardData:
    pipeline_tag = _pipeline_tag(report)
    eval_results = []
    for key, value in (report.get("results") or {}).items():
        if key.startswith("eval_") and key not in NON_METRIC_RESULTS and is_number(value):
            metric = key.removeprefix("eval_")
            eval_results.append(
                EvalResult(
                    task_type=pipeline_tag,
                    dataset_type="custom",
                    dataset_name=_validation_dataset_name(report),
                    metric_type=metric,
                    metric_name=_metric_label(report, key),
                    metric_value=round(float(value), 4),
                )
            )
    for task_name, entry in evaluations.items():
        entry = entry if isinstance(entry, dict) else {}
        for metric, value in (entry.get("metrics") or {}).items():
            if is_number(value):
                eval_results.append(
                    EvalResult(
                        task_type=entry.get("task_type") or pipeline_tag,
                        dataset_type="custom",
                        dataset_name=str(entry.get("data") or task_name),
                        metric_type=metric,
                        metric_name=f"{task_name} {metric}",
                        metric_value=round(float(value), 4),
                    )
                )
    tags = [
        "wenlm",
        "custom_code",
        "causal-lm" if pipeline_tag == "text-generation" else "text-classification",
    ]
    if report.get("task") == "sft":
        tags += ["sft", "conversational"]
    if _is_builtin(report):
        tags.append("synthetic-data")
    if isinstance(report.get("lora"), dict) and report["lora"].get("r"):
        tags.append("lora")
    return ModelCardData(
        language=detect_languages(report) or None,
        license=report.get("license") or "apache-2.0",
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=tags,
        datasets=hub_datasets(report) or None,
        base_model=report.get("base_model"),
        model_name=model_name,
        eval_results=eval_results or None,
    )


# --------------------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------------------
def architecture_rows(report: dict) -> list[tuple[str, str]]:
    model = report["model"]
    config = model.get("config") or {}
    rows = [
        ("parameters (total)", model["parameters"]),
        ("parameters (non-embedding)", model.get("non_embedding_parameters")),
        ("layers", config.get("num_hidden_layers")),
        ("hidden size", config.get("hidden_size")),
        ("feed-forward size", config.get("intermediate_size")),
        ("context length", config.get("max_position_embeddings")),
        ("vocabulary", config.get("vocab_size")),
    ]
    if config.get("num_attention_heads") is not None:
        rows.insert(
            4,
            (
                "attention heads / key-value heads",
                f"{config['num_attention_heads']} / {config.get('num_key_value_heads') or config['num_attention_heads']}",
            ),
        )
    if report.get("task") == "classification" and config.get("id2label"):
        rows.append(("classes", ", ".join(str(label) for label in config["id2label"].values())))
    rows.append(("preset", model.get("preset") or "custom"))
    # The template puts these in a table row of its own, so a `|` in a value is escaped here.
    return [(name, card_value(value).replace("|", "\\|")) for name, value in rows if value is not None]


def architecture_text(report: dict) -> str:
    tied = (report["model"].get("config") or {}).get("tie_word_embeddings", True)
    head = (
        "a linear classification head reads the hidden state of the last non-padding token"
        if report.get("task") == "classification"
        else f"input and output embeddings are {'tied' if tied else 'separate'}"
    )
    return (
        "Architecture: decoder-only Transformer with pre-norm RMSNorm, rotary position embeddings, grouped-query "
        f"attention, a SwiGLU feed-forward block and no biases; {head}. The modeling code ships in this "
        "repository (`modeling_wenlm.py`, `configuration_wenlm.py`), so loading needs `trust_remote_code=True` "
        "unless the `wenlm` package is installed."
    )


def tokenizer_text(report: dict) -> str:
    tokenizer = report.get("tokenizer") or {}
    if not tokenizer.get("vocab_size"):
        return (
            f"The tokenizer of `{report['base_model']}`, unchanged: byte-level BPE with the chat and PII "
            "special tokens of wenlm. It is lossless: any Unicode text decodes back exactly."
        )
    text = (
        f"Byte-level BPE with {card_value(tokenizer['vocab_size'])} tokens ({tokenizer.get('source') or 'wenlm'})"
        + (", with jieba pre-segmentation of Chinese" if tokenizer.get("jieba") else "")
        + ". It is lossless: any Unicode text decodes back exactly."
    )
    stats = (
        tokenizer.get("stats_by_language")
        or (report.get("data") or {}).get("tokenizer_stats_by_language")
        or {}
    )
    rows = [
        [language, s.get("bytes_per_token"), s.get("chars_per_token"), s.get("tokens")]
        for language, s in stats.items()
        if isinstance(s, dict)
    ]
    if rows:
        text += "\n\nMeasured on the validation text, by language:\n\n" + _table(
            ["language", "UTF-8 bytes per token", "characters per token", "tokens measured"], rows
        )
    return text


def _sources_sentence(report: dict) -> str:
    specs = _source_specs(report)
    return f"Sources: {', '.join(f'`{spec}`' for spec in specs)}." if specs else ""


def data_sections(report: dict) -> tuple[str, str, str]:
    data = report["data"]
    documents, tokens = data.get("documents") or {}, data.get("tokens") or {}
    summary = _sources_sentence(report)
    if _is_builtin(report):
        summary += (
            " The built-in corpus is a synthetic bilingual (Chinese/English) grammar of short stories, "
            "questions and translations, generated by wenlm."
        )
    if documents and tokens:
        summary += (
            f" After cleaning, {card_value(documents.get('train'))} training and "
            f"{card_value(documents.get('validation'))} validation documents (held out by document), "
            f"{card_value(tokens.get('train'))} and {card_value(tokens.get('validation'))} tokens"
        )
        summary += f", packed into blocks of {data['block_size']} tokens." if data.get("block_size") else "."
    if data.get("invalid_utf8_bytes"):
        summary += f" {card_value(data['invalid_utf8_bytes'])} invalid UTF-8 bytes were replaced by U+FFFD."
    cleaning = data.get("cleaning") or {}
    rows = [
        [
            name,
            step.get("documents_in"),
            step.get("documents_out"),
            step.get("chars_in"),
            step.get("chars_out"),
        ]
        for name, step in cleaning.items()
        if isinstance(step, dict) and "documents_in" in step
    ]
    table = (
        _table(["cleaning step", "documents in", "documents out", "characters in", "characters out"], rows)
        if rows
        else "Per-step cleaning counts are not available (the corpus was streamed)."
    )
    pii = data.get("pii") or {}
    pii_summary = ""
    if data.get("scrub_pii") and pii:
        pii_summary = (
            "Replaced: " + ", ".join(f"{card_value(count)} {kind}" for kind, count in pii.items()) + "."
        )
    return summary.strip(), table, pii_summary


def finetune_data_text(report: dict) -> str:
    task = report["task"]
    parts = [_sources_sentence(report)] if _source_specs(report) else []
    split_rows = (report.get("data") or {}).get("rows")
    if isinstance(split_rows, dict) and split_rows.get("train") is not None:
        parts.append(
            f"{card_value(split_rows['train'])} training rows and {card_value(split_rows.get('validation') or 0)} "
            "validation rows."
        )
    counts = report.get(task) if isinstance(report.get(task), dict) else {}
    rows = [
        [COUNT_LABELS.get(key, key.replace("_", " ")), value]
        for key, value in counts.items()
        if value is not None and not isinstance(value, (dict, list))
    ]
    if rows:
        parts.append(_table(["fine-tuning data", "count"], rows))
    labels = counts.get("labels") or counts.get("label_counts")
    if labels:
        parts.append(f"Classes: {card_value(labels)}.")
    if task == "sft":
        parts.append(
            "The loss is computed on assistant replies only: system and user turns are context, not targets."
        )
    data = report.get("data") or {}
    if "scrub_pii" in data:
        parts.append(f"PII scrubbing of the fine-tuning data: **{'on' if data['scrub_pii'] else 'off'}**.")
    if not parts:
        parts.append(f"The {task} data is not described in the report.")
    return "\n\n".join(parts)


def procedure_table(report: dict) -> str:
    training = report["training"]
    rows = [[name, value] for name, value in training["hyperparameters"].items() if value is not None]
    hardware = training.get("hardware") or {}
    optional = [
        ("optimizer steps", training.get("steps")),
        ("training tokens", training.get("tokens_seen")),
        (
            "compute (6·N·D FLOPs)",
            float(training["flops_estimate"]) if training.get("flops_estimate") else None,
        ),
        ("processes", training.get("world_size")),
        (
            "hardware",
            f"{hardware['device']} ({hardware.get('cpu_count', '?')} CPU cores, torch "
            f"{hardware.get('torch', '?')})"
            if hardware.get("device")
            else None,
        ),
        ("wall time (s)", training.get("wall_time_seconds")),
        ("training throughput (tokens/s)", training.get("train_tokens_per_second")),
    ]
    rows += [[name, value] for name, value in optional if value is not None]
    lora = report.get("lora")
    if isinstance(lora, dict) and lora.get("r"):
        modules = card_value(lora.get("target_modules") or "default modules")
        rows.append(
            [
                "LoRA",
                f"rank {lora['r']}, alpha {card_value(lora.get('alpha'))}, dropout {card_value(lora.get('dropout'))}, "
                f"on {modules}" + (" (merged into the published weights)" if lora.get("merged") else ""),
            ]
        )
    if report["model"].get("trained_parameters") is not None:
        rows.append(["trained parameters", report["model"]["trained_parameters"]])
    if report.get("base_revision"):
        rows.append(["base model revision", report["base_revision"]])
    return _table(["setting", "value"], rows)


def results_text(report: dict, evaluations: dict) -> str:
    results = report["results"]
    rows = [
        [_metric_label(report, key), value]
        for key, value in results.items()
        if key not in NON_METRIC_RESULTS and is_number(value)
    ]
    text = _table(["metric", "value"], rows) if rows else "No validation metrics were recorded for this run."
    floor = report.get("entropy_floor_bpb") or (report.get("data") or {}).get("entropy_floor_bpb")
    # The floor is exact only for the built-in grammar; a report naming other sources cannot claim it.
    if _is_builtin(report) and is_number(floor) and is_number(results.get("eval_bpb")):
        text += (
            f"\n\nThe built-in corpus has a known entropy of {floor:.4f} bits per byte: no model can go below "
            f"it. This model is {results['eval_bpb'] - floor:.4f} bits per byte above that floor."
        )
    for task_name, entry in evaluations.items():
        entry = entry if isinstance(entry, dict) else {}
        metrics = ", ".join(
            f"{key} {card_value(value)}" for key, value in (entry.get("metrics") or {}).items()
        )
        data = f" on `{entry['data']}`" if entry.get("data") else ""
        command = f"--harness {task_name}" if entry.get("harness") else f"--task {task_name}"
        text += f"\n\n`wenlm evaluate {command}`{data}: {metrics or 'no metrics recorded'}."
    return text


def scaling_section(report: dict, folder: Path) -> str:
    study = report.get("scaling_study")
    if not study:
        return ""
    study_dir = Path(study)
    report_md = study_dir / "REPORT.md"
    if not report_md.is_file():
        raise FileNotFoundError(f"scaling_study {study}: {report_md} not found; run `wenlm scaling` first.")
    text = (
        f"From the data-scale study in `{study}` (its REPORT.md has the fitted laws and their uncertainty)."
    )
    results_json = study_dir / "results.json"
    if results_json.is_file():
        # why: scaling.report pulls in scipy, measured +0.35 s on every card render; only a study needs it.
        from wenlm.training.scaling.report.markdown import load_records

        # The grid only: the repetition sub-study's cells answer another question (REPORT.md has them).
        rows = [
            [r["model"], r["n_params"], r["tokens"], r["val_loss"], r["val_bpb"]]
            for r in load_records(study_dir)
            if not r.get("substudy")
        ]
        text += "\n\n" + _table(
            [
                "model",
                "non-embedding params",
                "unique training tokens",
                "val loss (nats/token)",
                "val bits per byte",
            ],
            rows,
        )
    plot = study_dir / SCALING_PLOT_FILE
    if plot.is_file():
        # The card links the plot by a relative path, so it must travel with the model folder.
        if plot.resolve() != (folder / SCALING_PLOT_FILE).resolve():
            shutil.copyfile(plot, folder / SCALING_PLOT_FILE)
        text += f"\n\n![data-scale study]({SCALING_PLOT_FILE})"
    return text


def summary_text(report: dict, languages: list[str]) -> str:
    parameters = card_value(report["model"]["parameters"])
    language_text = f" ({', '.join(languages)})" if languages else ""
    if report.get("base_model"):
        return (
            f"A {parameters}-parameter wenlm model fine-tuned from `{report['base_model']}` for "
            f"{TASK_DESCRIPTIONS[report['task']]}{language_text}."
        )
    corpus = (
        "the wenlm built-in synthetic bilingual corpus" if _is_builtin(report) else "the data described below"
    )
    return (
        f"A {parameters}-parameter wenlm language model pretrained from scratch on {corpus}{language_text}."
    )


def limitations(report: dict, languages: list[str]) -> dict[str, str]:
    data = report.get("data") or {}
    builtin = _is_builtin(report)
    if data.get("scrub_pii"):
        privacy = (
            "The training text was scrubbed of common PII patterns, but pattern matching misses names, "
            "addresses and anything unusual; the model can still reproduce training text."
        )
    else:
        privacy = (
            "PII scrubbing was off: anything personal in the training text may be reproduced verbatim."
            + (" The built-in corpus is synthetic and holds no real personal data." if builtin else "")
        )
    privacy += audit_privacy_text(report.get("audit"))
    if report.get("base_model"):
        privacy += f" The base model `{report['base_model']}` carries the privacy properties of its own training data."
    if builtin:
        generalisation = (
            "Trained on a synthetic grammar, it knows nothing beyond that grammar's vocabulary and templates."
        )
    else:
        generalisation = (
            "Expect it to work only on text like its training data; quality drops sharply outside it."
        )
    if report.get("task") == "classification":
        generalisation += " It always answers with one of its trained classes, even for unrelated text."
    if languages:
        languages_text = (
            f"Trained on {', '.join(languages)} text; other languages are tokenized losslessly but "
            "not modelled."
        )
    else:
        languages_text = (
            "The languages of the training text were not measured; expect it to work only in the "
            "languages of its training data."
        )
    size = (
        "produces fluent-looking text only inside its training distribution and states falsehoods with confidence."
        if report.get("task") != "classification"
        else "is accurate only on inputs like its fine-tuning data and is confidently wrong elsewhere."
    )
    return dict(
        privacy_text=privacy,
        generalisation_text=generalisation,
        languages_text=languages_text,
        size_text=size,
    )
