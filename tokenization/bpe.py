"""Train wenlm's byte-level BPE tokenizer for mixed Chinese/English text.

Pipeline (no normalizer, so encoding is lossless):

1. ``Split`` with the pattern of a *split rule* (behaviour ``isolated``); BPE merges never cross its pieces.
   ``qwen2`` (the default, :data:`QWEN2_SPLIT_PATTERN`) is Qwen2's rule: letter runs (Chinese included) with
   one optional leading non-letter, single digits, punctuation runs, whitespace. llama.cpp implements it, so
   such a tokenizer exports to GGUF and tokenizes there exactly as here. ``wenlm``
   (:data:`PRE_TOKENIZE_PATTERN`) is the rule of wenlm's first releases: runs of CJK characters apart from
   other letters, digits in groups of at most three; llama.cpp has no implementation of it.
2. ``ByteLevel(add_prefix_space=False, use_regex=False)``: map every byte to a printable character. All
   256 bytes are in the initial alphabet, so any string can be encoded without an unknown token.
With ``use_jieba=True`` an extra step between 1 and 2 cuts Han runs into jieba words; see
:mod:`wenlm.tokenization.tokenization_wenlm`.

Special tokens have fixed ids (:data:`SPECIAL_TOKEN_IDS`). Note that, as in every Hugging Face
tokenizer, a literal ``"<|eos|>"`` (or any other special token string) inside input text is encoded as
that special token. Decoding still reproduces the text exactly, but the ids differ from those of
ordinary text. When the text is untrusted, encode it with ``split_special_tokens=True`` or use
``apply_chat_template(..., sanitize_control_tokens=True)``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|bos|>"
EOS_TOKEN = "<|eos|>"
CHAT_ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
END_OF_TURN_TOKEN = "<|end|>"
# Placeholders that data cleaning substitutes for personal information. They are ordinary (non-special)
# added tokens so that `decode(..., skip_special_tokens=True)` keeps them in the text.
PII_PLACEHOLDERS = {
    "email": "<|email|>",
    "phone": "<|phone|>",
    "id_number": "<|id|>",
    "ip": "<|ip|>",
    "card": "<|card|>",
}

# The model config hard-codes these ids; the order of this list defines them.
_FIXED_SPECIAL_TOKENS = [
    PAD_TOKEN,
    BOS_TOKEN,
    EOS_TOKEN,
    CHAT_ROLE_TOKENS["system"],
    CHAT_ROLE_TOKENS["user"],
    CHAT_ROLE_TOKENS["assistant"],
    END_OF_TURN_TOKEN,
]
SPECIAL_TOKEN_IDS = {
    "pad": 0,
    "bos": 1,
    "eos": 2,
    "system": 3,
    "user": 4,
    "assistant": 5,
    "end": 6,
    **{kind: 7 + offset for offset, kind in enumerate(PII_PLACEHOLDERS)},
}

BYTE_ALPHABET_SIZE = 256

_CJK_CLASS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\x{30FC}"  # U+30FC: katakana long-vowel mark
PRE_TOKENIZE_PATTERN = (
    rf"[{_CJK_CLASS}]+"
    # Letters plus combining marks (so decomposed accents stay in their word), minus CJK.
    rf"| ?[\p{{L}}\p{{M}}&&[^{_CJK_CLASS}]]+"
    r"|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{M}\p{N}]+"
    # A whitespace run leaves its last space to prefix the following word, as in GPT-2.
    r"|\s+(?!\S)|\s+"
)

# Qwen2's split rule, as llama.cpp implements it (its pre-tokenizer "qwen2"); the text of the pattern must stay
# exactly this for `split_rule_of` to recognise it in a saved tokenizer.json.
QWEN2_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
# Name -> pattern. The default is the rule llama.cpp knows; see README "Tokenizer" for the compression of each.
SPLIT_RULES = {"qwen2": QWEN2_SPLIT_PATTERN, "wenlm": PRE_TOKENIZE_PATTERN}
DEFAULT_SPLIT_RULE = "qwen2"

# Rendered as: <|role|>\ncontent<|end|>\n per message. Only the assistant's content and its <|end|> are
# inside {% generation %}, which is what SFT trains on (return_assistant_tokens_mask=True).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{ raise_exception('wenlm chat roles are system, user and assistant, got ' + message['role']) }}"
    "{%- endif -%}"
    "{{ '<|' + message['role'] + '|>\\n' }}"
    "{%- if message['role'] == 'assistant' -%}"
    "{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}"
    "{%- else -%}"
    "{{ message['content'] + '<|end|>' }}"
    "{%- endif -%}"
    "{{ '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\\n' }}{%- endif -%}"
)

_PATH_LIKE_TEXT = re.compile(r"^\S+\.[A-Za-z0-9]{1,8}$")


def serialisable_pre_tokenizer(split_rule: str = DEFAULT_SPLIT_RULE) -> pre_tokenizers.PreTokenizer:
    """The regex split + byte-level pre-tokenizer stored in tokenizer.json (both modes)."""
    if split_rule not in SPLIT_RULES:
        raise ValueError(f"split_rule must be one of {sorted(SPLIT_RULES)}, got {split_rule!r}.")
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_RULES[split_rule]), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def split_rule_of(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """The name of the split rule a (saved) wenlm tokenizer uses, or None when its pre-tokenizer is not one of
    :data:`SPLIT_RULES` followed by the byte-level step."""
    pre_tokenizer = json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer") or {}
    steps = pre_tokenizer.get("pretokenizers", [])
    if len(steps) != 2 or steps[0].get("type") != "Split" or steps[1].get("type") != "ByteLevel":
        return None
    pattern = steps[0].get("pattern", {}).get("Regex")
    return next((name for name, known in SPLIT_RULES.items() if known == pattern), None)


def _dataset_types() -> tuple[type, ...]:
    # Only a caller that already imported `datasets` can hand us a Dataset; avoid paying its import otherwise.
    datasets = sys.modules.get("datasets")
    return (datasets.Dataset, datasets.IterableDataset) if datasets is not None else ()


def _looks_like_path(item: str) -> bool:
    return "\n" not in item and bool(_PATH_LIKE_TEXT.match(item))


def _resolve_files(source: Any) -> list[Path] | None:
    """Return the files to read if ``source`` names files, else None (it is a corpus of texts).

    A str/PathLike alone, or a list/tuple of them where any element is a PathLike, an existing file, or
    looks like a file name (no whitespace, ends in an extension), is treated as a list of files. Pass a
    generator to force the texts interpretation.
    """
    if isinstance(source, (str, os.PathLike)):
        candidates = [source]
    elif (
        isinstance(source, (list, tuple))
        and source
        and all(isinstance(item, (str, os.PathLike)) for item in source)
    ):
        is_file_like = [
            isinstance(item, os.PathLike) or os.path.isfile(item) or _looks_like_path(item) for item in source
        ]
        if not any(is_file_like):
            return None
        if not all(is_file_like):
            mixed = next(item for item, flag in zip(source, is_file_like, strict=True) if not flag)
            raise ValueError(
                f"train_tokenizer: `source` mixes file paths and text (e.g. {mixed[:60]!r}). Pass either a "
                "list of file paths or an iterable of text strings."
            )
        candidates = list(source)
    else:
        return None
    files = [Path(item) for item in candidates]
    for path in files:
        if not os.path.isfile(path):  # unlike Path.is_file, never raises (e.g. on over-long names)
            raise FileNotFoundError(
                f"train_tokenizer: training file {str(path)[:200]!r} does not exist or is not a file. "
                "Check the path (to train on literal strings, pass them in a list or as a generator)."
            )
    return files


def _iter_file_batches(files: list[Path], batch_size: int) -> Iterator[list[str]]:
    for path in files:
        lines: list[str] = []
        # Binary lines decoded one at a time: "\r\n" stays as written, and a decoding error can name its line
        # (a text-mode reader decodes read-ahead chunks, so its position would be misleading).
        with open(path, "rb") as handle:
            for line_number, raw_line in enumerate(handle, start=1):
                try:
                    lines.append(raw_line.decode("utf-8"))
                except UnicodeDecodeError as error:
                    raise ValueError(
                        f"train_tokenizer: {str(path)!r} is not valid UTF-8 (line {line_number}, byte "
                        f"{error.start} of that line: {error.reason}). Convert the file to UTF-8 first."
                    ) from None
                if len(lines) >= batch_size:
                    yield lines
                    lines = []
        if lines:
            yield lines


def _iter_dataset_batches(dataset: Any, text_column: str, batch_size: int) -> Iterator[list[str]]:
    columns = dataset.column_names
    if columns is None:  # IterableDataset with unknown features: peek at the first example
        first = next(iter(dataset), None)
        columns = list(first) if first is not None else []
    if text_column not in columns:
        raise ValueError(
            f"train_tokenizer: dataset has no column {text_column!r} (columns: {list(columns)}). "
            "Pass the column that holds the text as `text_column=`."
        )
    for batch in dataset.iter(batch_size=batch_size):
        texts = batch[text_column]
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(
                    f"train_tokenizer: column {text_column!r} must hold strings, found {type(text).__name__} "
                    f"({text!r:.60}) in a batch at row offset {index}."
                )
        yield texts


def _iter_text_batches(texts: Iterable[Any], batch_size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"train_tokenizer: item {index} of `source` is a {type(text).__name__}, expected str. "
                "Pass file paths, strings, or a datasets.Dataset with `text_column`."
            )
        batch.append(text)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


class _CharCounter:
    """Wraps a batch iterator and counts the characters the trainer actually consumed."""

    def __init__(self, batches: Iterable[list[str]]):
        self._batches = batches
        self.chars = 0

    def __iter__(self):
        for batch in self._batches:
            self.chars += sum(len(text) for text in batch)
            yield batch


def _validate_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"train_tokenizer: `{name}` must be an integer >= {minimum}, got {value!r}.")


def _extra_special_tokens(special_tokens: list[str] | None) -> list[str]:
    extra_special: list[str] = []
    for token in special_tokens or []:
        if not isinstance(token, str) or not token:
            raise ValueError(f"train_tokenizer: special_tokens must be non-empty strings, got {token!r}.")
        if token in PII_PLACEHOLDERS.values():
            raise ValueError(
                f"train_tokenizer: {token!r} is a PII placeholder (a non-special token with a fixed id); "
                "remove it from special_tokens."
            )
        if token not in _FIXED_SPECIAL_TOKENS and token not in extra_special:
            extra_special.append(token)
    return extra_special


def _check_room_for_merges(vocab_size: int, num_reserved: int) -> None:
    minimum_vocab = BYTE_ALPHABET_SIZE + num_reserved
    if vocab_size <= minimum_vocab:
        raise ValueError(
            f"train_tokenizer: vocab_size={vocab_size} leaves no room for merges: the byte alphabet "
            f"({BYTE_ALPHABET_SIZE}) plus {num_reserved} special/placeholder tokens already take "
            f"{minimum_vocab}. Use vocab_size > {minimum_vocab} (typically several thousand)."
        )


def _jieba_classes() -> tuple[type, Any]:
    """The jieba tokenizer class and pre-tokenizer factory; imported here because jieba is optional."""
    try:
        import jieba  # noqa: F401
    except ImportError:
        raise ImportError(
            "train_tokenizer(use_jieba=True) needs jieba: install it with `pip install 'wenlm[zh]'`."
        ) from None
    from .tokenization_wenlm import WenLMJiebaTokenizerFast, jieba_pre_tokenizer  # needs jieba at import

    return WenLMJiebaTokenizerFast, jieba_pre_tokenizer


def _text_batches(source: Any, text_column: str, batch_size: int) -> tuple[Iterable[list[str]], str]:
    """Batches of training text from any supported source, and how to name the source in an error."""
    if isinstance(source, _dataset_types()):
        return _iter_dataset_batches(source, text_column, batch_size), f"dataset column {text_column!r}"
    files = _resolve_files(source)
    if files is not None:
        return _iter_file_batches(files, batch_size), "files " + ", ".join(repr(str(path)) for path in files)
    if isinstance(source, (str, bytes)) or not isinstance(source, Iterable):
        raise TypeError(
            f"train_tokenizer: unsupported source of type {type(source).__name__}; pass file paths, an "
            "iterable of strings, or a datasets.Dataset."
        )
    return _iter_text_batches(source, batch_size), "the given texts"


def train_tokenizer(
    source: Any,
    vocab_size: int = 8000,
    min_frequency: int = 2,
    special_tokens: list[str] | None = None,
    use_jieba: bool = False,
    split_rule: str = DEFAULT_SPLIT_RULE,
    model_max_length: int = 2048,
    text_column: str = "text",
    batch_size: int = 1000,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer for Chinese/English text.

    Args:
        source: a file path or list of file paths (UTF-8 text), an iterable of strings, or a
            ``datasets.Dataset``/``IterableDataset`` whose ``text_column`` holds the text. A list of
            strings counts as file paths when its elements are ``PathLike``, existing files, or look like
            file names; pass a generator to train on such strings as text.
        vocab_size: total vocabulary size, including the 256 byte tokens and all special/added tokens.
        min_frequency: minimum count for a pair to be merged.
        special_tokens: extra special tokens, appended after the fixed ones (ids from 12 on).
        use_jieba: pre-segment Chinese into jieba words (needs ``pip install 'wenlm[zh]'``). The result
            is a ``WenLMJiebaTokenizerFast`` that must be loaded with ``trust_remote_code=True``.
        split_rule: how text is cut before BPE (:data:`SPLIT_RULES`): ``qwen2`` (default; llama.cpp tokenizes it
            identically, so the model exports to GGUF) or ``wenlm`` (CJK runs kept apart from Latin letters, digits
            in threes; not exportable to GGUF).
        model_max_length: stored on the tokenizer (the model's context length).
        text_column: the text column when ``source`` is a dataset.
        batch_size: lines (files) or texts/rows (iterables, datasets) per training batch.

    Returns:
        A ``PreTrainedTokenizerFast`` with pad/bos/eos set, a chat template, and no automatic BOS/EOS.
    """
    _validate_int("vocab_size", vocab_size, 1)
    _validate_int("min_frequency", min_frequency, 0)
    _validate_int("model_max_length", model_max_length, 1)
    _validate_int("batch_size", batch_size, 1)
    extra_special = _extra_special_tokens(special_tokens)
    reserved = _FIXED_SPECIAL_TOKENS + list(PII_PLACEHOLDERS.values()) + extra_special
    _check_room_for_merges(vocab_size, len(reserved))
    jieba_classes = _jieba_classes() if use_jieba else None
    batches, described = _text_batches(source, text_column, batch_size)

    backend = Tokenizer(models.BPE())  # no unk token needed: every byte is in the alphabet
    serialisable = serialisable_pre_tokenizer(split_rule)
    backend.pre_tokenizer = jieba_classes[1](serialisable) if jieba_classes else serialisable
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=reserved,  # listed first, so they get ids 0.. in this order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    counter = _CharCounter(batches)
    backend.train_from_iterator(counter, trainer=trainer)
    if counter.chars == 0:
        raise ValueError(f"train_tokenizer: no text to train on: {described} contained no characters.")

    # The jieba step must be gone before transformers copies (serialises) the backend.
    backend.pre_tokenizer = serialisable
    # The trainer registered all reserved tokens as special; the placeholders must stay in decoded text.
    backend.add_tokens(
        [AddedToken(token, special=False, normalized=False) for token in PII_PLACEHOLDERS.values()]
    )

    tokenizer_class = jieba_classes[0] if jieba_classes else PreTrainedTokenizerFast
    tokenizer = tokenizer_class(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        extra_special_tokens=[CHAT_ROLE_TOKENS[role] for role in ("system", "user", "assistant")]
        + [END_OF_TURN_TOKEN]
        + extra_special,
        model_max_length=model_max_length,
        add_bos_token=False,
        add_eos_token=False,
        clean_up_tokenization_spaces=False,
        chat_template=CHAT_TEMPLATE,
    )
    _check_fixed_ids(tokenizer)
    return tokenizer


def _check_fixed_ids(tokenizer: PreTrainedTokenizerBase) -> None:
    expected = dict(zip(_FIXED_SPECIAL_TOKENS, range(len(_FIXED_SPECIAL_TOKENS)), strict=True))
    expected.update({token: SPECIAL_TOKEN_IDS[kind] for kind, token in PII_PLACEHOLDERS.items()})
    actual = {token: tokenizer.convert_tokens_to_ids(token) for token in expected}
    if actual != expected:  # would silently break the model config's hard-coded ids
        raise RuntimeError(f"wenlm tokenizer special-token ids drifted: expected {expected}, got {actual}.")


def stop_token_ids(tokenizer, eos_token_id: int | list[int] | None = None) -> list[int]:
    """The ids generation stops at: `eos_token_id` (default: the tokenizer's end of text) and, when the tokenizer
    has it, the end of a chat turn, so that a chat reply ends at <|end|> instead of running on."""
    ids = (
        eos_token_id
        if isinstance(eos_token_id, list)
        else [tokenizer.eos_token_id if eos_token_id is None else eos_token_id]
    )
    end_of_turn = tokenizer.get_vocab().get(END_OF_TURN_TOKEN)
    return [token_id for token_id in dict.fromkeys([*ids, end_of_turn]) if token_id is not None]


def tokenizer_stats(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> dict[str, float | int]:
    """Compression statistics of ``tokenizer`` on ``texts`` (for model cards).

    Returns ``texts``, ``chars``, ``bytes`` (UTF-8), ``tokens`` and the ratios ``bytes_per_token`` and
    ``chars_per_token``. No special tokens are added.
    """
    text_count = chars = byte_count = tokens = 0
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"tokenizer_stats: item {index} is a {type(text).__name__}, expected str.")
        text_count += 1
        chars += len(text)
        byte_count += len(text.encode("utf-8", errors="surrogatepass"))
        tokens += len(tokenizer.encode(text, add_special_tokens=False, verbose=False))
    if tokens == 0:
        raise ValueError("tokenizer_stats: the texts produced no tokens (empty input?).")
    return {
        "texts": text_count,
        "chars": chars,
        "bytes": byte_count,
        "tokens": tokens,
        "bytes_per_token": byte_count / tokens,
        "chars_per_token": chars / tokens,
    }
