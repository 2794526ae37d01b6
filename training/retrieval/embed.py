"""One vector per text from any model's final hidden states (`wenlm embed`), read from and written to files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from transformers import AutoModel, AutoTokenizer

from wenlm.training.args import ModelSourceArguments
from wenlm.training.args.retrieval import POOLINGS, EmbedArguments
from wenlm.training.data.reading import iter_lines, json_type, split_compression, text_value_problem
from wenlm.training.model_folder import check_model_folder, hub_errors_named
from wenlm.training.retrieval.search import EMBEDDING_COLUMN
from wenlm.training.utils import write_atomically


def pad_batch(rows: list[list[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask of `rows` padded to one length on the `side` given (left or right)."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        start = width - len(row) if side == "left" else 0
        ids[index, start : start + len(row)] = torch.tensor(row, dtype=torch.long)
        mask[index, start : start + len(row)] = 1
    return ids, mask


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per row of `hidden` (batch, tokens, width), from the positions where `mask` is 1."""
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1)
    if pooling == "last":
        # The largest position holding a real token, whichever side the padding is on.
        positions = torch.arange(mask.shape[1], device=mask.device)
        last = (mask * positions).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"pooling {pooling!r} is unknown; choose {' or '.join(POOLINGS)}.")


@torch.no_grad()
def embed_texts(
    model,
    tokenizer,
    texts: Sequence[str],
    pooling: str = "mean",
    batch_size: int = 32,
    normalize: bool = True,
    max_length: int | None = None,
    padding_side: str = "right",
) -> np.ndarray:
    """A float32 array (len(texts), hidden size): each text's final hidden states pooled into one vector.

    `model` is any transformers model (an `AutoModel` or a `...ForCausalLM`: its base model is used); `pooling` is
    ``mean`` (over the text's tokens, padding excluded) or ``last`` (the last token's state). Texts are cut to
    `max_length` tokens (default: the model's context length) and batched by length; position ids follow the
    attention mask, so left and right padding give the same vectors.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r} is unknown; choose {' or '.join(POOLINGS)}.")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
    base = model.base_model.eval()
    limit = getattr(base.config, "max_position_embeddings", None)
    limit = min(filter(None, (max_length, limit)), default=None)
    encoded = tokenizer(list(texts), add_special_tokens=True, truncation=limit is not None, max_length=limit)
    rows = encoded["input_ids"]
    for index, row in enumerate(rows):
        if not row:
            raise ValueError(f"text {index} ({texts[index]!r}) has no tokens to embed; remove empty texts.")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0  # masked out: any id will do
    device = next(base.parameters()).device
    order = sorted(range(len(rows)), key=lambda index: len(rows[index]))  # similar lengths share a batch
    result = np.zeros((len(rows), base.config.hidden_size), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        ids, mask = pad_batch([rows[index] for index in chosen], pad_id, padding_side)
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        hidden = base(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
        vectors = pool(hidden.float(), mask, pooling)
        if normalize:
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        result[chosen] = vectors.cpu().numpy()
    return result


def load_encoder(name: str, revision: str | None = None, option: str = "--model"):
    """(AutoModel, tokenizer) of a local folder or Hub id, its problems named after `option`."""
    check_model_folder(name, option)
    with hub_errors_named(name, option):
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=True)
        model = AutoModel.from_pretrained(name, revision=revision, trust_remote_code=True)
    return model, tokenizer


def read_texts(path: str | Path, text_column: str = "text", id_column: str = "id") -> list[dict]:
    """Rows of a .txt file (``{"id": line number, "text": line}``, blank lines skipped) or a .jsonl file (each
    object as it is, its text in `text_column`; `id_column` is added with the line number when no row has it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--input {path}: no such file. Give a .txt or .jsonl file of texts.")
    suffix = split_compression(path)[0]
    if suffix not in (".txt", ".jsonl"):
        raise ValueError(
            f"--input {path}: expected a .txt (one text per line) or .jsonl file (either may be compressed: "
            ".gz .bz2 .xz .zst)."
        )
    lines = [(number, line) for number, line in iter_lines(path, strict=True) if line.strip()]
    if not lines:
        raise ValueError(f"--input {path} holds no texts.")
    if suffix == ".txt":
        return [{id_column: number, text_column: line} for number, line in lines]
    rows = []
    for number, line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: not valid JSON ({error.msg}).") from None
        if isinstance(row, dict):
            found = text_value_problem(row, text_column)
        else:
            found = f"{json_type(row)}, not an object"
        if found is None and not row[text_column].strip():
            found = f"{text_column!r} is empty"
        if found is not None:
            raise ValueError(
                f"{path}, line {number}: expected an object with a non-empty text in "
                f"{text_column!r}: {found} (set --text_column to the field holding the text)."
            )
        if EMBEDDING_COLUMN in row:
            raise ValueError(
                f"{path}, line {number}: has a field {EMBEDDING_COLUMN!r}, the column the vectors "
                "go to; rename it first."
            )
        rows.append((number, row))
    with_ids = sum(id_column in row for _, row in rows)
    if with_ids not in (0, len(rows)):
        number = next(number for number, row in rows if id_column not in row)
        raise ValueError(
            f"{path}, line {number}: no {id_column!r} field, unlike other rows; give every row an id "
            "or none (then ids are line numbers), or set --id_column."
        )
    return [row if with_ids else {id_column: number, **row} for number, row in rows]


def check_output(path: str | Path, overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"--output {path} already exists; pass --overwrite true or choose another file."
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(f"--output {path}: folder {path.parent} does not exist; create it first.")
    return path


def write_embeddings(
    rows: list[dict], vectors: np.ndarray, path: str | Path, overwrite: bool = False
) -> Path:
    """Write `rows` (every field any row has; null where a row lacks it) with their vectors (column 'embedding',
    lists of float32) to a parquet file."""
    path = check_output(path, overwrite)
    # Every field of every row: pyarrow's from_pylist would take the names of row 0 only.
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns = {name: [row.get(name) for row in rows] for name in names}
    columns[EMBEDDING_COLUMN] = pa.array(list(vectors), type=pa.list_(pa.float32()))
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), buffer)
    return write_atomically(path, buffer.getvalue().to_pybytes())


def embed_file(source: ModelSourceArguments, options: EmbedArguments) -> Path:
    rows = read_texts(options.input, options.text_column, options.id_column)
    check_output(options.output, options.overwrite)  # before the minutes of embedding, not after
    model, tokenizer = load_encoder(source.model, source.revision)
    vectors = embed_texts(
        model,
        tokenizer,
        [row[options.text_column] for row in rows],
        options.pooling,
        options.per_device_eval_batch_size,
        options.normalize,
        options.max_length,
    )
    path = write_embeddings(rows, vectors, options.output, options.overwrite)
    print(f"wrote {len(rows)} vectors of {vectors.shape[1]} numbers ({options.pooling} pooling) to {path}")
    return path
