"""Measuring a model on a task (`wenlm evaluate`) and recording the numbers in its folder.

Tasks:

- ``lm``: loss (nats per predicted token), perplexity and bits per byte on text files (.txt: documents separated
  by blank lines; .jsonl/.json/.csv/.parquet: a ``text`` column). Each document is scored on its own, preceded by
  <|eos|> exactly as a document follows its predecessor in packed pretraining, and followed by <|eos|>, whose
  prediction is charged (so the result is comparable with the built-in corpus's entropy floor). A document longer
  than the model's context is cut into consecutive windows; each window after the first is conditioned on the
  last token of the previous one only (no overlap), which slightly overestimates the loss of long documents.
  Bits per byte = total nats / UTF-8 bytes of the documents / ln 2.
- ``qa`` (exact match, token F1), ``translate`` (chrF, BLEU), ``summarize`` (ROUGE-L): greedy generation in
  left-padded batches. Rows hold ``prompt``/``response``, or ``context``/``question``/``answer`` (qa),
  ``source``/``target`` (translate), ``document``|``text``/``summary`` (summarize).
- ``classification``: accuracy and macro-F1 of a sequence-classification model on ``text``/``label`` rows.
- ``retrieval``: recall@1/5/10 and MRR of question rows searched against story rows, with a dense or BM25
  ``--retriever`` (see :mod:`wenlm.training.evaluation.retrieval_task`). ``qa`` with ``--context
  oracle|retrieved|none`` answers such question rows after their own story, the retrieved stories or nothing
  (see :mod:`wenlm.training.evaluation.rag`).

All scores come from the local `evaluate` modules in :mod:`wenlm.training.evaluation.metrics` (0-100). The metrics are printed
as JSON; for a local model folder they are merged into its ``eval_results.json`` (``--save_results false`` only
prints them), from which `wenlm evaluate` re-renders the model card when the folder has a training report.

The data comes from ``--validation_files`` (several files are read in order as one set).

``--harness TASKS`` runs lm-evaluation-harness instead (see :mod:`wenlm.training.evaluation.harness`); its
scores are recorded the same way, one ``eval_results.json`` entry per task.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import cached_file

from wenlm.tokenization import stop_token_ids
from wenlm.training.args import EvaluateArguments, ModelSourceArguments
from wenlm.training.data.pipeline import read_txt_documents
from wenlm.training.data.reading import split_compression, text_value_problem
from wenlm.training.data.tasks import encode_classification_text, read_rows
from wenlm.training.evaluation.harness import run_harness
from wenlm.training.evaluation.metrics import compute_metric
from wenlm.training.evaluation.rag import rag_prompts
from wenlm.training.evaluation.retrieval_task import evaluate_retrieval
from wenlm.training.model_folder import EVAL_RESULTS, TRAINING_REPORT, check_model_folder, hub_errors_named
from wenlm.training.utils import bits_per_byte, perplexity, write_json

TASK_TYPES = {
    "lm": "text-generation",
    "qa": "question-answering",
    "translate": "translation",
    "summarize": "summarization",
    "classification": "text-classification",
    "retrieval": "text-retrieval",
}
MAX_EVAL_CONTEXT = 2048


# ----------------------------------------------------------------------------------------------------------
# Loading


def load_tokenizer(model: str, revision: str | None):
    return AutoTokenizer.from_pretrained(model, revision=revision, trust_remote_code=True)


def load_causal_lm(model: str, revision: str | None):
    return AutoModelForCausalLM.from_pretrained(model, revision=revision, trust_remote_code=True).eval()


def check_files(paths: list[str], option: str = "--validation_files") -> None:
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{option} {path}: no such file.")


def read_task_rows(paths: list[str], max_samples: int | None) -> list[tuple[str, int, dict]]:
    """(file, row/line number, row) for the rows of `paths` in order, the first `max_samples` of them.

    A file with unreadable rows is an error even when `max_samples` stops before them.
    """
    rows: list[tuple[str, int, dict]] = []
    for path in paths:
        row_set = read_rows(path)
        if row_set.bad_rows:
            listed = "; ".join(map(str, row_set.bad_rows[:10]))
            raise ValueError(f"{row_set.path}: {len(row_set.bad_rows)} unreadable row(s): {listed}")
        rows += [
            (row_set.path, number, row) for number, row in zip(row_set.numbers, row_set.rows, strict=True)
        ]
    rows = rows[:max_samples]
    if not rows:
        raise ValueError(f"--validation_files {' '.join(paths)}: no rows to evaluate.")
    return rows


# ----------------------------------------------------------------------------------------------------------
# Language modelling


def read_documents(paths: list[str], text_column: str, max_samples: int | None) -> list[str]:
    documents: list[str] = []
    for path in paths:
        if split_compression(path)[0] == ".txt":
            documents += read_txt_documents(path)
            continue
        for _, number, row in read_task_rows([path], None):
            problem = text_value_problem(row, text_column)
            if problem is not None:
                raise ValueError(
                    f"{path} row/line {number}: {problem}; fix or remove that row, or use --text_column."
                )
            documents.append(row[text_column])
    documents = [document for document in documents if document.strip()][:max_samples]
    if not documents:
        raise ValueError(f"--validation_files {' '.join(paths)}: no documents to evaluate.")
    return documents


def document_windows(token_ids: list[int], eos_id: int, window: int) -> Iterator[tuple[list[int], int]]:
    """(input ids, number of leading tokens that are context only) for each window of a document.

    The sequence is <|eos|> + document + <|eos|>; every token after the first is predicted exactly once.
    """
    sequence = [eos_id, *token_ids, eos_id]
    start = 0
    while start < len(sequence) - 1:
        yield sequence[start : start + window], 1
        start += window - 1


def language_model_metrics(model, tokenizer, documents: list[str], batch_size: int) -> dict:
    eos_id = tokenizer.eos_token_id
    window = min(model.config.max_position_embeddings, MAX_EVAL_CONTEXT)
    windows = []
    for document in documents:
        ids = tokenizer(document, add_special_tokens=False)["input_ids"]
        windows.extend(document_windows(ids, eos_id, window))
    windows.sort(key=lambda item: len(item[0]))
    total_nats, predicted = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            batch = windows[start : start + batch_size]
            longest = max(len(ids) for ids, _ in batch)
            input_ids = torch.full((len(batch), longest), tokenizer.pad_token_id, dtype=torch.long)
            attention = torch.zeros_like(input_ids)
            targets = torch.full_like(input_ids, -100)
            for row, (ids, context) in enumerate(batch):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention[row, : len(ids)] = 1
                targets[row, context : len(ids)] = torch.tensor(ids[context:])
            logits = model(input_ids=input_ids, attention_mask=attention).logits.float()
            shifted = targets[:, 1:]
            nats = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]),
                shifted.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            total_nats += nats.item()
            predicted += int((shifted != -100).sum())
    n_bytes = sum(len(document.encode("utf-8")) for document in documents)
    loss = total_nats / predicted
    return {
        "loss": loss,
        "perplexity": perplexity(loss),
        "bits_per_byte": bits_per_byte(total_nats, n_bytes),
        "tokens": predicted,
        "bytes": n_bytes,
        "documents": len(documents),
    }


# ----------------------------------------------------------------------------------------------------------
# Generation tasks


def prompt_and_reference(row: dict, task: str) -> tuple[str, str]:
    """The prompt to answer and the reference answer of one row; raises ValueError when the row has neither form."""
    if isinstance(row.get("prompt"), str) and isinstance(row.get("response"), str):
        return row["prompt"], row["response"]
    if task == "qa" and all(isinstance(row.get(key), str) for key in ("context", "question", "answer")):
        return row["context"] + "\n" + row["question"], row["answer"]
    if task == "translate" and all(isinstance(row.get(key), str) for key in ("source", "target")):
        return row["source"], row["target"]
    if task == "summarize" and isinstance(row.get("summary"), str):
        document = row.get("document", row.get("text"))
        if isinstance(document, str):
            return document, row["summary"]
    expected = {
        "qa": "'context', 'question', 'answer'",
        "translate": "'source', 'target'",
        "summarize": "'document' (or 'text') and 'summary'",
    }[task]
    raise ValueError(f"needs string fields 'prompt' and 'response', or {expected}")


def uses_chat_format(model, tokenizer, prompt_format: str) -> bool:
    if prompt_format != "auto":
        if prompt_format == "chat" and not tokenizer.chat_template:
            raise ValueError("--prompt_format chat: the tokenizer has no chat_template.")
        return prompt_format == "chat"
    # Every wenlm tokenizer has a chat template and every saved folder stops at <|end|>, so neither says whether
    # the model was trained on chat turns; the folder's training report does.
    return bool(tokenizer.chat_template) and training_task(model) == "sft"


def training_task(model) -> str | None:
    """The `task` recorded in the model folder's training_report.json (local or Hub, at the loaded commit)."""
    report_path = cached_file(
        model.name_or_path,
        TRAINING_REPORT,
        revision=getattr(model.config, "_commit_hash", None),
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )
    if report_path is None:
        return None
    try:
        return json.loads(Path(report_path).read_text(encoding="utf-8")).get("task")
    except (json.JSONDecodeError, AttributeError):
        return None


def render_prompt(tokenizer, prompt: str, chat: bool) -> str:
    if chat:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    return prompt + "\n"


def generate_answers(
    model, tokenizer, prompts: list[str], chat: bool, batch_size: int, max_new_tokens: int
) -> list[str]:
    """Greedy answers, batched with left padding so every prompt ends where generation starts."""
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = (
        "left"  # an over-long prompt keeps its end, where the question and turn marker are
    )
    texts = [render_prompt(tokenizer, prompt, chat) for prompt in prompts]
    stop_ids = stop_token_ids(tokenizer)
    context = min(model.config.max_position_embeddings, MAX_EVAL_CONTEXT)
    # Longest prompts first: a batch then holds prompts of similar length, wasting less on padding.
    order = sorted(range(len(texts)), key=lambda index: -len(texts[index]))
    answers: list[str] = [""] * len(texts)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            encoded = tokenizer(
                [texts[i] for i in indices],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
                truncation=True,
                max_length=max(1, context - max_new_tokens),
            )
            output = model.generate(
                **encoded,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                eos_token_id=stop_ids,
                pad_token_id=tokenizer.pad_token_id,
            )
            new_tokens = output[:, encoded["input_ids"].shape[1] :]
            for index, tokens in zip(indices, new_tokens):
                text = tokenizer.decode(tokens, skip_special_tokens=True)
                answers[index] = (text if chat else text.split("\n", 1)[0]).strip()
    return answers


def generation_metrics(task: str, predictions: list[str], references: list[str]) -> dict:
    if task == "qa":
        scores = compute_metric("qa", predictions, references)
        return {"exact_match": scores["exact_match"], "f1": scores["f1"]}
    if task == "translate":
        chrf = compute_metric("chrf", predictions, references)["chrf"]
        return {"chrf": chrf, "bleu": compute_metric("bleu", predictions, references)["bleu"]}
    return {"rougeL": compute_metric("rouge_l", predictions, references)["rougeL"]}


def task_prompts(options: EvaluateArguments) -> tuple[list[str], list[str]]:
    prompts, references = [], []
    for path, number, row in read_task_rows(options.validation_files, options.max_samples):
        try:
            prompt, reference = prompt_and_reference(row, options.task)
        except ValueError as error:
            raise ValueError(f"{path} row/line {number}: {error}") from None
        prompts.append(prompt)
        references.append(reference)
    return prompts, references


def evaluate_generation(
    source: ModelSourceArguments, options: EvaluateArguments, model, tokenizer
) -> tuple[dict, list[dict]]:
    extra: dict = {}
    if options.context:  # retrieval-augmented qa (see rag.py)
        collection = read_task_rows([options.retrieve_from], None) if options.retrieve_from else None
        questions = read_task_rows(options.validation_files, None)
        prompts, references, extra = rag_prompts(source, options, questions, collection, model, tokenizer)
    else:
        prompts, references = task_prompts(options)
    chat = uses_chat_format(model, tokenizer, options.prompt_format)
    predictions = generate_answers(
        model, tokenizer, prompts, chat, options.per_device_eval_batch_size, options.max_new_tokens
    )
    metrics = {**generation_metrics(options.task, predictions, references), **extra}
    metrics["prompt_format"] = "chat" if chat else "plain"
    samples = [
        {"prompt": p, "prediction": y, "reference": r} for p, y, r in zip(prompts, predictions, references)
    ]
    return metrics, samples


# ----------------------------------------------------------------------------------------------------------
# Classification


def classification_rows(options: EvaluateArguments, label2id: dict[str, int]) -> tuple[list[str], list[int]]:
    """The texts to classify and their label ids, checked against the model's labels."""
    texts, references = [], []
    for path, number, row in read_task_rows(options.validation_files, options.max_samples):
        text, label = row.get(options.text_column), row.get(options.label_column)
        if not isinstance(text, str) or label is None:
            raise ValueError(
                f"{path} row/line {number}: needs a string {options.text_column!r} and a "
                f"{options.label_column!r}."
            )
        if str(label) not in label2id:
            raise ValueError(
                f"{path} row/line {number}: label {label!r} is not one of the model's labels "
                f"{sorted(label2id)}."
            )
        texts.append(text)
        references.append(label2id[str(label)])
    return texts, references


def evaluate_classification(source: ModelSourceArguments, options: EvaluateArguments) -> tuple[dict, int]:
    """Accuracy and macro-F1 of a sequence-classification model, and the number of rows scored."""
    model = AutoModelForSequenceClassification.from_pretrained(
        source.model, revision=source.revision, trust_remote_code=True
    ).eval()
    tokenizer = load_tokenizer(source.model, source.revision)
    label2id = {str(name): int(index) for name, index in model.config.label2id.items()}
    texts, references = classification_rows(options, label2id)
    max_length = min(model.config.max_position_embeddings, MAX_EVAL_CONTEXT)
    batch_size = options.per_device_eval_batch_size
    predictions: list[int] = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            encoded = [
                encode_classification_text(tokenizer, text, max_length)
                for text in texts[start : start + batch_size]
            ]
            longest = max(map(len, encoded))
            input_ids = torch.tensor(
                [ids + [tokenizer.pad_token_id] * (longest - len(ids)) for ids in encoded]
            )
            attention = torch.tensor([[1] * len(ids) + [0] * (longest - len(ids)) for ids in encoded])
            logits = model(input_ids=input_ids, attention_mask=attention).logits
            predictions.extend(logits.argmax(-1).tolist())
    scores = compute_metric("classification", predictions, references, labels=sorted(set(label2id.values())))
    return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}, len(texts)


# ----------------------------------------------------------------------------------------------------------


def record_results(folder: Path, entries: dict[str, dict]) -> Path:
    """Merge entries (task name -> {"metrics", "data", "task_type", "num_samples", ...}) into the folder's
    eval_results.json, replacing those of the same names (the command re-renders the model card from it)."""
    path = folder / EVAL_RESULTS
    results = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    results.update(entries)
    write_json(path, results)
    return path


def evaluate_with_harness(source: ModelSourceArguments, options: EvaluateArguments) -> dict:
    """lm-evaluation-harness scores of the --harness tasks, recorded like the others; returns the entries."""
    file_rows = {path: read_task_rows([path], None) for path in options.validation_files}
    _, entries = run_harness(source, options, file_rows)
    folder = Path(source.model)
    if folder.is_dir() and options.save_results:
        record_results(folder, entries)
    return entries


def evaluate_model(source: ModelSourceArguments, options: EvaluateArguments) -> dict:
    """Score the model on the task; returns the metrics (with a few generated examples for generation tasks).

    With --harness: the eval_results.json entry of each harness task, by name."""
    check_files(options.validation_files)
    check_files([options.retrieve_from] if options.retrieve_from else [], "--retrieve_from")
    if options.harness:
        return evaluate_with_harness(source, options)
    check_model_folder(source.model)
    samples: list[dict] = []
    if options.task == "classification":
        with hub_errors_named(source.model):
            metrics, num_samples = evaluate_classification(source, options)
    elif options.task == "retrieval":
        rows = read_task_rows(options.validation_files, None)
        metrics, num_samples = evaluate_retrieval(source, options, rows)
    else:
        with hub_errors_named(source.model):
            model = load_causal_lm(source.model, source.revision)
            tokenizer = load_tokenizer(source.model, source.revision)
        if options.task == "lm":
            documents = read_documents(options.validation_files, options.text_column, options.max_samples)
            metrics = language_model_metrics(model, tokenizer, documents, options.per_device_eval_batch_size)
            num_samples = len(documents)
        else:
            metrics, samples = evaluate_generation(source, options, model, tokenizer)
            num_samples = len(samples)
    metrics["num_samples"] = num_samples
    folder = Path(source.model)
    if folder.is_dir() and options.save_results:
        metrics_only = {key: value for key, value in metrics.items() if isinstance(value, (int, float))}
        record_results(
            folder,
            {
                options.result_name(): {
                    "metrics": metrics_only,
                    "data": ", ".join(options.validation_files),
                    "task_type": TASK_TYPES[options.task],
                    "num_samples": num_samples,
                }
            },
        )
    metrics_out = dict(metrics)
    if samples:
        metrics_out["examples"] = samples[:3]
    return metrics_out
