"""Remote-code tokenizer for wenlm's jieba mode.

This file is copied next to ``tokenizer.json`` by ``save_pretrained`` so that
``AutoTokenizer.from_pretrained(folder, trust_remote_code=True)`` works without wenlm installed.
It must therefore import only the standard library, ``transformers``, ``tokenizers`` and ``jieba``.

Trade-off of jieba mode compared with the plain byte-level BPE tokenizer:

* Runs of Han characters are cut into jieba words, and BPE merges never cross a jieba word boundary.
  Merged tokens are then words or parts of words instead of character pairs that happen to be
  frequent across word boundaries (e.g. a particle glued to the next noun), which gives more
  interpretable tokens and a segmentation closer to how the language is read. It is often said to
  also give fewer tokens per Chinese character; measured on CMRC2018 wiki text with an 8000-token
  vocabulary it does not: 3.69 UTF-8 bytes/token with jieba vs 3.78 without (held-out: 3.42 vs 3.46),
  because word boundaries also forbid some frequent cross-word merges.
* The cost: segmentation runs jieba in Python on every Han run, so encoding Chinese is several times
  slower than the pure-Rust plain tokenizer (about 7x on CMRC2018), and loading needs
  ``trust_remote_code=True`` plus the ``jieba`` package (``pip install 'wenlm[zh]'``). A custom
  Python pre-tokenizer cannot be serialised into ``tokenizer.json``, so the file on disk holds only
  the regex/byte-level steps and this class re-installs the jieba step every time it is constructed.
  ``backend_tokenizer`` therefore holds an unserialisable step; use ``save_pretrained``.

Segmentation is lossless: only runs of Han characters are handed to jieba, every other character
passes through untouched, and a Han run whose jieba words do not concatenate back to it exactly is
kept whole, so ``decode(encode(text)) == text`` holds as in plain mode.
"""

from __future__ import annotations

import re

from tokenizers import NormalizedString, PreTokenizedString, Tokenizer, pre_tokenizers
from transformers import PreTrainedTokenizerFast

try:
    import jieba
except ImportError as error:  # pragma: no cover - exercised only without the optional dependency
    raise ImportError(
        "The wenlm jieba tokenizer needs the `jieba` package. Install it with `pip install 'wenlm[zh]'` "
        "(or `pip install jieba`)."
    ) from error

# Han ideographs only (no kana/hangul: jieba would cut those into single characters). Covers the
# unified ideographs, extension A, the compatibility block and the supplementary-plane extensions.
_HAN_RUN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")

_segmenter: jieba.Tokenizer | None = None


def _get_segmenter() -> jieba.Tokenizer:
    # A private jieba.Tokenizer (not the global one) so that words a user adds to jieba elsewhere in
    # the process cannot change how this tokenizer segments text. Built lazily: loading the
    # dictionary takes about a second.
    global _segmenter
    if _segmenter is None:
        _segmenter = jieba.Tokenizer()
    return _segmenter


def segment_han_runs(text: str) -> list[tuple[int, int]]:
    """Return ``(start, end)`` character spans that tile ``text``: jieba words inside Han runs, everything
    else as the unsplit stretches between them."""
    segmenter = _get_segmenter()
    spans: list[tuple[int, int]] = []
    position = 0
    for match in _HAN_RUN.finditer(text):
        if match.start() > position:
            spans.append((position, match.start()))
        words = list(segmenter.cut(match.group(), HMM=True))
        if "".join(words) == match.group():
            start = match.start()
            for word in words:
                spans.append((start, start + len(word)))
                start += len(word)
        else:
            # Never lose or reorder characters; an unsegmented run only costs some compression.
            spans.append((match.start(), match.end()))
        position = match.end()
    if position < len(text):
        spans.append((position, len(text)))
    return spans


class JiebaHanPreTokenizer:
    """Custom ``tokenizers`` pre-tokenizer step that splits Han runs into jieba words."""

    def _split(self, _index: int, normalized: NormalizedString) -> list[NormalizedString]:
        text = str(normalized)
        if not _HAN_RUN.search(text):
            return [normalized]
        return [normalized[start:end] for start, end in segment_han_runs(text)]

    def pre_tokenize(self, pretokenized: PreTokenizedString) -> None:
        pretokenized.split(self._split)


def jieba_pre_tokenizer(serialisable: pre_tokenizers.PreTokenizer) -> pre_tokenizers.PreTokenizer:
    """The in-memory pre-tokenizer: ``serialisable`` with the jieba step inserted before its first
    ``ByteLevel`` step (jieba needs real characters, not byte symbols).

    With wenlm's pipeline (regex ``Split`` then ``ByteLevel``) jieba thus sees one regex piece at a time:
    short strings, which matters because slicing a long ``NormalizedString`` costs time proportional
    to the slice's offset.
    """
    steps: list[pre_tokenizers.PreTokenizer] = []
    if isinstance(serialisable, pre_tokenizers.Sequence):
        while True:
            try:
                steps.append(serialisable[len(steps)])
            except IndexError:
                break
    else:
        steps.append(serialisable)
    jieba_step = pre_tokenizers.PreTokenizer.custom(JiebaHanPreTokenizer())
    byte_level_at = next(
        (index for index, step in enumerate(steps) if isinstance(step, pre_tokenizers.ByteLevel)), len(steps)
    )
    steps.insert(byte_level_at, jieba_step)
    return pre_tokenizers.Sequence(steps)


class WenLMJiebaTokenizerFast(PreTrainedTokenizerFast):
    """Byte-level BPE tokenizer whose Chinese text is pre-segmented into jieba words.

    See the module docstring for the trade-off against the plain tokenizer. Build it with
    ``wenlm.tokenization.train_tokenizer(..., use_jieba=True)`` and reload it with
    ``AutoTokenizer.from_pretrained(folder, trust_remote_code=True)``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._serialisable_pre_tokenizer = self._tokenizer.pre_tokenizer
        self._tokenizer.pre_tokenizer = jieba_pre_tokenizer(self._serialisable_pre_tokenizer)

    @classmethod
    def convert_to_native_format(cls, trust_remote_code=False, **kwargs):
        # transformers rebuilds classes that define __init__ from bare vocab/merges unless remote code is
        # trusted, which would drop the regex pre-tokenizer and byte-level decoder. tokenizer.json holds
        # exactly the serialisable pipeline this class expects, so always load it as is.
        return super().convert_to_native_format(trust_remote_code=True, **kwargs)

    def serialisable_json(self) -> str:
        """The backend's tokenizer.json content without the jieba step, which `to_str()` refuses (a Python
        pre-tokenizer cannot be serialised): what caches key on, and what pickling ships."""
        jieba_step = self._tokenizer.pre_tokenizer
        self._tokenizer.pre_tokenizer = self._serialisable_pre_tokenizer
        try:
            return self._tokenizer.to_str()
        finally:
            self._tokenizer.pre_tokenizer = jieba_step

    def _save_pretrained(self, save_directory, file_names, legacy_format=None, filename_prefix=None):
        jieba_step = self._tokenizer.pre_tokenizer
        self._tokenizer.pre_tokenizer = self._serialisable_pre_tokenizer
        try:
            return super()._save_pretrained(
                save_directory, file_names, legacy_format=legacy_format, filename_prefix=filename_prefix
            )
        finally:
            self._tokenizer.pre_tokenizer = jieba_step

    # Pickling (datasets.map fingerprints and worker processes, copy.deepcopy) serialises the backend
    # tokenizer, which fails with a custom pre-tokenizer: ship the serialisable form and re-install jieba.
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_tokenizer"] = self.serialisable_json()
        state.pop("_serialisable_pre_tokenizer", None)
        return state

    def __setstate__(self, state):
        state = dict(state)
        backend = Tokenizer.from_str(state.pop("_tokenizer"))
        self.__dict__.update(state)
        self._tokenizer = backend
        self._serialisable_pre_tokenizer = backend.pre_tokenizer
        backend.pre_tokenizer = jieba_pre_tokenizer(self._serialisable_pre_tokenizer)

    def train_new_from_iterator(self, *args, **kwargs):
        raise NotImplementedError(
            "train_new_from_iterator would train without the jieba step (it cannot be serialised). "
            "Use wenlm.tokenization.train_tokenizer(source, use_jieba=True) instead."
        )


# Any instance, however it was created, saves this file and an auto_map next to its tokenizer.json.
WenLMJiebaTokenizerFast.register_for_auto_class("AutoTokenizer")
