"""Tests for wenlm.tokenization: training, special tokens, losslessness, chat template, saving/loading."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import random
import subprocess
import sys
import sysconfig
import unicodedata

import datasets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Regex, pre_tokenizers
from transformers import AutoTokenizer

from wenlm.tokenization import (
    BOS_TOKEN,
    CHAT_ROLE_TOKENS,
    END_OF_TURN_TOKEN,
    EOS_TOKEN,
    PAD_TOKEN,
    PII_PLACEHOLDERS,
    SPECIAL_TOKEN_IDS,
    split_rule_of,
    tokenizer_stats,
    train_tokenizer,
)
from wenlm.tokenization.bpe import QWEN2_SPLIT_PATTERN
from wenlm.training.data.pipeline import tokenize_and_pack
from wenlm.training.hub.validate import HIDE_WENLM

# --- small synthetic corpora -------------------------------------------------------------------------

ZH_PHRASES = [
    "我们",
    "今天",
    "天气",
    "很好",
    "北京",
    "上海",
    "大学",
    "学生",
    "老师",
    "喜欢",
    "读书",
    "中国",
    "历史",
    "文化",
    "科学",
    "技术",
    "发展",
    "经济",
    "社会",
    "人民",
    "生活",
    "工作",
    "时间",
    "问题",
    "语言",
    "模型",
    "训练",
    "数据",
    "城市",
    "公园",
    "朋友",
    "一起",
    "散步",
    "音乐",
    "电影",
    "晚上",
]
ZH_PUNCT = ["，", "。", "！", "？", "、"]
EN_WORDS = [
    "the",
    "model",
    "learns",
    "from",
    "data",
    "and",
    "we",
    "train",
    "it",
    "every",
    "day",
    "language",
    "small",
    "story",
    "cat",
    "dog",
    "happy",
    "reads",
    "book",
    "city",
    "park",
    "music",
    "friend",
]


def _zh_sentence(rng: random.Random) -> str:
    body = "".join(rng.choice(ZH_PHRASES) for _ in range(rng.randint(3, 8)))
    return body + rng.choice(ZH_PUNCT)


def _en_sentence(rng: random.Random) -> str:
    words = [rng.choice(EN_WORDS) for _ in range(rng.randint(4, 10))]
    return " ".join(words).capitalize() + rng.choice([".", ",", "!", "?"])


def _mixed_corpus(seed: int, lines: int) -> list[str]:
    rng = random.Random(seed)
    corpus = []
    for index in range(lines):
        kind = index % 4
        if kind == 0:
            corpus.append(_zh_sentence(rng) + "\n")
        elif kind == 1:
            corpus.append(_en_sentence(rng) + "\n")
        elif kind == 2:
            # Chinese glued to Latin words and words glued to punctuation, repeated so that an
            # unconstrained BPE would certainly merge across those boundaries.
            corpus.append(f"{rng.choice(ZH_PHRASES)}model{rng.choice(ZH_PHRASES)}data。hello, world.\n")
        else:
            corpus.append(f"第{rng.randint(0, 99999)}号 {rng.choice(EN_WORDS)}：{_zh_sentence(rng)}\n")
    return corpus


MIXED_CORPUS = _mixed_corpus(seed=0, lines=400)  # ~20 KB


@pytest.fixture(scope="module")
def plain_tokenizer():
    return train_tokenizer(MIXED_CORPUS, vocab_size=700)


@pytest.fixture(scope="module")
def wenlm_rule_tokenizer():
    return train_tokenizer(MIXED_CORPUS, vocab_size=700, split_rule="wenlm")


@pytest.fixture(scope="module")
def jieba_tokenizer():
    pytest.importorskip("jieba")
    return train_tokenizer(MIXED_CORPUS, vocab_size=700, use_jieba=True)


@pytest.fixture(scope="module", params=["plain", "jieba"])
def any_tokenizer(request, plain_tokenizer):
    if request.param == "plain":
        return plain_tokenizer
    return request.getfixturevalue("jieba_tokenizer")


# --- special tokens and configuration ----------------------------------------------------------------

EXPECTED_IDS = {
    "<|pad|>": 0,
    "<|bos|>": 1,
    "<|eos|>": 2,
    "<|system|>": 3,
    "<|user|>": 4,
    "<|assistant|>": 5,
    "<|end|>": 6,
    "<|email|>": 7,
    "<|phone|>": 8,
    "<|id|>": 9,
    "<|ip|>": 10,
    "<|card|>": 11,
}


def test_exported_constants_match_fixed_ids():
    assert (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, END_OF_TURN_TOKEN) == (
        "<|pad|>",
        "<|bos|>",
        "<|eos|>",
        "<|end|>",
    )
    assert CHAT_ROLE_TOKENS == {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
    assert set(PII_PLACEHOLDERS) == {"email", "phone", "id_number", "ip", "card"}
    named = {
        "pad": PAD_TOKEN,
        "bos": BOS_TOKEN,
        "eos": EOS_TOKEN,
        "end": END_OF_TURN_TOKEN,
        **CHAT_ROLE_TOKENS,
        **PII_PLACEHOLDERS,
    }
    assert {token: SPECIAL_TOKEN_IDS[name] for name, token in named.items()} == EXPECTED_IDS


def test_special_token_ids_and_attributes(any_tokenizer):
    tok = any_tokenizer
    assert {token: tok.convert_tokens_to_ids(token) for token in EXPECTED_IDS} == EXPECTED_IDS
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert tok.model_max_length == 2048
    # Jieba mode may run out of pairs seen twice before reaching the requested size.
    assert 400 < len(tok) <= 700
    # Plain encodes add nothing: pretraining packs documents separated by EOS itself.
    assert tok.encode("hello") == tok.encode("hello", add_special_tokens=False)
    assert tok.bos_token_id not in tok.encode("hello 你好")


def test_pii_placeholders_survive_skip_special_tokens(any_tokenizer):
    tok = any_tokenizer
    text = "联系 <|email|> 或 <|phone|><|eos|>"
    ids = tok.encode(text)
    assert SPECIAL_TOKEN_IDS["email"] in ids and SPECIAL_TOKEN_IDS["phone"] in ids
    assert tok.decode(ids, skip_special_tokens=True) == "联系 <|email|> 或 <|phone|>"


def test_extra_special_tokens_come_after_fixed_ids():
    tok = train_tokenizer(MIXED_CORPUS[:50], vocab_size=400, special_tokens=["<|tool|>", EOS_TOKEN])
    assert tok.convert_tokens_to_ids("<|tool|>") == 12
    assert tok.eos_token_id == 2
    assert tok.decode(tok.encode("a<|tool|>b"), skip_special_tokens=True) == "ab"


# --- pre-tokenization boundaries ---------------------------------------------------------------------


def _char_class(char: str) -> str:
    name = unicodedata.name(char, "")
    category = unicodedata.category(char)
    if name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")):
        return "cjk"
    if category[0] in "LM":
        return "letter"
    if category[0] == "N":
        return "digit"
    if char.isspace():
        return "space"
    return "punct"


def _learned_token_texts(tok) -> list[str]:
    """Text of every learned (non-added) token; bytes of characters cut at token edges are dropped."""
    byte_decoder = {}
    for code, char in _byte_to_unicode().items():
        byte_decoder[char] = code
    added = set(tok.get_added_vocab())
    texts = []
    for token in tok.backend_tokenizer.get_vocab(with_added_tokens=False):
        if token in added:
            continue
        raw = bytes(byte_decoder[char] for char in token)
        texts.append(raw.decode("utf-8", errors="ignore"))
    return texts


def _byte_to_unicode() -> dict[int, str]:
    # The GPT-2 byte-level alphabet, rebuilt independently of the tokenizers library.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping = {code: chr(code) for code in printable}
    extra = 0
    for code in range(256):
        if code not in mapping:
            mapping[code] = chr(256 + extra)
            extra += 1
    return mapping


def test_merges_never_cross_script_or_punctuation(wenlm_rule_tokenizer):
    tok = wenlm_rule_tokenizer
    texts = _learned_token_texts(tok)
    multi_char = [text for text in texts if len(text) > 1]
    assert len(multi_char) > 100  # the check below must have material to look at
    for text in texts:
        # A single leading space may prefix a word or a punctuation run (GPT-2 style).
        body = text[1:] if text.startswith(" ") and len(text) > 1 else text
        classes = {_char_class(char) for char in body}
        assert len(classes) <= 1, f"token {text!r} crosses a pre-tokenization boundary: {classes}"
        if classes == {"digit"}:
            assert len(body) <= 3
    # The glued patterns were frequent, so the parts did become tokens on their own.
    tokens = tok.tokenize("模型model数据data。hello, world.")
    assert "model" in tokens and "data" in tokens and "hello" in tokens


def test_glued_text_is_split_at_script_boundaries(wenlm_rule_tokenizer):
    text = "我们model今天data。hello, world. 123456"
    encoding = wenlm_rule_tokenizer(text, return_offsets_mapping=True)
    boundaries = {2, 7, 9, 13, 14, 19, 20, 26, 27, 28, 31}
    for start, end in encoding["offset_mapping"]:
        assert not any(start < boundary < end for boundary in boundaries), (start, end, text[start:end])


def test_qwen2_rule_merges_stay_inside_its_pieces(plain_tokenizer):
    assert split_rule_of(plain_tokenizer) == "qwen2"
    split = pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated")
    texts = [text for text in _learned_token_texts(plain_tokenizer) if text]
    assert sum(len(text) > 1 for text in texts) > 100
    for text in texts:
        assert len(split.pre_tokenize_str(text)) == 1, f"token {text!r} crosses a qwen2 piece boundary"
    # Qwen2's rule: one digit per piece, a letter run (Han included) may carry one leading non-letter.
    pieces = [piece for piece, _ in plain_tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str("a 123")]
    assert pieces == ["a", "Ġ", "1", "2", "3"]


def test_split_rule_is_recorded_and_checked(wenlm_rule_tokenizer, tmp_path):
    wenlm_rule_tokenizer.save_pretrained(tmp_path)
    assert split_rule_of(AutoTokenizer.from_pretrained(tmp_path)) == "wenlm"
    with pytest.raises(ValueError, match="split_rule must be one of"):
        train_tokenizer(MIXED_CORPUS[:10], vocab_size=700, split_rule="gpt4")


def test_jieba_step_cuts_han_runs_into_words(jieba_tokenizer, plain_tokenizer):
    sentence = "我爱北京天安门"
    jieba_pieces = jieba_tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(sentence)
    plain_pieces = plain_tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(sentence)
    assert [offsets for _, offsets in plain_pieces] == [(0, 7)]
    assert [sentence[start:end] for _, (start, end) in jieba_pieces] == ["我", "爱", "北京", "天安门"]


def test_jieba_segmentation_preserves_every_character():
    tokenization_wenlm = pytest.importorskip("wenlm.tokenization.tokenization_wenlm")
    samples = [
        "中华人民共和国成立了",
        "𠀀𠀁龘\u9fffｶﾀｶﾅ漢字かな混じり문장",
        "a中b\u0301文c\x00　，。" * 3,
        "",
        _zh_sentence(random.Random(1)) * 5,
    ]
    for text in samples:
        spans = tokenization_wenlm.segment_han_runs(text)
        assert "".join(text[start:end] for start, end in spans) == text
        assert all(start < end for start, end in spans)
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))


# --- losslessness ------------------------------------------------------------------------------------

TRICKY_STRINGS = [
    "",
    " ",
    "  leading and trailing  ",
    "\x00\x01\x7f\x1b[31m",
    "line1\r\nline2\n\n\tTabbed\u2028",
    "e\u0301le\u0300ve naïve Ωμέγα",
    "👩‍👩‍👧‍👦🇨🇳👍🏽",
    "中文，English；日本語のテキスト，한국어 텍스트。",
    "数字1234567890和12,345.67",
    "\ufeffBOM\u200bzero width",
    "hello , world !  ?",
]


def test_roundtrip_tricky_strings(any_tokenizer):
    for text in TRICKY_STRINGS:
        ids = any_tokenizer.encode(text)
        assert any_tokenizer.decode(ids) == text
    assert any_tokenizer.encode("") == []


def test_decode_does_not_touch_spaces_around_punctuation(any_tokenizer):
    assert any_tokenizer.clean_up_tokenization_spaces is False
    text = "Hello , world ! It 's a test ."
    assert any_tokenizer.decode(any_tokenizer.encode(text)) == text


def test_literal_special_token_text_becomes_the_special_token(any_tokenizer):
    """Documented behaviour: special-token strings in text are parsed as the token; decoding is still exact,
    and split_special_tokens=True encodes them as ordinary text."""
    tok = any_tokenizer
    text = "before<|eos|>after"
    ids = tok.encode(text)
    assert tok.eos_token_id in ids
    assert tok.decode(ids) == text
    escaped = tok.encode(text, split_special_tokens=True)
    assert tok.eos_token_id not in escaped
    assert tok.decode(escaped) == text


_fragments = st.sampled_from(
    ["<|eos|>", "<|email|>", "<|", "|>", "中文", " the", "\r\n", "\x00", "😀", "\u0301", "123456", "，"]
)
_any_text = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(_fragments, st.text(max_size=5)), max_size=12).map("".join),
)


@settings(max_examples=200, deadline=None, database=None)
@given(text=_any_text)
def test_roundtrip_property_plain(plain_tokenizer, wenlm_rule_tokenizer, text):
    for tokenizer in (plain_tokenizer, wenlm_rule_tokenizer):  # both split rules
        assert tokenizer.decode(tokenizer.encode(text)) == text


@settings(max_examples=200, deadline=None, database=None)
@given(text=_any_text)
def test_roundtrip_property_jieba(jieba_tokenizer, text):
    assert jieba_tokenizer.decode(jieba_tokenizer.encode(text)) == text


# --- compression and stats ---------------------------------------------------------------------------


def test_chinese_compresses_well_below_utf8_bytes():
    rng = random.Random(7)
    corpus = [_zh_sentence(rng) for _ in range(300)]  # ~ 12 KB of Chinese
    tok = train_tokenizer(corpus, vocab_size=600)
    held_out = [_zh_sentence(random.Random(99)) for _ in range(50)]
    stats = tokenizer_stats(tok, held_out)
    assert stats["bytes"] == sum(len(text.encode("utf-8")) for text in held_out)
    assert stats["tokens"] == sum(len(tok.encode(text)) for text in held_out)
    assert stats["bytes_per_token"] >= 2.0
    assert stats["chars_per_token"] == pytest.approx(stats["chars"] / stats["tokens"])


def test_tokenizer_stats_rejects_bad_input(plain_tokenizer):
    with pytest.raises(ValueError, match="no tokens"):
        tokenizer_stats(plain_tokenizer, [""])
    with pytest.raises(TypeError, match="item 1"):
        tokenizer_stats(plain_tokenizer, ["ok", 3])


# --- chat template -----------------------------------------------------------------------------------

CONVERSATION = [
    {"role": "system", "content": "你是助手。"},
    {"role": "user", "content": "Hi, 你好"},
    {"role": "assistant", "content": "你好！How can I help?"},
    {"role": "user", "content": "谢谢"},
    {"role": "assistant", "content": "不客气。"},
]


def test_chat_template_rendering(any_tokenizer):
    rendered = any_tokenizer.apply_chat_template(
        CONVERSATION[:3], tokenize=False, add_generation_prompt=False
    )
    assert rendered == (
        "<|system|>\n你是助手。<|end|>\n<|user|>\nHi, 你好<|end|>\n<|assistant|>\n你好！How can I help?<|end|>\n"
    )
    prompt = any_tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|user|>\nHi, 你好<|end|>\n<|assistant|>\n")
    with pytest.raises(Exception, match="roles are system, user and assistant"):
        any_tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_assistant_tokens_mask_covers_answers_and_end(any_tokenizer):
    tok = any_tokenizer
    out = tok.apply_chat_template(CONVERSATION, return_assistant_tokens_mask=True, return_dict=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(ids) == len(mask)
    masked_text = tok.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert masked_text == "你好！How can I help?<|end|>不客气。<|end|>"
    assert ids[0] == SPECIAL_TOKEN_IDS["system"]
    assert ids.count(SPECIAL_TOKEN_IDS["end"]) == 5
    # Role headers never count as assistant output.
    assert all(m == 0 for i, m in zip(ids, mask, strict=True) if i == SPECIAL_TOKEN_IDS["assistant"])


# --- saving and loading ------------------------------------------------------------------------------

_LOADER = """
import sys
sys.path.append({purelib!r})  # site-packages without .pth files: the editable wenlm install is invisible
import json
from transformers import AutoTokenizer
texts = json.loads({texts!r})
results = {{}}
for kind, folder, trust in json.loads({jobs!r}):
    tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust)
    msgs = [{{"role": "user", "content": "你好"}}, {{"role": "assistant", "content": "Hi!"}}]
    chat = tok.apply_chat_template(msgs, return_assistant_tokens_mask=True, return_dict=True)
    pieces = tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str("我爱北京天安门")
    tok.save_pretrained(folder + "_resaved")
    results[kind] = {{
        "class": type(tok).__name__,
        "ids": [tok.encode(t) for t in texts],
        "roundtrip": [tok.decode(tok.encode(t)) == t for t in texts],
        "special": [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id],
        "max_len": tok.model_max_length,
        "mask": chat["assistant_masks"],
        "pieces": [offsets for _, offsets in pieces],
    }}
print(json.dumps(results))
"""

LOAD_TEXTS = ["我爱北京天安门，hello world!", "中华人民共和国 <|email|> 12345", "e\u0301 \x00 😀"]


@pytest.fixture(scope="module")
def loaded_elsewhere(request, plain_tokenizer, tmp_path_factory):
    """Save the tokenizers, then load them with AutoTokenizer in one process where wenlm is not importable
    (one process for both: importing transformers dominates the cost)."""
    root = tmp_path_factory.mktemp("clean_load")
    jobs = [("plain", str(root / "plain"), False)]
    plain_tokenizer.save_pretrained(root / "plain")
    if importlib.util.find_spec("jieba") is not None:
        request.getfixturevalue("jieba_tokenizer").save_pretrained(root / "jieba")
        jobs.append(("jieba", str(root / "jieba"), True))
    code = HIDE_WENLM + _LOADER.format(
        purelib=sysconfig.get_paths()["purelib"], texts=json.dumps(LOAD_TEXTS), jobs=json.dumps(jobs)
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(root / "hf_modules"),  # where transformers copies remote code
        "HOME": str(root),
    }
    # -I: ignore PYTHON* env and the cwd; -S: skip site, so the editable-install .pth never runs.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_plain_tokenizer_loads_without_wenlm_or_remote_code(plain_tokenizer, loaded_elsewhere):
    root, results = loaded_elsewhere
    config = json.loads((root / "plain" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert "auto_map" not in config
    assert not (root / "plain" / "tokenization_wenlm.py").exists()
    loaded = results["plain"]
    assert loaded["ids"] == [plain_tokenizer.encode(text) for text in LOAD_TEXTS]
    assert all(loaded["roundtrip"])
    assert loaded["special"] == [0, 1, 2]
    assert loaded["max_len"] == 2048
    expected_mask = plain_tokenizer.apply_chat_template(
        [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "Hi!"}],
        return_assistant_tokens_mask=True,
        return_dict=True,
    )["assistant_masks"]
    assert loaded["mask"] == expected_mask and 1 in expected_mask
    assert loaded["pieces"] == [[0, 7]]


def test_jieba_tokenizer_loads_as_remote_code_without_wenlm(jieba_tokenizer, loaded_elsewhere):
    root, results = loaded_elsewhere
    folder = root / "jieba"
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["auto_map"] == {"AutoTokenizer": [None, "tokenization_wenlm.WenLMJiebaTokenizerFast"]}
    remote_code = (folder / "tokenization_wenlm.py").read_text(encoding="utf-8")
    assert "import wenlm" not in remote_code and "from wenlm" not in remote_code
    # The in-memory jieba step must not leak into (or break) the saved file.
    assert "Custom" not in (folder / "tokenizer.json").read_text(encoding="utf-8")
    loaded = results["jieba"]
    assert loaded["class"] == "WenLMJiebaTokenizerFast"
    assert loaded["ids"] == [jieba_tokenizer.encode(text) for text in LOAD_TEXTS]
    assert all(loaded["roundtrip"])
    assert loaded["special"] == [0, 1, 2]
    assert loaded["pieces"] == [[0, 1], [1, 2], [2, 4], [4, 7]]  # jieba re-installed on load
    # The loaded remote-code tokenizer saves again: same pipeline, its code and auto_map carried along.
    resaved = root / "jieba_resaved"
    assert (resaved / "tokenizer.json").read_text(encoding="utf-8") == (folder / "tokenizer.json").read_text(
        encoding="utf-8"
    )
    assert (resaved / "tokenization_wenlm.py").read_text(encoding="utf-8") == remote_code
    assert (
        json.loads((resaved / "tokenizer_config.json").read_text(encoding="utf-8"))["auto_map"]
        == config["auto_map"]
    )


def test_jieba_tokenizer_from_pretrained_in_process(jieba_tokenizer, loaded_elsewhere):
    from wenlm.tokenization.tokenization_wenlm import (
        WenLMJiebaTokenizerFast,  # imports jieba, an optional dependency
    )

    reloaded = WenLMJiebaTokenizerFast.from_pretrained(loaded_elsewhere[0] / "jieba")
    assert [reloaded.encode(text) for text in LOAD_TEXTS] == [
        jieba_tokenizer.encode(text) for text in LOAD_TEXTS
    ]
    assert reloaded.decode(reloaded.encode(LOAD_TEXTS[0])) == LOAD_TEXTS[0]


def test_jieba_tokenizer_pickles(jieba_tokenizer):
    # datasets.map fingerprints and worker processes pickle the tokenizer.
    clone = pickle.loads(pickle.dumps(jieba_tokenizer))
    text = "我爱北京天安门 and 中华人民共和国"
    assert clone.encode(text) == jieba_tokenizer.encode(text)
    pieces = clone.backend_tokenizer.pre_tokenizer.pre_tokenize_str("北京天安门")
    assert [offsets for _, offsets in pieces] == [(0, 2), (2, 5)]


# --- sources and validation --------------------------------------------------------------------------


def test_train_from_files_and_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    path_a = tmp_path / "a.txt"
    path_b = tmp_path / "b.txt"
    path_a.write_text("".join(MIXED_CORPUS[:200]), encoding="utf-8")
    path_b.write_text("".join(MIXED_CORPUS[200:]), encoding="utf-8")
    from_files = train_tokenizer([str(path_a), path_b], vocab_size=500, batch_size=7)
    from_texts = train_tokenizer(iter(MIXED_CORPUS), vocab_size=500)
    dataset = datasets.Dataset.from_dict({"body": MIXED_CORPUS, "n": list(range(len(MIXED_CORPUS)))})
    from_dataset = train_tokenizer(dataset, vocab_size=500, text_column="body", batch_size=64)
    streamed = train_tokenizer(dataset.to_iterable_dataset(), vocab_size=500, text_column="body")
    sample = "我们今天model数据。hello, world."
    assert from_files.encode(sample) == from_texts.encode(sample)
    assert from_dataset.encode(sample) == from_texts.encode(sample)
    assert streamed.encode(sample) == from_texts.encode(sample)


def test_validation_errors(tmp_path):
    with pytest.raises(ValueError, match=r"vocab_size=200 .*byte alphabet"):
        train_tokenizer(MIXED_CORPUS, vocab_size=200)
    with pytest.raises(ValueError, match="no text"):
        train_tokenizer([], vocab_size=500)
    with pytest.raises(ValueError, match="no text"):
        train_tokenizer(iter(["", ""]), vocab_size=500)
    missing = tmp_path / "missing_corpus.txt"
    with pytest.raises(FileNotFoundError, match="missing_corpus.txt"):
        train_tokenizer([str(missing)], vocab_size=500)
    with pytest.raises(FileNotFoundError, match="missing_corpus.txt"):
        train_tokenizer(missing, vocab_size=500)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt.*not valid UTF-8 \(line 2,"):
        train_tokenizer([bad], vocab_size=500)
    with pytest.raises(TypeError, match="item 1"):
        train_tokenizer(iter(["text", 5]), vocab_size=500)
    with pytest.raises(ValueError, match="min_frequency"):
        train_tokenizer(MIXED_CORPUS, min_frequency=-1)
    with pytest.raises(ValueError, match="PII placeholder"):
        train_tokenizer(MIXED_CORPUS, special_tokens=["<|email|>"])


def test_dataset_missing_column_is_named():
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_dict({"content": ["你好"]})
    with pytest.raises(ValueError, match=r"no column 'text' .*\['content'\]"):
        train_tokenizer(dataset, vocab_size=500)


def test_missing_jieba_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "jieba", None)  # makes `import jieba` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'wenlm\[zh\]'"):
        train_tokenizer(MIXED_CORPUS, vocab_size=500, use_jieba=True)


def test_data_pipeline_tokenizes_with_jieba_exactly_as_the_tokenizer_does(jieba_tokenizer, tmp_path):
    # The pipeline calls the Rust backend from a worker thread and joins short documents with the EOS token;
    # jieba is a Python pre-tokenizer inside that backend, so check every document's ids, not just a sample.
    documents = [line for text in MIXED_CORPUS for line in text.splitlines() if line.strip()] * 3
    documents = [f"{line} {index}" for index, line in enumerate(documents)]
    expected = []
    for text in documents:
        expected += jieba_tokenizer(text, add_special_tokens=False)["input_ids"] + [
            jieba_tokenizer.eos_token_id
        ]
    stats = {}
    packed = tokenize_and_pack(
        datasets.Dataset.from_dict({"text": documents}),
        jieba_tokenizer,
        block_size=8,
        cache_dir=tmp_path,
        stats=stats,
    )
    flat = [token for block in packed["input_ids"] for token in block]
    assert stats["tokens"] == len(expected)
    assert flat == expected[: len(flat)] and len(expected) - len(flat) < 8
