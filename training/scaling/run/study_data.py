"""The study's data: one tokenizer, one shuffled token stream every cell takes a prefix of, and one
held-out validation set shared by every cell.

* One tokenizer for the whole study, trained once on the training documents and saved in the study folder,
  so every cell sees the same token ids and a resumed study keeps them.
* One token stream: the training documents are shuffled with a fixed seed, tokenized and packed into
  blocks; the cell with D tokens trains on the first ceil(D / block_size) blocks.  Cells are therefore nested
  (a smaller cell's data is a prefix of a larger cell's), which removes data-sampling noise from the
  comparison between data sizes.  The shuffle matters for real corpora, whose files are usually ordered
  (by author, era, topic), so a prefix of the raw order would not be a sample of the corpus.
* Validation documents are held out by document (see wenlm.training.data.pipeline) and are identical for every
  cell.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from wenlm.tokenization import train_tokenizer
from wenlm.training.args import DataArguments, ScalingArguments
from wenlm.training.data.packing import document_rows
from wenlm.training.data.pipeline import (
    count_bytes,
    prepare_datasets,
    read_corpus,
    token_byte_lengths,
    tokenize_and_pack,
)
from wenlm.training.scaling.run.study_folder import TOKENIZER_DIR

__all__ = [
    "StudyData",
    "blocks_for",
    "cell_dataset",
    "check_corpus_size",
    "corpus_description",
    "prepare_study_data",
    "read_study_corpus",
    "uses_builtin_corpus",
]


@dataclass
class StudyData:
    tokenizer: Any
    train: Any  # packed blocks of the shuffled training documents: the study's one token stream
    validation: Any  # packed blocks of the held-out documents, shared by every cell
    validation_bytes: int
    data_report: dict
    early_stopping: Any = None  # the stream's tail, never trained on: converged cells stop on its loss

    @property
    def train_blocks(self) -> int:
        return len(self.train)

    @functools.cached_property
    def validation_bytes_per_token(self) -> float:
        predicted = sum(len(ids) - 1 for ids in self.validation["input_ids"])
        return self.validation_bytes / predicted


def uses_builtin_corpus(train_files) -> bool:
    """True when every source is the built-in corpus, the only one whose entropy floor is known."""
    return bool(train_files) and all(str(source).startswith("builtin") for source in train_files)


def blocks_for(tokens: int, block_size: int) -> int:
    return math.ceil(tokens / block_size)


def cell_dataset(train, tokens: int, block_size: int):
    """The first ceil(tokens / block_size) blocks of the stream: nested subsets across data sizes."""
    needed = blocks_for(tokens, block_size)
    if needed > len(train):
        raise ValueError(
            f"a cell of {tokens:,} tokens needs {needed:,} blocks but the training stream has {len(train):,}"
        )
    return train.select(range(needed))


def _data_arguments(options: ScalingArguments) -> DataArguments:
    # The split's seed is the study's --seed (stored studies were split with it).
    return dataclasses.replace(options.data, corpus_seed=options.seed)


def read_study_corpus(options: ScalingArguments) -> None:
    """Read and check the training files before the study folder is made: a file that cannot be read is refused
    with nothing written (prepare_study_data then finds what was read in the cache)."""
    read_corpus(_data_arguments(options))


def prepare_study_data(options: ScalingArguments, study_dir: Path) -> StudyData:
    """Clean and split the corpus, train (or reload) the study tokenizer, pack the shuffled stream."""
    data_args = _data_arguments(options)
    tokenizer_dir = study_dir / TOKENIZER_DIR
    tokenizer, tokenizer_trainer = None, None
    if tokenizer_dir.is_dir():
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    else:

        def tokenizer_trainer(texts):
            return train_tokenizer(
                texts, vocab_size=options.vocab_size, model_max_length=options.data.block_size
            )

    # prepare_datasets trains the tokenizer on the training documents only, never on validation ones.
    prepared = prepare_datasets(data_args, tokenizer=tokenizer, tokenizer_trainer=tokenizer_trainer)
    tokenizer = prepared.tokenizer
    if not tokenizer_dir.is_dir():
        partial = Path(tempfile.mkdtemp(prefix=".tokenizer.", dir=study_dir))
        tokenizer.save_pretrained(str(partial))
        os.replace(partial, tokenizer_dir)

    shuffled = prepared.train_text.shuffle(seed=options.seed)
    stats: dict = {}
    train = tokenize_and_pack(
        shuffled, tokenizer, options.data.block_size, cache_dir=options.data.cache_dir, stats=stats
    )
    # The tail of the stream is set aside before any cell takes its prefix, so the stopping decision of a
    # converged cell is made on training documents it never saw, and never on the validation set it is scored on.
    stopping_blocks = min(blocks_for(options.early_stopping_tokens, options.data.block_size), len(train) // 2)
    early_stopping = train.select(range(len(train) - stopping_blocks, len(train)))
    train = train.select(range(len(train) - stopping_blocks))
    # Scored document by document, so that a perfect model reaches the corpus's entropy floor (see
    # document_rows); packed validation would add a cost of cut documents that no amount of data removes.
    validation, validation_rows = document_rows(
        prepared.validation_text["text"], tokenizer, options.data.block_size
    )
    validation_bytes = count_bytes(validation, token_byte_lengths(tokenizer))
    report = {
        "documents": prepared.report["documents"],
        "tokens": {"train": stats["tokens"], "validation": prepared.report["tokens"]["validation"]},
        "blocks": {"train": len(train), "validation": len(validation), "early_stopping": stopping_blocks},
        "validation_rows": validation_rows,
        "bytes": {"train": prepared.report["bytes"]["train"], "validation": validation_bytes},
        "cleaning": prepared.report["cleaning"],
        "invalid_utf8_bytes": prepared.report["invalid_utf8_bytes"],
    }
    return StudyData(tokenizer, train, validation, validation_bytes, report, early_stopping)


def check_corpus_size(data: StudyData, options: ScalingArguments, largest: int | None = None) -> None:
    """Refuse (before any training) a plan whose largest cell needs more tokens than the stream holds."""
    largest = largest or max(options.grid_data_sizes)
    available_tokens = data.train_blocks * options.data.block_size
    if blocks_for(largest, options.data.block_size) > data.train_blocks:
        raise ValueError(
            f"the corpus has only {available_tokens:,} training tokens ({data.train_blocks:,} blocks of "
            f"{options.data.block_size}) after holding out validation documents, but the grid (--data_sizes, and --epochs x --repetition_tokens) asks "
            f"for up to "
            f"{largest:,}; lower --data_sizes to at most {available_tokens:,} or add data (e.g. builtin:N with a "
            "larger N, more files, or a smaller --vocab_size, which makes more tokens of the same text)"
        )


def corpus_description(options: ScalingArguments, data_report: dict) -> str:
    """One paragraph for REPORT.md: the corpus, its split, the tokenizer and the recipe every cell shares."""
    sources = ", ".join(options.data.train_files)
    documents, tokens, nbytes = data_report["documents"], data_report["tokens"], data_report["bytes"]
    mode = (
        ""
        if uses_builtin_corpus(options.data.train_files)
        else f", .txt documents by {options.data.txt_document_mode}"
    )
    return (
        f"{sources}{mode}. {documents['train']:,} training documents ({tokens['train']:,} tokens, "
        f"{nbytes['train']:,} bytes), shuffled with seed {options.seed} and packed into "
        f"{data_report['blocks']['train']:,} blocks of {options.data.block_size}; {documents['validation']:,} held-out "
        f"validation documents ({data_report['blocks']['validation']:,} blocks, {nbytes['validation']:,} bytes of "
        f"predicted tokens, each document scored from its own start), the same for every cell; the last "
        f"{data_report['blocks'].get('early_stopping', 0):,} blocks of the stream are held out for early stopping. "
        f"Byte-level BPE tokenizer of {options.vocab_size} tokens trained once on the training documents. Each cell "
        f"trains a fresh model with the stock Trainer on the first ceil(D/{options.data.block_size}) blocks (see Method)."
    )
