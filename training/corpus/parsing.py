"""Recovering a text's one derivation under the built-in grammar, and so its exact log-probability.

The grammar is unambiguous: `parse_document` recovers every choice (document type, template of every line, every
word, every continue/stop decision) from the text alone and raises `GrammarAmbiguityError` if it ever finds two
derivations, so `document_logprob` equals the log-probability recorded while sampling.
"""

from __future__ import annotations

from collections.abc import Iterator

from wenlm.training.corpus.rules import (
    DOC_TYPE_INFO,
    DOC_TYPES,
    LENGTH_RULES,
    REF_FIELDS,
    START_TURN,
    TABLES,
    TEMPLATES_BY_ROLE,
    TURN_SEPARATOR,
    Template,
)
from wenlm.training.corpus.sampling import ParsedDocument, other_member
from wenlm.training.corpus.vocabulary import FIELD_COMPONENTS, NAMES, field_kind, render_value


class GrammarAmbiguityError(RuntimeError):
    """A text has two derivations: a bug in the grammar tables, never a property of the input."""


_TRIE_END = ""  # never a key for a character, which always has length 1
_TRIES: dict = {}


def _all_values(kind: str) -> list:
    if kind == "name":
        return list(NAMES)
    components = [TABLES[c].options for c in FIELD_COMPONENTS[kind]]
    if len(components) == 1:
        return list(components[0])
    return [(a, b) for a in components[0] for b in components[1]]


def _trie(kind: str, spec: str, lang: str) -> dict:
    key = (kind, spec, lang)
    if key not in _TRIES:
        root: dict = {}
        for value in _all_values(kind):
            node = root
            for char in render_value(kind, spec, lang, value):
                node = node.setdefault(char, {})
            if _TRIE_END in node:
                raise GrammarAmbiguityError(
                    f"{kind} values {node[_TRIE_END]!r} and {value!r} are both written "
                    f"{render_value(kind, spec, lang, value)!r} in {lang}"
                )
            node[_TRIE_END] = value
        _TRIES[key] = root
    return _TRIES[key]


def _trie_prefixes(trie: dict, text: str, pos: int) -> Iterator[tuple[object, int]]:
    """Every vocabulary value whose surface form starts `text` at `pos`, with where it ends."""
    node = trie
    while True:
        if _TRIE_END in node:
            yield node[_TRIE_END], pos
        if pos >= len(text):
            return
        node = node.get(text[pos])
        if node is None:
            return
        pos += 1


def _candidates(name: str, spec: str, lang: str, text: str, pos: int, context: dict, values: dict):
    kind = field_kind(name)
    known = values.get(name, context.get(name))
    if known is None and "A" in context:
        if name == "Y" and "X" in values:
            known = other_member(values["X"], context)
        elif name == "L" and "S" in context:
            known = other_member(context["S"], context)
    if known is not None:
        surface = render_value(kind, spec, lang, known)
        if text.startswith(surface, pos):
            yield known, pos + len(surface)
        return
    if name == "X" and "A" in context:
        for member in (context["A"], context["B"]):
            surface = render_value("name", spec, lang, member)
            if text.startswith(surface, pos):
                yield member, pos + len(surface)
        return
    yield from _trie_prefixes(_trie(kind, spec, lang), text, pos)


def _match_template(template: Template, lang: str, text: str, context: dict) -> list[dict]:
    """All assignments of field values under which `template` renders exactly `text`."""
    pattern = template.patterns[lang]
    matches = []

    def walk(index: int, pos: int, values: dict) -> None:
        if index == len(pattern):
            if pos == len(text):
                matches.append(dict(values))
            return
        element = pattern[index]
        if isinstance(element, str):
            if text.startswith(element, pos):
                walk(index + 1, pos + len(element), values)
            return
        name, spec = element
        for value, end in _candidates(name, spec, lang, text, pos, context, values):
            had = name in values
            values[name] = value
            walk(index + 1, end, values)
            if not had:
                del values[name]

    walk(0, 0, {})
    valid = []
    for values in matches:
        full = {name: context[name] for name in ("A", "B", "S") if name in context}
        full.update(values)
        if "A" in full and "B" in full and full["A"] == full["B"]:
            continue  # the grammar never gives both characters the same name
        if "X" in full and "Y" in full and full["X"] == full["Y"]:
            continue
        if "Y" in template.fields and "A" in context and full["Y"] != other_member(full["X"], context):
            continue
        if template.render(lang, full) != text:
            raise GrammarAmbiguityError(f"template {template.id} matched {text!r} but renders differently")
        valid.append(full)
    return valid


def _match_role(role: str, lang: str, text: str, context: dict) -> tuple[Template, dict] | None:
    found = []
    for template in TEMPLATES_BY_ROLE[role]:
        if not all(literal in text for literal in template.literals[lang]):
            continue
        found.extend((template, values) for values in _match_template(template, lang, text, context))
    if len(found) > 1:
        raise GrammarAmbiguityError(f"{len(found)} derivations of {role} line {text!r}: {found!r}")
    return found[0] if found else None


def _fields_logprob(template: Template, values: dict, context: dict) -> float:
    logprob = 0.0
    refs = REF_FIELDS[template.role]
    for name in template.fields:
        if name in refs:
            continue
        if name == "A":
            logprob += TABLES["name"].logprob(values["A"])
        elif name == "B":
            logprob += TABLES[f"name_after:{values['A']}"].logprob(values["B"])
        elif name == "X":
            logprob += TABLES["cast_member"].logprob("A" if values["X"] == context["A"] else "B")
        else:
            components = FIELD_COMPONENTS[field_kind(name)]
            parts = (values[name],) if len(components) == 1 else values[name]
            for component, part in zip(components, parts):
                logprob += TABLES[component].logprob(part)
    return logprob


class _NoParse(Exception):
    def __init__(self, line_number: int, message: str):
        super().__init__(message)
        self.line_number = line_number
        self.message = message


_LANG_NAMES = {"en": "English", "zh": "Chinese"}


def _parse_as(lines: list[str], doc_type: str, opening_cache: dict) -> ParsedDocument:
    structure, lang = DOC_TYPE_INFO[doc_type]
    rule = LENGTH_RULES[structure]
    step = 2 if structure == "parallel" else 1
    grammar_lines = lines[::step]
    if structure == "parallel":
        if len(lines) % 2:
            # Line 0 ranks this below any failure on a real line, which says more about the text.
            raise _NoParse(0, "a parallel document has an even number of lines (English, Chinese)")
    logprob = TABLES["doc_type"].logprob(doc_type)
    derivation = []

    def parse_line(index: int, role: str, context: dict, text: str) -> tuple[Template, dict]:
        if role == "opening":
            # Three document types start with the same English opening line; match it once.
            if lang not in opening_cache:
                opening_cache[lang] = _match_role(role, lang, text, context)
            found = opening_cache[lang]
        else:
            found = _match_role(role, lang, text, context)
        if found is None:
            raise _NoParse(
                index * step + 1,
                f"line {index * step + 1} ({text[:60]!r}) is not an "
                f"{_LANG_NAMES[lang]} {role} sentence of the grammar",
            )
        template, values = found
        if structure == "parallel":
            translation = template.render("zh", values)
            line_number = index * 2 + 2
            if lines[index * 2 + 1] != translation:
                raise _NoParse(
                    line_number,
                    f"line {line_number} should be the Chinese translation "
                    f"{translation!r} of the line above it",
                )
        derivation.append((role, template.id, values))
        return template, values

    template, values = parse_line(0, "opening", {}, grammar_lines[0])
    logprob += TABLES["template:opening"].logprob(template.id) + _fields_logprob(template, values, {})
    cast = {"A": values["A"], "B": values["B"]}

    has_ending = structure != "dialogue"
    body_lines = grammar_lines[1:-1] if has_ending else grammar_lines[1:]
    if not rule["min_lines"] <= len(body_lines) <= rule["max_lines"]:
        kind = "turns" if structure == "dialogue" else "body lines"
        raise _NoParse(
            len(lines),
            f"a {doc_type} has {rule['min_lines']} to {rule['max_lines']} {kind}, "
            f"this text has {len(body_lines)}",
        )
    previous = START_TURN
    for offset, text in enumerate(body_lines, start=1):
        context = dict(cast)
        if structure == "dialogue":
            speaker = cast["A"] if (offset - 1) % 2 == 0 else cast["B"]
            context["S"] = speaker
            prefix = render_value("name", "", lang, speaker) + TURN_SEPARATOR[lang]
            if not text.startswith(prefix):
                raise _NoParse(offset + 1, f"line {offset + 1} ({text[:60]!r}) should start with {prefix!r}")
            template, values = parse_line(offset, "utterance", context, text[len(prefix) :])
            logprob += TABLES[f"template:utterance|{previous}"].logprob(template.id)
            previous = template.id
        else:
            template, values = parse_line(offset, "body", context, text)
            logprob += TABLES["template:body"].logprob(template.id)
        logprob += _fields_logprob(template, values, context)
        if rule["min_lines"] <= offset < rule["max_lines"]:
            logprob += TABLES[f"continue:{structure}"].logprob(offset < len(body_lines))
    if has_ending:
        template, values = parse_line(len(grammar_lines) - 1, "ending", cast, grammar_lines[-1])
        logprob += TABLES["template:ending"].logprob(template.id) + _fields_logprob(template, values, cast)
    return ParsedDocument.of_derivation(doc_type, logprob, cast, derivation)


def parse_document(text: str) -> ParsedDocument:
    """Recover the one derivation of `text`; ValueError if the grammar cannot produce `text`."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    lines = text.split("\n")
    parses = []
    failures = []
    opening_cache: dict = {}
    for doc_type in DOC_TYPES:
        try:
            parses.append(_parse_as(lines, doc_type, opening_cache))
        except _NoParse as failure:
            failures.append((failure.line_number, doc_type, failure.message))
    if len(parses) > 1:
        raise GrammarAmbiguityError(f"text parses as {[p.doc_type for p in parses]}: {text!r}")
    if not parses:
        # Explain the failure of the document type the text most likely meant to be: one written in
        # the scripts the text uses, and among those the attempt that got furthest.
        has_chinese = any("\u4e00" <= char <= "\u9fff" for char in text)
        has_latin = any("a" <= char.lower() <= "z" for char in text)
        intended = {
            (True, True): {"parallel"},
            (True, False): {"zh_story", "zh_dialogue"},
            (False, True): {"en_story", "en_dialogue"},
        }.get((has_chinese, has_latin), set(DOC_TYPES))
        line_number, doc_type, message = max(failures, key=lambda f: (f[1] in intended, f[0]))
        raise ValueError(
            f"not a wenlm grammar document ({len(text)} characters, starting {text[:40]!r}); "
            f"read as {doc_type}: {message}"
        )
    return parses[0]


def document_logprob(text: str) -> float:
    """Natural-log probability of `text` under the grammar, recomputed from the text alone.

    Raises ValueError, naming the first line that fails, if the grammar cannot generate `text`.
    """
    return parse_document(text).logprob


def parse_sentence(text: str, lang: str) -> tuple[str, str, dict]:
    """Parse one stand-alone sentence (as in the translate task) into (role, template id, values).

    Names are read from the sentence itself, since there is no opening line to introduce them.
    """
    if lang not in _LANG_NAMES:
        raise ValueError(f"lang must be one of {sorted(_LANG_NAMES)}, got {lang!r}")
    found = []
    for role in ("opening", "body", "ending", "utterance"):
        match = _match_role(role, lang, text, {})
        if match is not None:
            found.append((role, match[0].id, match[1]))
    if not found:
        raise ValueError(f"{text!r} is not an {_LANG_NAMES[lang]} sentence of the wenlm grammar")
    if len(found) > 1:
        raise GrammarAmbiguityError(f"{text!r} parses as {[(r, t) for r, t, _ in found]}")
    return found[0]
