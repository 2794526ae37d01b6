"""Canaries (Carlini et al., "The Secret Sharer", 2019): random secrets of a fixed format put into the training
data a known number of times, so that `wenlm audit` can measure how much the model memorised each one.

Each canary is one sentence, `prefix + secret + suffix`, with a prefix of its own (a random four-letter customer
code), half in Chinese and half in English. For every repetition count `--canary_repeats` names, `--canaries`
canaries are inserted that many times; as many controls of the same format are drawn and never inserted.

A copy is put at the start of a training document of its own (the sentence, a newline, the document), never as a
document alone: exact de-duplication would otherwise keep only one copy, and in front of a real document the
copy goes through the same cleaning as the rest of the corpus (PII scrubbing included). The secrets are written
to a file OUTSIDE the model folder, so that a published model never carries the answers.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets

from wenlm.training.args.inspection import CANARY_FORMATS, parse_canary_repeats
from wenlm.training.utils import write_json

CANARY_FILE_KIND = "wenlm-canaries"
CANARY_FILE_VERSION = 1
# (prefix, suffix) around the secret; {tag} makes each canary's prefix its own.
TEMPLATES = {
    "digits": {"en": ("The access code of account {tag} is ", "."), "zh": ("账户{tag}的验证码是", "。")},
    "phone": {"en": ("The phone number of customer {tag} is ", "."), "zh": ("客户{tag}的手机号码是", "。")},
}
# Chinese mobile numbers: 1, then 3-9, then nine digits; the scrubber's phone pattern matches them.
PHONE_SECOND_DIGITS = "3456789"
PHONE_TAIL_DIGITS = 9


@dataclass
class Canary:
    """One canary; `repeats` copies were asked for (0: a control), `in_training` counts the training documents
    that still hold the sentence after cleaning and the validation hold-out (None until counted)."""

    id: int
    language: str
    format: str
    digits: int
    prefix: str
    secret: str
    suffix: str
    repeats: int
    in_training: int | None = None

    @property
    def sentence(self) -> str:
        return self.prefix + self.secret + self.suffix

    @property
    def candidate_space(self) -> int:
        return candidate_space(self.format, self.digits)


def candidate_space(canary_format: str, digits: int) -> int:
    """How many secrets the format allows: 10^digits, or 7 * 10^9 Chinese mobile numbers."""
    return len(PHONE_SECOND_DIGITS) * 10**PHONE_TAIL_DIGITS if canary_format == "phone" else 10**digits


def candidate(canary_format: str, digits: int, index: int) -> str:
    """The index-th secret of the format (0 <= index < candidate_space), so the space can be enumerated and
    sampled uniformly."""
    if canary_format == "phone":
        second, tail = divmod(index, 10**PHONE_TAIL_DIGITS)
        return f"1{PHONE_SECOND_DIGITS[second]}{tail:0{PHONE_TAIL_DIGITS}d}"
    return f"{index:0{digits}d}"


def candidate_index(canary_format: str, digits: int, secret: str) -> int:
    if canary_format == "phone":
        return PHONE_SECOND_DIGITS.index(secret[1]) * 10**PHONE_TAIL_DIGITS + int(secret[2:])
    return int(secret)


def make_canaries(
    count: int, repeats: Sequence[int], seed: int = 0, canary_format: str = "digits", digits: int = 6
) -> list[Canary]:
    """`count` canaries for each repetition count and `count` controls (repeats 0), languages alternating."""
    if canary_format not in CANARY_FORMATS:
        raise ValueError(
            f"--canary_format {canary_format!r} is unknown; choose one of {', '.join(CANARY_FORMATS)}"
        )
    if canary_format == "digits" and not 1 <= digits <= 18:
        raise ValueError(f"--canary_digits must be between 1 and 18, got {digits}")
    if count < 1:
        raise ValueError(f"--canaries must be at least 1 to insert canaries, got {count}")
    rng = random.Random(seed)
    space = candidate_space(canary_format, digits)
    tags: set[str] = set()
    canaries = []
    for repeat in [*repeats, 0]:
        for _ in range(count):
            tag = "".join(rng.choices(string.ascii_uppercase, k=4))
            while tag in tags:
                tag = "".join(rng.choices(string.ascii_uppercase, k=4))
            tags.add(tag)
            language = ("zh", "en")[len(canaries) % 2]
            prefix, suffix = TEMPLATES[canary_format][language]
            canaries.append(
                Canary(
                    id=len(canaries),
                    language=language,
                    format=canary_format,
                    digits=digits,
                    prefix=prefix.format(tag=tag),
                    secret=candidate(canary_format, digits, rng.randrange(space)),
                    suffix=suffix,
                    repeats=repeat,
                )
            )
    return canaries


def _host_indices(texts_at, size: int, needed: int, rng: random.Random) -> list[int]:
    """`needed` indices of distinct, non-empty documents, in random order (two copies put in front of the same
    text would be exact duplicates, and de-duplication would keep one)."""
    chosen, seen = [], set()
    for index in rng.sample(range(size), size):
        text = texts_at(index).strip()
        if text and text not in seen:
            seen.add(text)
            chosen.append(index)
            if len(chosen) == needed:
                return chosen
    raise ValueError(
        f"the corpus has {len(seen)} distinct documents but the canaries need {needed} (one per copy); lower "
        "--canaries or --canary_repeats, or train on more documents"
    )


def insert_canaries(
    documents: list[str] | datasets.Dataset,
    count: int,
    repeats: Sequence[int] | str,
    seed: int = 0,
    canary_format: str = "digits",
    digits: int = 6,
) -> tuple[list[str] | datasets.Dataset, list[Canary]]:
    """Put `count` canaries per repetition count into `documents` (texts, or a Dataset with a "text" column);
    returns the documents (same type and order, the hosts edited) and every canary, controls included."""
    if isinstance(documents, datasets.IterableDataset):
        raise ValueError("--canaries needs the corpus in memory; it cannot be used with --streaming true")
    canaries = make_canaries(count, parse_canary_repeats(repeats), seed, canary_format, digits)
    copies = [canary for canary in canaries for _ in range(canary.repeats)]
    rng = random.Random(seed + 1)
    if isinstance(documents, datasets.Dataset):
        if "text" not in documents.column_names:
            raise ValueError(
                f"the corpus has no 'text' column (columns: {', '.join(documents.column_names)})"
            )
        hosts = _host_indices(lambda index: documents[index]["text"] or "", len(documents), len(copies), rng)
        sentence_at = {host: canary.sentence for host, canary in zip(hosts, copies)}

        def prepend(batch, indices):
            return {
                "text": [
                    f"{sentence_at[index]}\n{text}" if index in sentence_at else text
                    for index, text in zip(indices, batch["text"])
                ]
            }

        return documents.map(prepend, with_indices=True, batched=True, desc="inserting canaries"), canaries
    texts = list(documents)
    hosts = _host_indices(lambda index: texts[index] or "", len(texts), len(copies), rng)
    for host, canary in zip(hosts, copies):
        texts[host] = f"{canary.sentence}\n{texts[host]}"
    return texts, canaries


def count_in_training(canaries: list[Canary], texts: Iterable[str]) -> list[Canary]:
    """Set each canary's `in_training` to the number of `texts` (the training split as trained on) that hold
    its sentence: cleaning, PII scrubbing and the validation hold-out can take copies away."""
    counts = dict.fromkeys(range(len(canaries)), 0)
    for text in texts:
        for position, canary in enumerate(canaries):
            if canary.sentence in text:
                counts[position] += 1
    for position, canary in enumerate(canaries):
        canary.in_training = counts[position]
    return canaries


# ------------------------------------------------------------------------------------------------ the file


def default_canary_file(output_dir: str | Path) -> Path:
    """`<output_dir>.canaries.json`, beside the model folder rather than in it."""
    output_dir = Path(output_dir)
    return output_dir.parent / f"{output_dir.name}.canaries.json"


def check_outside(path: str | Path, model_dir: str | Path) -> None:
    path, model_dir = Path(path).resolve(), Path(model_dir).resolve()
    if path == model_dir or model_dir in path.parents:
        raise ValueError(
            f"--canary_file {path} is inside the model folder {model_dir}: the secrets would be published with the "
            f"model. Keep it outside, e.g. --canary_file {default_canary_file(model_dir)}"
        )


def write_canary_file(
    path: str | Path, canaries: list[Canary], model_dir: str | Path | None = None, seed: int | None = None
) -> Path:
    """The canaries with their secrets as JSON at `path`, which must not be inside `model_dir`."""
    if model_dir is not None:
        check_outside(path, model_dir)
    payload = {
        "kind": CANARY_FILE_KIND,
        "version": CANARY_FILE_VERSION,
        "model_dir": str(model_dir) if model_dir is not None else None,
        "seed": seed,
        "canaries": [asdict(canary) for canary in canaries],
    }
    return write_json(path, payload)


def read_canary_file(path: str | Path) -> list[Canary]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"--canary_file {path} does not exist: give the file `wenlm pretrain --canaries N` wrote (by default "
            "<output_dir>.canaries.json beside the model folder)"
        )
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"--canary_file {path}: not valid JSON ({error})") from None
    if not isinstance(payload, dict) or payload.get("kind") != CANARY_FILE_KIND:
        raise ValueError(
            f'--canary_file {path}: not a wenlm canary file (it lacks "kind": "{CANARY_FILE_KIND}"); '
            "give the file `wenlm pretrain --canaries N` wrote"
        )
    if payload.get("version") != CANARY_FILE_VERSION:
        raise ValueError(
            f"--canary_file {path}: version {payload.get('version')!r} is not supported "
            f"(this wenlm reads version {CANARY_FILE_VERSION})"
        )
    rows = payload.get("canaries")
    if not isinstance(rows, list) or not rows:
        raise ValueError(f'--canary_file {path}: "canaries" must be a non-empty list')
    return [_canary_from_row(row, path, number) for number, row in enumerate(rows)]


def _canary_from_row(row, path: Path, number: int) -> Canary:
    try:
        canary = Canary(**row)
    except TypeError as error:
        raise ValueError(f"--canary_file {path}: canary {number} is malformed ({error})") from None
    if (
        canary.format not in CANARY_FORMATS
        or not isinstance(canary.secret, str)
        or not canary.secret.isdigit()
    ):
        raise ValueError(
            f"--canary_file {path}: canary {number} has an unknown format {canary.format!r} or a "
            "secret that is not digits"
        )
    try:
        fits = (
            candidate(
                canary.format, canary.digits, candidate_index(canary.format, canary.digits, canary.secret)
            )
            == canary.secret
        )
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"--canary_file {path}: canary {number}'s secret {canary.secret!r} does not fit its "
            f"format {canary.format!r}"
        )
    return canary


# --------------------------------------------------------------------------- wenlm pretrain --canaries N


class PretrainingCanaries:
    """What `wenlm pretrain` needs of the canaries: the check before anything is written, the edit of the loaded
    documents (`prepare_datasets(edit_raw=...)`), and the record written once the training split is known."""

    def __init__(self, options, output_dir: str | Path):
        self.options = options
        self.path = Path(options.canary_file or default_canary_file(output_dir))
        self.output_dir = Path(output_dir)
        self.inserted: list[Canary] = []
        if options.canaries:
            check_outside(self.path, self.output_dir)

    def edit_raw(self, documents):
        documents, self.inserted = insert_canaries(
            documents,
            self.options.canaries,
            self.options.canary_repeats,
            self.options.canary_seed,
            self.options.canary_format,
            self.options.canary_digits,
        )
        return documents

    def record(self, train_texts: Iterable[str], report: dict) -> None:
        """Count the copies that reached the training split, note the canaries (never their secrets) in the
        report, and write the secrets beside the model folder."""
        count_in_training(self.inserted, train_texts)
        report["canaries"] = {
            "canaries": len(self.inserted),
            "repeats": list(parse_canary_repeats(self.options.canary_repeats)),
            "format": self.options.canary_format,
            "file": str(self.path),
        }
        write_canary_file(self.path, self.inserted, model_dir=self.output_dir, seed=self.options.canary_seed)
