"""Sampling documents from the built-in grammar, recording the exact log-probability of every choice made."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from wenlm.training.corpus.rules import (
    DOC_TYPE_INFO,
    LENGTH_RULES,
    REF_FIELDS,
    START_TURN,
    TABLES,
    TEMPLATE_BY_ID,
    TURN_SEPARATOR,
    Template,
    tables_for,
)
from wenlm.training.corpus.vocabulary import FIELD_COMPONENTS, field_kind, render_value

# Seeds give disjoint samples in practice: `seed` for training data, `seed + VALIDATION_SEED_OFFSET` for validation.
VALIDATION_SEED_OFFSET = 1


def other_member(name: str, cast: dict) -> str:
    return cast["B"] if name == cast["A"] else cast["A"]


def sample_fields(rng: random.Random, template: Template, context: dict, tables=TABLES) -> tuple[dict, float]:
    """Draw the free fields of a template; `context` holds A, B and the speaker S where known."""
    values = {name: context[name] for name in ("A", "B", "S") if name in context}
    logprob = 0.0
    refs = REF_FIELDS[template.role]
    # A before B because B's distribution excludes A.
    order = sorted(template.fields, key=lambda name: (name not in "AB", name))
    for name in order:
        if name in refs:
            continue
        if name == "A":
            values["A"], lp = tables["name"].sample(rng)
        elif name == "B":
            values["B"], lp = tables[f"name_after:{values['A']}"].sample(rng)
        elif name == "X":
            member, lp = tables["cast_member"].sample(rng)
            values["X"] = context[member]
        else:
            parts = []
            lp = 0.0
            for component in FIELD_COMPONENTS[field_kind(name)]:
                part, part_lp = tables[component].sample(rng)
                parts.append(part)
                lp += part_lp
            values[name] = parts[0] if len(parts) == 1 else tuple(parts)
        logprob += lp
    if "Y" in template.fields:
        values["Y"] = other_member(values["X"], context)
    if "L" in template.fields:
        values["L"] = other_member(context["S"], context)
    return values, logprob


@dataclass
class ParsedDocument:
    """The derivation of one document: its type, cast, opening facts and every line's template."""

    doc_type: str
    logprob: float
    cast: tuple  # (A, B) name ids (English forms)
    weather: str
    time: str
    place: str
    lines: list = field(default_factory=list)  # (role, template id, field values) per grammar line

    @property
    def lang(self) -> str:
        return "bilingual" if self.doc_type == "parallel" else self.doc_type[:2]

    @classmethod
    def of_derivation(cls, doc_type: str, logprob: float, cast: dict, lines: list) -> ParsedDocument:
        """From (role, template id, field values) per line: the opening facts are the first line's values."""
        opening = lines[0][2]
        return cls(
            doc_type=doc_type,
            logprob=logprob,
            cast=(cast["A"], cast["B"]),
            weather=opening["weather"],
            time=opening["time"],
            place=opening["place"],
            lines=lines,
        )


def sample_document(
    rng: random.Random, doc_type: str | None = None, tables=TABLES
) -> tuple[str, ParsedDocument]:
    """Sample one document. With `doc_type` given, its choice is not drawn nor counted in logprob."""
    logprob = 0.0
    if doc_type is None:
        doc_type, logprob = tables["doc_type"].sample(rng)
    structure, lang = DOC_TYPE_INFO[doc_type]
    opening, lp = tables["template:opening"].sample(rng)
    logprob += lp
    opening = TEMPLATE_BY_ID[("opening", opening)]
    values, lp = sample_fields(rng, opening, {}, tables)
    logprob += lp
    cast = {"A": values["A"], "B": values["B"]}
    derivation = [("opening", opening, values)]

    rule = LENGTH_RULES[structure]
    body_role = "utterance" if structure == "dialogue" else "body"
    previous = START_TURN
    count = 0
    while True:
        context = dict(cast)
        if structure == "dialogue":
            context["S"] = cast["A"] if count % 2 == 0 else cast["B"]
            table = tables[f"template:utterance|{previous}"]
        else:
            table = tables["template:body"]
        template_id, lp = table.sample(rng)
        logprob += lp
        template = TEMPLATE_BY_ID[(body_role, template_id)]
        values, lp = sample_fields(rng, template, context, tables)
        logprob += lp
        derivation.append((body_role, template, values))
        previous = template_id
        count += 1
        if count >= rule["max_lines"]:
            break
        if count >= rule["min_lines"]:
            go_on, lp = tables[f"continue:{structure}"].sample(rng)
            logprob += lp
            if not go_on:
                break
    if structure != "dialogue":
        ending, lp = tables["template:ending"].sample(rng)
        logprob += lp
        ending = TEMPLATE_BY_ID[("ending", ending)]
        values, lp = sample_fields(rng, ending, cast, tables)
        logprob += lp
        derivation.append(("ending", ending, values))

    lines = []
    for role, template, values in derivation:
        if structure == "parallel":
            lines.append(template.render("en", values))
            lines.append(template.render("zh", values))
        elif role == "utterance":
            speaker = render_value("name", "", lang, values["S"])
            lines.append(speaker + TURN_SEPARATOR[lang] + template.render(lang, values))
        else:
            lines.append(template.render(lang, values))
    parsed = ParsedDocument.of_derivation(
        doc_type, logprob, cast, [(role, template.id, values) for role, template, values in derivation]
    )
    return "\n".join(lines), parsed


def check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return seed


def seeded_rng(stream: str, seed: int) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`, so streams are reproducible across runs and
    # platforms, and each task kind gets its own stream for the same user seed.
    return random.Random(f"wenlm.corpus/{stream}/{seed}")


def generate_documents(num_docs: int, seed: int = 0, words: int | None = None) -> Iterator[dict]:
    """Yield `num_docs` documents ``{"text": str, "logprob": float}``, deterministically for `seed`.

    ``logprob`` is the exact natural-log probability of the text under the grammar, counting every
    choice including the document type and the decision to stop. Documents are produced one at a
    time, so any number can be streamed. `words` selects the variant keeping that many entries per word
    list (see `rules.tables_for`).
    """
    check_count("num_docs", num_docs)
    tables = tables_for(words)
    rng = seeded_rng("stories", check_seed(seed))
    for _ in range(num_docs):
        text, parsed = sample_document(rng, tables=tables)
        yield {"text": text, "logprob": parsed.logprob}
