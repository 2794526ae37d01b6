"""A built-in bilingual (Chinese/English) corpus with an exactly known entropy.

Every document comes from a small probabilistic grammar written for wenlm: short stories and dialogues
about two named characters, with places, objects, animals, food, activities, feelings, times of day,
weather and numbers.  Five document types exist: an English story, a Chinese story, an English
dialogue, a Chinese dialogue, and a parallel story whose English lines are each followed by their
Chinese translation.  A story is an opening line, a random number of body lines and an ending line; a
dialogue is an opening line followed by alternating turns ``Name: utterance``.

The grammar is unambiguous: :func:`parse_document` recovers every choice (document type, template of
every line, every word, every continue/stop decision) from the text alone, and raises
:class:`GrammarAmbiguityError` if it ever finds two derivations.  Because of that the probability of
a text equals the probability of its one derivation, so the log-probability recorded while sampling
(:func:`generate_documents`) can be recomputed from the text (:func:`document_logprob`), and the
entropy of the corpus is known: a Monte-Carlo estimate (:func:`entropy_bits_per_byte`) and a closed
form computed from the grammar tables (:func:`exact_entropy_bits_per_byte`) agree.

Nothing here reads files or downloads anything, so ``wenlm`` can train a model on a fresh machine.
This module is the corpus's public API; the pieces live beside it: vocabulary.py (the words), rules.py
(templates and choice tables), sampling.py (generation), parsing.py (log-probabilities from text),
entropy.py and tasks.py (fine-tuning task sets, JSONL).
Different seeds give different (in practice disjoint) samples: use ``seed`` for training data and
``seed + VALIDATION_SEED_OFFSET`` for validation data.
"""

from __future__ import annotations

from wenlm.training.corpus.entropy import ENTROPY_NOTE, entropy_bits_per_byte, exact_entropy_bits_per_byte
from wenlm.training.corpus.parsing import (
    GrammarAmbiguityError,
    document_logprob,
    parse_document,
    parse_sentence,
)
from wenlm.training.corpus.rules import DOC_TYPES, ChoiceTable, all_choice_tables
from wenlm.training.corpus.sampling import VALIDATION_SEED_OFFSET, ParsedDocument, generate_documents
from wenlm.training.corpus.tasks import TASK_KINDS, make_task_rows, write_jsonl

__all__ = [
    "DOC_TYPES",
    "ENTROPY_NOTE",
    "TASK_KINDS",
    "VALIDATION_SEED_OFFSET",
    "ChoiceTable",
    "GrammarAmbiguityError",
    "ParsedDocument",
    "all_choice_tables",
    "document_logprob",
    "entropy_bits_per_byte",
    "exact_entropy_bits_per_byte",
    "generate_documents",
    "make_task_rows",
    "parse_document",
    "parse_sentence",
    "write_jsonl",
]
