"""The entropy of the built-in corpus in bits per UTF-8 byte: a Monte-Carlo estimate over sampled documents and
a closed form computed from the grammar tables; the two agree (tested)."""

from __future__ import annotations

import math

from wenlm.training.corpus import rules
from wenlm.training.corpus.sampling import check_count, generate_documents
from wenlm.training.corpus.vocabulary import FIELD_COMPONENTS, field_kind, render_value

ENTROPY_NOTE = (
    "bits_per_byte is H(document) / E[UTF-8 bytes of the document] / ln 2 for the wenlm grammar corpus. "
    "H includes every choice of the grammar: the document type, every template and word, and the "
    "continue/stop decision after each line, i.e. the end of the document. A language model that is "
    "charged for predicting an end-of-sequence token after each document (and nothing for the bytes of "
    "that token) cannot reach a validation bits-per-byte below this value on the same distribution. "
    "The bytes counted are those of the text only, lines joined by a single newline, no trailing newline. "
    "Documents are drawn independently, so packing several into one training sequence does not lower "
    "the floor, and a model that sees a document from its middle can only do worse."
)


def entropy_bits_per_byte(num_docs: int = 20000, seed: int = 12345, words: int | None = None) -> dict:
    """Monte-Carlo estimate of the corpus entropy rate in bits per UTF-8 byte.

    bits_per_byte = sum(-logprob) / sum(bytes) / ln 2 over `num_docs` sampled documents, with the
    delta-method standard error of that ratio estimator. The end-of-document decision is part of
    the grammar, so this is the floor for a model that predicts an EOS token after each document:
    no model's validation bits-per-byte on this distribution can be lower (see ENTROPY_NOTE).
    """
    if check_count("num_docs", num_docs) < 2:
        raise ValueError(f"num_docs must be at least 2 to estimate a standard error, got {num_docs}")
    sum_nats = sum_bytes = sum_nats_sq = sum_bytes_sq = sum_cross = 0.0
    for document in generate_documents(num_docs, seed, words):
        nats = -document["logprob"]
        size = len(document["text"].encode("utf-8"))
        sum_nats += nats
        sum_bytes += size
        sum_nats_sq += nats * nats
        sum_bytes_sq += size * size
        sum_cross += nats * size
    ratio = sum_nats / sum_bytes
    # Variance of the residuals nats - ratio * bytes, expanded so one streaming pass suffices.
    residual_ss = sum_nats_sq - 2 * ratio * sum_cross + ratio * ratio * sum_bytes_sq
    residual_var = max(residual_ss, 0.0) / (num_docs - 1)
    mean_bytes = sum_bytes / num_docs
    stderr = math.sqrt(residual_var / num_docs) / mean_bytes
    return {
        "bits_per_byte": ratio / math.log(2),
        "stderr": stderr / math.log(2),
        "num_docs": num_docs,
        "bytes": int(sum_bytes),
        "mean_doc_bytes": mean_bytes,
    }


def _expected_field(name: str, spec: str, lang: str, tables) -> tuple[float, float]:
    """(entropy in nats if the field is a free choice, expected UTF-8 bytes of its surface)."""
    kind = field_kind(name)
    if kind == "name":
        # Names are uniform, so A, the B that excludes A, X, Y and L all have uniform marginals.
        if len(set(tables["name"].probs)) != 1:
            raise NotImplementedError("the closed-form entropy assumes uniformly drawn names")
        names = tables["name"].options
        size = sum(len(render_value("name", spec, lang, n).encode()) for n in names) / len(names)
        free_choices = {"A": "name", "B": f"name_after:{names[0]}", "X": "cast_member"}
        entropy = tables[free_choices[name]].entropy() if name in free_choices else 0.0
        return entropy, size
    components = [tables[c] for c in FIELD_COMPONENTS[kind]]
    entropy = math.fsum(table.entropy() for table in components)
    if len(components) == 1:
        weighted = ((p, v) for v, p in zip(components[0].options, components[0].probs))
    else:
        first, second = components
        weighted = (
            (p * q, (a, b))
            for a, p in zip(first.options, first.probs)
            for b, q in zip(second.options, second.probs)
        )
    size = math.fsum(p * len(render_value(kind, spec, lang, v).encode()) for p, v in weighted)
    return entropy, size


def _template_expectations(template: rules.Template, lang: str, tables) -> tuple[float, float]:
    """(entropy of the template's free fields in nats, expected bytes of its rendering)."""
    entropy = size = 0.0
    refs = rules.REF_FIELDS[template.role]
    for element in template.patterns[lang]:
        if isinstance(element, str):
            size += len(element.encode())
            continue
        name, spec = element
        field_entropy, field_size = _expected_field(name, spec, lang, tables)
        size += field_size
        if name not in refs:
            entropy += field_entropy
    return entropy, size


def _role_expectations(role: str, lang: str, tables) -> tuple[float, float]:
    table = tables[f"template:{role}"]
    entropy, size = table.entropy(), 0.0
    for template_id, prob in zip(table.options, table.probs):
        field_entropy, field_size = _template_expectations(
            rules.TEMPLATE_BY_ID[(role, template_id)], lang, tables
        )
        entropy += prob * field_entropy
        size += prob * field_size
    return entropy, size


def _length_distribution(structure: str, tables) -> tuple[dict[int, float], float]:
    """P(number of body lines = k), and the expected entropy (nats) of the continue decisions."""
    rule = rules.LENGTH_RULES[structure]
    table = tables[f"continue:{structure}"]
    p_continue = table.probs[table.options.index(True)]
    distribution = {}
    reach = 1.0  # probability of having written at least k body lines
    decision_entropy = 0.0
    for k in range(rule["min_lines"], rule["max_lines"] + 1):
        if k == rule["max_lines"]:
            distribution[k] = reach
        else:
            distribution[k] = reach * (1 - p_continue)
            decision_entropy += reach * table.entropy()
            reach *= p_continue
    return distribution, decision_entropy


def exact_entropy_bits_per_byte(words: int | None = None) -> dict:
    """The corpus entropy rate computed in closed form from the grammar tables.

    Because the grammar is unambiguous, H(document) is the expected sum of the entropies of the
    choices made, and bytes are additive over fields, so both expectations are exact sums over the
    tables (the dialogue's template Markov chain is propagated turn by turn). Returns
    ``{"bits_per_byte", "entropy_bits_per_doc", "mean_doc_bytes"}``; see ENTROPY_NOTE.
    """
    tables = rules.tables_for(words)
    doc_table = tables["doc_type"]
    total_entropy = doc_table.entropy()
    total_bytes = 0.0
    for doc_type, p_type in zip(doc_table.options, doc_table.probs):
        structure, lang = rules.DOC_TYPE_INFO[doc_type]
        languages = ("en", "zh") if structure == "parallel" else (lang,)
        lengths, length_entropy = _length_distribution(structure, tables)
        expected_count = math.fsum(k * p for k, p in lengths.items())
        entropy = length_entropy
        size = 0.0
        for index, line_lang in enumerate(languages):
            # In a parallel document the Chinese lines are determined by the English ones.
            counts_entropy = index == 0
            opening_entropy, opening_size = _role_expectations("opening", line_lang, tables)
            size += opening_size
            entropy += opening_entropy if counts_entropy else 0.0
            if structure == "dialogue":
                turn_entropy, turn_size = _dialogue_expectations(line_lang, lengths, tables)
                entropy += turn_entropy
                size += turn_size
                lines = 1 + expected_count
            else:
                body_entropy, body_size = _role_expectations("body", line_lang, tables)
                ending_entropy, ending_size = _role_expectations("ending", line_lang, tables)
                size += expected_count * body_size + ending_size
                if counts_entropy:
                    entropy += expected_count * body_entropy + ending_entropy
                lines = 2 + expected_count
        total_lines = lines * len(languages)
        size += total_lines - 1  # newlines between lines
        total_entropy += p_type * entropy
        total_bytes += p_type * size
    return {
        "bits_per_byte": total_entropy / total_bytes / math.log(2),
        "entropy_bits_per_doc": total_entropy / math.log(2),
        "mean_doc_bytes": total_bytes,
    }


def _dialogue_expectations(lang: str, lengths: dict[int, float], tables) -> tuple[float, float]:
    """Expected entropy (nats) and bytes of all turns of a dialogue, speaker prefixes included."""
    _, name_size = _expected_field("A", "", lang, tables)
    prefix_size = name_size + len(rules.TURN_SEPARATOR[lang].encode())
    per_template = {t.id: _template_expectations(t, lang, tables) for t in rules.UTTERANCES}
    state = {rules.START_TURN: 1.0}  # distribution of the previous turn's template
    entropy = size = 0.0
    for turn in range(1, max(lengths) + 1):
        reached = math.fsum(p for k, p in lengths.items() if k >= turn)
        next_state: dict[str, float] = {}
        for previous, p_previous in state.items():
            table = tables[f"template:utterance|{previous}"]
            entropy += reached * p_previous * table.entropy()
            for template_id, prob in zip(table.options, table.probs):
                field_entropy, field_size = per_template[template_id]
                entropy += reached * p_previous * prob * field_entropy
                size += reached * p_previous * prob * (field_size + prefix_size)
                next_state[template_id] = next_state.get(template_id, 0.0) + p_previous * prob
        state = next_state
    return entropy, size
