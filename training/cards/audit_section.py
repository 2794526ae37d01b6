"""The model card's privacy sentences for a `wenlm audit`: what was measured, how, and the numbers, from the
report's "audit" section (secrets and training text never reach the report)."""

from __future__ import annotations

from wenlm.training.utils import format_number


def _exposure_sentence(canaries: dict) -> str:
    groups = ", ".join(
        f"{format_number(row['repeats'])} {'copy' if row['repeats'] == 1 else 'copies'}: "
        f"{format_number(row['mean_exposure'], 3)} bits"
        + (" (never inserted)" if row["repeats"] == 0 else "")
        for row in canaries.get("by_repeats") or []
    )
    greedy = sum(
        row.get("greedy_reproduced", 0) for row in canaries.get("by_repeats") or [] if row["repeats"]
    )
    inserted = sum(row.get("canaries", 0) for row in canaries.get("by_repeats") or [] if row["repeats"])
    return (
        f" `wenlm audit` measured the exposure (Carlini et al., 2019: log2 of the candidate space minus log2 of "
        f"the secret's rank by the model's likelihood, {canaries.get('method', 'exact')}; at most "
        f"{format_number(canaries.get('max_exposure'), 3)} bits) of random canaries inserted into the training "
        f"data, by copies: {groups}. Greedy decoding wrote the secret of {greedy} of {inserted} inserted canaries."
    )


def _extraction_sentence(extraction: dict) -> str:
    groups = ", ".join(
        f"{row['copies']} {'copy' if row['copies'] == '1' else 'copies'}: {format_number(row['extraction_rate'], 3)} "
        f"of {format_number(row['documents'])}"
        for row in extraction.get("by_copies") or []
    )
    return (
        f" Training-data extraction: greedy decoding from the first {extraction['prefix_tokens']} tokens of a "
        f"training document reproduced the next {extraction['suffix_tokens']} tokens exactly for a share of "
        f"documents, by copies in the training files: {groups or 'no document was long enough'}."
    )


def audit_privacy_text(audit: dict | None) -> str:
    """Sentences to append to the card's privacy paragraph; '' when no audit ran."""
    if not isinstance(audit, dict):
        return ""
    text = ""
    if isinstance(audit.get("canaries"), dict):
        text += _exposure_sentence(audit["canaries"])
    if isinstance(audit.get("extraction"), dict):
        text += _extraction_sentence(audit["extraction"])
    return text
