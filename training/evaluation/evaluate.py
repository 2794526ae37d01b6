"""`wenlm evaluate`: measure a model on a task and record the numbers in its folder.

Tasks:

- ``lm``: loss (nats per predicted token), perplexity and bits per byte on a text file (.txt: documents separated
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

All scores come from the local `evaluate` modules in :mod:`wenlm.training.evaluation.metrics` (0-100). The metrics are printed
as JSON; for a local model folder they are merged into its ``eval_results.json`` and the model card is re-rendered
when the folder has a training report.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import torch

from wenlm.training.data.tasks import encode_classification_text, read_rows

logger = logging.getLogger(__name__)

TASKS = ("lm", "qa", "translate", "summarize", "classification")
TASK_TYPES = {"lm": "text-generation", "qa": "question-answering", "translate": "translation",
              "summarize": "summarization", "classification": "text-classification"}
EVAL_RESULTS = "eval_results.json"
END_OF_TURN_ID = 6
PROMPT_FORMATS = ("auto", "chat", "plain")
MAX_EVAL_CONTEXT = 2048


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wenlm evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder or Hub id")
    parser.add_argument("--revision", default=None, help="branch, tag or commit of a Hub model")
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--data", required=True, help="the evaluation file")
    parser.add_argument("--max_samples", type=int, default=None, help="evaluate only the first N rows/documents")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_new_tokens", type=int, default=64, help="generation tasks: longest answer")
    parser.add_argument("--prompt_format", choices=PROMPT_FORMATS, default="auto",
                        help="generation tasks: chat renders the prompt as a user turn with the chat template; "
                             "plain feeds it as text and cuts the answer at the first newline; auto picks chat for "
                             "fine-tuned chat models (their generation config stops at <|end|>)")
    parser.add_argument("--text_column", default="text", help="lm/classification: the text column")
    parser.add_argument("--label_column", default="label", help="classification: the label column")
    parser.add_argument("--no_save", action="store_true", help="print the metrics only; do not touch the folder")
    return parser


# ----------------------------------------------------------------------------------------------------------
# Loading


def load_tokenizer(model: str, revision: str | None):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model, revision=revision, trust_remote_code=True)


def load_causal_lm(model: str, revision: str | None):
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(model, revision=revision, trust_remote_code=True)
    return loaded.eval()


def check_rows(row_set, max_samples: int | None) -> list[tuple[int, dict]]:
    if row_set.bad_rows:
        listed = "; ".join(map(str, row_set.bad_rows[:10]))
        raise ValueError(f"{row_set.path}: {len(row_set.bad_rows)} unreadable row(s): {listed}")
    pairs = list(zip(row_set.numbers, row_set.rows))
    if max_samples is not None:
        pairs = pairs[:max_samples]
    if not pairs:
        raise ValueError(f"{row_set.path}: no rows to evaluate.")
    return pairs


# ----------------------------------------------------------------------------------------------------------
# Language modelling


def read_documents(path: str, text_column: str, max_samples: int | None) -> list[str]:
    if Path(path).suffix.lower() == ".txt":
        from wenlm.training.data.pipeline import read_txt_documents

        if not Path(path).is_file():
            raise FileNotFoundError(f"--data {path}: no such file.")
        documents = list(read_txt_documents(path))
    else:
        documents = []
        for number, row in check_rows(read_rows(path), None):
            text = row.get(text_column)
            if not isinstance(text, str):
                raise ValueError(f"{path} row/line {number}: no string {text_column!r} field (use --text_column).")
            documents.append(text)
    documents = [document for document in documents if document.strip()]
    if max_samples is not None:
        documents = documents[:max_samples]
    if not documents:
        raise ValueError(f"--data {path}: no documents to evaluate.")
    return documents


def document_windows(token_ids: list[int], eos_id: int, window: int) -> Iterator[tuple[list[int], int]]:
    """(input ids, number of leading tokens that are context only) for each window of a document.

    The sequence is <|eos|> + document + <|eos|>; every token after the first is predicted exactly once.
    """
    sequence = [eos_id, *token_ids, eos_id]
    start = 0
    while start < len(sequence) - 1:
        yield sequence[start:start + window], 1
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
            batch = windows[start:start + batch_size]
            longest = max(len(ids) for ids, _ in batch)
            input_ids = torch.full((len(batch), longest), tokenizer.pad_token_id, dtype=torch.long)
            attention = torch.zeros_like(input_ids)
            targets = torch.full_like(input_ids, -100)
            for row, (ids, context) in enumerate(batch):
                input_ids[row, :len(ids)] = torch.tensor(ids)
                attention[row, :len(ids)] = 1
                targets[row, context:len(ids)] = torch.tensor(ids[context:])
            logits = model(input_ids=input_ids, attention_mask=attention).logits.float()
            shifted = targets[:, 1:]
            nats = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]), shifted.reshape(-1), ignore_index=-100, reduction="sum"
            )
            total_nats += nats.item()
            predicted += int((shifted != -100).sum())
    n_bytes = sum(len(document.encode("utf-8")) for document in documents)
    loss = total_nats / predicted
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "bits_per_byte": total_nats / n_bytes / math.log(2),
            "tokens": predicted, "bytes": n_bytes, "documents": len(documents)}


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
    expected = {"qa": "'context', 'question', 'answer'", "translate": "'source', 'target'",
                "summarize": "'document' (or 'text') and 'summary'"}[task]
    raise ValueError(f"needs string fields 'prompt' and 'response', or {expected}")


def uses_chat_format(model, tokenizer, prompt_format: str) -> bool:
    if prompt_format != "auto":
        if prompt_format == "chat" and not tokenizer.chat_template:
            raise ValueError("--prompt_format chat: the tokenizer has no chat_template.")
        return prompt_format == "chat"
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    return bool(tokenizer.chat_template) and END_OF_TURN_ID in eos_ids


def render_prompt(tokenizer, prompt: str, chat: bool) -> str:
    if chat:
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
    return prompt + "\n"


def generate_answers(model, tokenizer, prompts: list[str], chat: bool, batch_size: int,
                     max_new_tokens: int) -> list[str]:
    """Greedy answers, batched with left padding so every prompt ends where generation starts."""
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"  # an over-long prompt keeps its end, where the question and turn marker are
    texts = [render_prompt(tokenizer, prompt, chat) for prompt in prompts]
    stop_ids = [tokenizer.eos_token_id, END_OF_TURN_ID]
    context = min(model.config.max_position_embeddings, MAX_EVAL_CONTEXT)
    # Longest prompts first: a batch then holds prompts of similar length, wasting less on padding.
    order = sorted(range(len(texts)), key=lambda index: -len(texts[index]))
    answers: list[str] = [""] * len(texts)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            indices = order[start:start + batch_size]
            encoded = tokenizer([texts[i] for i in indices], return_tensors="pt", padding=True,
                                add_special_tokens=False, truncation=True,
                                max_length=max(1, context - max_new_tokens))
            output = model.generate(**encoded, do_sample=False, max_new_tokens=max_new_tokens,
                                    eos_token_id=stop_ids, pad_token_id=tokenizer.pad_token_id)
            new_tokens = output[:, encoded["input_ids"].shape[1]:]
            for index, tokens in zip(indices, new_tokens):
                text = tokenizer.decode(tokens, skip_special_tokens=True)
                answers[index] = (text if chat else text.split("\n", 1)[0]).strip()
    return answers


def generation_metrics(task: str, predictions: list[str], references: list[str]) -> dict:
    from wenlm.training.evaluation.metrics import compute_metric

    if task == "qa":
        scores = compute_metric("qa", predictions, references)
        return {"exact_match": scores["exact_match"], "f1": scores["f1"]}
    if task == "translate":
        chrf = compute_metric("chrf", predictions, references)["chrf"]
        return {"chrf": chrf, "bleu": compute_metric("bleu", predictions, references)["bleu"]}
    return {"rougeL": compute_metric("rouge_l", predictions, references)["rougeL"]}


def evaluate_generation(args, model, tokenizer) -> tuple[dict, list[dict]]:
    pairs = check_rows(read_rows(args.data), args.max_samples)
    prompts, references = [], []
    for number, row in pairs:
        try:
            prompt, reference = prompt_and_reference(row, args.task)
        except ValueError as error:
            raise ValueError(f"{args.data} row/line {number}: {error}") from None
        prompts.append(prompt)
        references.append(reference)
    chat = uses_chat_format(model, tokenizer, args.prompt_format)
    predictions = generate_answers(model, tokenizer, prompts, chat, args.batch_size, args.max_new_tokens)
    metrics = generation_metrics(args.task, predictions, references)
    metrics["prompt_format"] = "chat" if chat else "plain"
    samples = [{"prompt": p, "prediction": y, "reference": r} for p, y, r in zip(prompts, predictions, references)]
    return metrics, samples


# ----------------------------------------------------------------------------------------------------------
# Classification


def evaluate_classification(args) -> dict:
    from transformers import AutoModelForSequenceClassification

    from wenlm.training.evaluation.metrics import compute_metric

    model = AutoModelForSequenceClassification.from_pretrained(args.model, revision=args.revision,
                                                               trust_remote_code=True).eval()
    tokenizer = load_tokenizer(args.model, args.revision)
    label2id = {str(name): int(index) for name, index in model.config.label2id.items()}
    pairs = check_rows(read_rows(args.data), args.max_samples)
    texts, references = [], []
    for number, row in pairs:
        text, label = row.get(args.text_column), row.get(args.label_column)
        if not isinstance(text, str) or label is None:
            raise ValueError(f"{args.data} row/line {number}: needs a string {args.text_column!r} and a "
                             f"{args.label_column!r}.")
        if str(label) not in label2id:
            raise ValueError(f"{args.data} row/line {number}: label {label!r} is not one of the model's labels "
                             f"{sorted(label2id)}.")
        texts.append(text)
        references.append(label2id[str(label)])
    max_length = min(model.config.max_position_embeddings, MAX_EVAL_CONTEXT)
    predictions: list[int] = []
    with torch.no_grad():
        for start in range(0, len(texts), args.batch_size):
            encoded = [encode_classification_text(tokenizer, text, max_length)
                       for text in texts[start:start + args.batch_size]]
            longest = max(map(len, encoded))
            input_ids = torch.tensor([ids + [tokenizer.pad_token_id] * (longest - len(ids)) for ids in encoded])
            attention = torch.tensor([[1] * len(ids) + [0] * (longest - len(ids)) for ids in encoded])
            logits = model(input_ids=input_ids, attention_mask=attention).logits
            predictions.extend(logits.argmax(-1).tolist())
    scores = compute_metric("classification", predictions, references, labels=sorted(set(label2id.values())))
    return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}


# ----------------------------------------------------------------------------------------------------------


def record_results(folder: Path, task: str, metrics: dict, data: str, num_samples: int) -> Path:
    """Merge this task's metrics into the folder's eval_results.json and re-render its model card."""
    path = folder / EVAL_RESULTS
    results = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    results[task] = {"metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                     "data": data, "task_type": TASK_TYPES[task], "num_samples": num_samples}
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if (folder / "training_report.json").is_file():
        from wenlm.training.hub.card import write_model_card

        write_model_card(folder)
    return path


def evaluate_model(args) -> dict:
    if args.max_samples is not None and args.max_samples < 1:
        raise ValueError(f"--max_samples must be at least 1, got {args.max_samples}.")
    if args.batch_size < 1 or args.max_new_tokens < 1:
        raise ValueError("--batch_size and --max_new_tokens must be at least 1.")
    if not Path(args.data).is_file():
        raise FileNotFoundError(f"--data {args.data}: no such file.")
    samples: list[dict] = []
    if args.task == "classification":
        metrics = evaluate_classification(args)
        num_samples = min(args.max_samples or math.inf, len(read_rows(args.data).rows))
    else:
        model, tokenizer = load_causal_lm(args.model, args.revision), load_tokenizer(args.model, args.revision)
        if args.task == "lm":
            documents = read_documents(args.data, args.text_column, args.max_samples)
            metrics = language_model_metrics(model, tokenizer, documents, args.batch_size)
            num_samples = len(documents)
        else:
            metrics, samples = evaluate_generation(args, model, tokenizer)
            num_samples = len(samples)
    metrics["num_samples"] = int(num_samples)
    folder = Path(args.model)
    if folder.is_dir() and not args.no_save:
        record_results(folder, args.task, metrics, args.data, int(num_samples))
    metrics_out = dict(metrics)
    if samples:
        metrics_out["examples"] = samples[:3]
    return metrics_out


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    metrics = evaluate_model(args)
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    return metrics


if __name__ == "__main__":
    main()
