import bz2
import gzip
import json
import lzma
import sys
import types

import datasets
import numpy as np
import pytest
import zstandard
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import HfArgumentParser, PreTrainedTokenizerFast

from wenlm.tokenization import PII_PLACEHOLDERS, train_tokenizer
from wenlm.training.args import DataArguments
from wenlm.training.corpus import grammar as builtin_corpus
from wenlm.training.data import cache, packing, sources
from wenlm.training.data.packing import count_bytes, token_byte_lengths, tokenize_and_pack
from wenlm.training.data.pipeline import prepare_datasets
from wenlm.training.data.sources import read_txt_documents, resolve_sources
from wenlm.training.data.splitting import split_by_document

SAMPLE_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time, there was a little robot who loved to read books.",
    "今天天气很好，我们去公园散步吧。",
    "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。",
    "Numbers like 42 and 3.14 appear in text; so do emojis 🙂 and accents: café, naïve.",
    "A long story about a cat who wanted to fly. The cat climbed trees every day.",
]


def _train_tokenizer(texts, vocab_size=400):
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|pad|>", "<|unk|>", "<|eos|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|eos|>", pad_token="<|pad|>")


@pytest.fixture(scope="session")
def tokenizer():
    tok = _train_tokenizer(SAMPLE_TEXTS * 3)
    assert tok.eos_token_id == 2
    return tok


def make_args(tmp_path, train_files, **overrides):
    settings = {"cache_dir": str(tmp_path / "cache"), "block_size": 8, "validation_split": 1}
    settings.update(overrides)
    return DataArguments(train_files=[str(f) for f in train_files], **settings)


def stories(count, prefix="story"):
    return [
        f"{prefix} {i}: the little fox number {i} ran into the woods and found {i * 7} shiny stones."
        for i in range(count)
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def all_texts(prepared):
    return list(prepared.train_text["text"]) + list(prepared.validation_text["text"])


# ------------------------------------------------------------------------------------------ arguments


def test_data_arguments_parse_with_hf_argument_parser():
    parser = HfArgumentParser(DataArguments)
    (args,) = parser.parse_args_into_dataclasses(
        [
            "--train_files",
            "a.txt",
            "hub:org/name:cfg",
            "--validation_split",
            "3",
            "--scrub_pii",
            "--block_size",
            "64",
        ],
        look_for_args_file=False,
    )
    assert args.train_files == ["a.txt", "hub:org/name:cfg"]
    assert args.validation_split == 3
    assert args.scrub_pii is True and args.dedup is True
    assert args.block_size == 64
    assert args.max_validation_docs is None and args.cache_dir is None


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"txt_document_mode": "para"}, "txt_document_mode"),
        ({"block_size": 1}, "block_size"),
        ({"validation_split": 0}, "validation_split"),
        ({"validation_split": 2.5}, "whole number"),
    ],
)
def test_data_arguments_reject_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        DataArguments(**overrides)


# -------------------------------------------------------------------------------------------- readers


def test_txt_block_mode_splits_on_blank_and_whitespace_lines_and_any_line_ending(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_bytes(b"first doc line 1\r\nline 2\r\n\r\nsecond\n   \nthird a\rthird b\r\rfourth\n")
    assert list(read_txt_documents(str(path), "block")) == [
        "first doc line 1\nline 2",
        "second",
        "third a\nthird b",
        "fourth",
    ]
    assert list(read_txt_documents(str(path), "line")) == [
        "first doc line 1",
        "line 2",
        "second",
        "third a",
        "third b",
        "fourth",
    ]


def test_txt_separator_lines_split_documents_and_keep_paragraphs(tmp_path):
    path = tmp_path / "stories.txt"
    path.write_text("Para one.\n\nPara two.\n<|endoftext|>\nNext story.\n<|endoftext|>\n", encoding="utf-8")
    assert list(read_txt_documents(str(path), "block", "<|endoftext|>")) == [
        "Para one.\n\nPara two.",
        "Next story.",
    ]


def test_resolve_sources_directory_glob_hub_and_builtin(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.txt", "a.jsonl", "sub/c.csv", "notes.md", ".hidden.txt"):
        (tmp_path / name).write_text("x\n")
    directory, pattern, hub, hub_cfg, builtin, builtin_n = resolve_sources(
        [str(tmp_path), str(tmp_path / "*.txt"), "hub:org/ds", "hub:org/ds:zh", "builtin", "builtin:12"]
    )
    assert directory.files == [
        str(tmp_path / "a.jsonl"),
        str(tmp_path / "b.txt"),
        str(tmp_path / "sub" / "c.csv"),
    ]
    assert pattern.files == [str(tmp_path / "b.txt")]
    assert (hub.hub_name, hub.hub_config) == ("org/ds", None)
    assert (hub_cfg.hub_name, hub_cfg.hub_config) == ("org/ds", "zh")
    assert builtin.builtin_docs == sources.DEFAULT_BUILTIN_DOCS and builtin_n.builtin_docs == 12


def test_missing_sources_and_unsupported_types_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        resolve_sources([str(tmp_path / "nope.txt")])
    with pytest.raises(FileNotFoundError, match=r"\*\.jsonl.*matches no files"):
        resolve_sources([str(tmp_path / "*.jsonl")])
    (tmp_path / "data.xml").write_text("<a/>")
    with pytest.raises(ValueError, match=r"data\.xml.*\.csv, \.json, \.jsonl, \.parquet, \.txt"):
        resolve_sources([str(tmp_path / "data.xml")])
    with pytest.raises(ValueError, match="builtin:N"):
        resolve_sources(["builtin:many"])
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no supported files"):
        resolve_sources([str(empty)])


# ------------------------------------------------------------------------------------- UTF-8 handling


def test_invalid_utf8_is_replaced_and_counted(tmp_path, tokenizer):
    path = tmp_path / "broken.txt"
    good = "\n\n".join(stories(6)).encode()
    path.write_bytes(b"bad \xff\xfe bytes and a cut \xe4\xb8 char here\n\n" + good + b"\n")
    prepared = prepare_datasets(make_args(tmp_path, [path]), tokenizer=tokenizer)
    assert prepared.report["invalid_utf8_bytes"] == 4
    assert prepared.report["invalid_utf8_by_file"] == {str(path): 4}
    texts = all_texts(prepared)
    assert "bad \ufffd\ufffd bytes and a cut \ufffd\ufffd char here" in texts


def test_strict_utf8_names_file_and_byte_offset(tmp_path, tokenizer):
    path = tmp_path / "broken.txt"
    path.write_bytes(b"line one\nabc\xffdef\n")
    with pytest.raises(ValueError, match=r"broken\.txt: invalid UTF-8 at byte offset 12"):
        prepare_datasets(make_args(tmp_path, [path], strict_utf8=True), tokenizer=tokenizer)


def test_invalid_utf8_in_jsonl_is_repaired_without_touching_the_original(tmp_path, tokenizer):
    path = tmp_path / "broken.jsonl"
    rows = b"".join(json.dumps({"text": s}).encode() + b"\n" for s in stories(6))
    original = b'{"text": "caf\xe9 au lait"}\n' + rows
    path.write_bytes(original)
    prepared = prepare_datasets(make_args(tmp_path, [path]), tokenizer=tokenizer)
    assert prepared.report["invalid_utf8_bytes"] == 1
    assert "caf\ufffd au lait" in all_texts(prepared)
    assert path.read_bytes() == original


# ------------------------------------------------------------------------------------ formats + columns


def test_csv_with_custom_column_parquet_and_mixed_sources_concatenate(tmp_path, tokenizer):
    csv_path = tmp_path / "data.csv"
    csv_texts = stories(3, "csv")
    csv_path.write_text(
        "id,body\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(csv_texts)), encoding="utf-8"
    )
    parquet_path = tmp_path / "data.parquet"
    parquet_texts = stories(3, "parquet")
    datasets.Dataset.from_dict({"body": parquet_texts, "n": [1, 2, 3]}).to_parquet(str(parquet_path))
    jsonl_path = write_jsonl(tmp_path / "data.jsonl", [{"body": t, "meta": 1} for t in stories(3, "jsonl")])
    args = make_args(tmp_path, [csv_path, parquet_path, jsonl_path], text_column="body", validation_split=2)
    prepared = prepare_datasets(args, tokenizer=tokenizer)
    assert sorted(all_texts(prepared)) == sorted(csv_texts + parquet_texts + stories(3, "jsonl"))
    assert prepared.train_text.column_names == ["text"]
    assert prepared.report["documents"] == {"train": 7, "validation": 2}


@pytest.mark.parametrize("streaming", [False, True])
def test_csv_text_column_keeps_the_exact_strings(tmp_path, tokenizer, streaming):
    # pandas would type these cells: "007" -> 7, "1e3" -> 1000.0, "NA" -> missing.
    cells = ["007", "1e3", "NA", "3.10", "-0", "True", "0x1F", "1,000"]
    csv_path = tmp_path / "numbers.csv"
    csv_path.write_text(
        "id,text\n" + "".join(f'{i},"{cell}"\n' for i, cell in enumerate(cells)), encoding="utf-8"
    )
    raw = sources.load_source(
        resolve_sources([str(csv_path)])[0],
        make_args(tmp_path, [csv_path], streaming=streaming),
        tmp_path,
        {},
    )[0]
    assert [example["text"] for example in raw] == cells


def test_forced_binary_file_is_read_with_replacement_characters(tmp_path, tokenizer):
    image = tmp_path / "picture.txt"
    image.write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00" + b"\n\n".join(b"chunk %d \xff\xfe" % i for i in range(40))
    )
    with pytest.raises(
        ValueError, match=r"picture\.txt does not look like UTF-8 text.*--allow_binary_files true"
    ):
        prepare_datasets(make_args(tmp_path, [image]), tokenizer=tokenizer)
    prepared = prepare_datasets(make_args(tmp_path, [image], allow_binary_files=True), tokenizer=tokenizer)
    assert prepared.report["invalid_utf8_by_file"][str(image)] > 80
    assert "\ufffd" in all_texts(prepared)[0]


def test_missing_text_column_names_file_columns_and_option(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "data.jsonl", [{"content": "hello", "id": 1}])
    with pytest.raises(
        ValueError, match=r"data\.jsonl has no column 'text' \(columns: content, id\).*--text_column"
    ):
        prepare_datasets(make_args(tmp_path, [path]), tokenizer=tokenizer)


def test_directory_source_reads_all_supported_files(tmp_path, tokenizer):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text("\n\n".join(stories(3, "txt")), encoding="utf-8")
    write_jsonl(folder / "b.jsonl", [{"text": t} for t in stories(3, "json")])
    prepared = prepare_datasets(make_args(tmp_path, [folder]), tokenizer=tokenizer)
    assert sorted(all_texts(prepared)) == sorted(stories(3, "txt") + stories(3, "json"))


# ------------------------------------------------------------------------------------------- cleaning


def test_cleaning_steps_are_counted(tmp_path, tokenizer):
    docs = stories(5)
    rows = [
        {"text": "  " + docs[0] + "\r\n"},  # strip + CRLF
        {"text": docs[1].replace(" ran ", " ran\r\n")},  # CRLF inside: 1 char removed
        {"text": docs[0]},  # duplicate after normalisation
        {"text": "tiny"},  # below min_doc_chars
        {"text": "   "},  # empty after stripping
        {"text": ""},  # empty (a null text is refused: see test_bad_input.py)
        {"text": docs[2]},
        {"text": docs[3]},
        {"text": docs[4]},
    ]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    prepared = prepare_datasets(make_args(tmp_path, [path], min_doc_chars=10), tokenizer=tokenizer)
    steps = prepared.report["cleaning"]
    raw_chars = sum(len(r["text"] or "") for r in rows)
    clean_chars = [
        len(docs[0]),
        len(docs[1]),
        len(docs[0]),
        4,
        0,
        0,
        len(docs[2]),
        len(docs[3]),
        len(docs[4]),
    ]
    assert steps["normalize"] == {
        "documents_in": 9,
        "documents_out": 9,
        "chars_in": raw_chars,
        "chars_out": sum(clean_chars),
    }
    assert steps["min_doc_chars"]["documents_out"] == 6
    assert steps["min_doc_chars"]["chars_out"] == sum(clean_chars) - 4
    assert steps["dedup"]["documents_in"] == 6 and steps["dedup"]["documents_out"] == 5
    assert steps["dedup"]["chars_out"] == sum(len(d) for d in docs)  # the inner CRLF became one "\n"
    assert steps["pii"]["documents_out"] == 5
    expected_docs = [docs[0], docs[1].replace(" ran ", " ran\n"), docs[2], docs[3], docs[4]]
    assert sorted(all_texts(prepared)) == sorted(expected_docs)


def test_dedup_can_be_disabled(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": t} for t in stories(3) + stories(3)])
    prepared = prepare_datasets(make_args(tmp_path, [path], dedup=False), tokenizer=tokenizer)
    assert len(all_texts(prepared)) == 6
    assert prepared.report["cleaning"]["dedup"]["documents_out"] == 6


def test_pii_scrubbing_in_pipeline_is_counted(tmp_path, tokenizer):
    docs = stories(4) + ["Contact me at a.b@example.com or 13812345678, server 10.1.2.3."]
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": t} for t in docs])
    prepared = prepare_datasets(make_args(tmp_path, [path], scrub_pii=True), tokenizer=tokenizer)
    assert prepared.report["pii"] == {"email": 1, "phone": 1, "id_number": 0, "ip": 1, "card": 0}
    assert "Contact me at <|email|> or <|phone|>, server <|ip|>." in all_texts(prepared)
    step = prepared.report["cleaning"]["pii"]
    assert step["chars_in"] - step["chars_out"] == len("a.b@example.com13812345678 10.1.2.3") - len(
        "<|email|><|phone|> <|ip|>"
    )


def test_pii_scrubbing_with_two_processes_gives_the_same_data(tmp_path, tokenizer):
    docs = [f"{text} mail{i}@example.com" for i, text in enumerate(stories(40))]
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": t} for t in docs])
    one = prepare_datasets(make_args(tmp_path / "one", [path], scrub_pii=True), tokenizer=tokenizer)
    two = prepare_datasets(
        make_args(tmp_path / "two", [path], scrub_pii=True, num_proc=2), tokenizer=tokenizer
    )
    assert one.report["pii"]["email"] == two.report["pii"]["email"] == 40
    assert all_texts(one) == all_texts(two)
    assert one.train["input_ids"] == two.train["input_ids"]


def test_empty_corpus_after_cleaning_is_an_error(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "  "}, {"text": "ab"}])
    with pytest.raises(
        ValueError, match=r"empty after cleaning: 2 documents read, 2 shorter than min_doc_chars=5"
    ):
        prepare_datasets(make_args(tmp_path, [path], min_doc_chars=5), tokenizer=tokenizer)


def test_corpus_smaller_than_one_block_is_an_error(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a b"}, {"text": "c d"}, {"text": "e f"}])
    with pytest.raises(
        ValueError, match=r"training data has \d+ tokens, less than one block of block_size=512.*--block_size"
    ):
        prepare_datasets(make_args(tmp_path, [path], block_size=512), tokenizer=tokenizer)


# ------------------------------------------------------------------------------------------ splitting


def test_split_by_document_is_deterministic_disjoint_and_complete():
    dataset = datasets.Dataset.from_dict({"text": [f"doc {i}" for i in range(40)]})
    train, validation = split_by_document(dataset, 0.1, seed=3)
    again_train, again_validation = split_by_document(dataset, 0.1, seed=3)
    other_train, other_validation = split_by_document(dataset, 0.1, seed=4)
    assert len(validation) == 4 and len(train) == 36
    assert list(validation["text"]) == list(again_validation["text"])
    assert list(validation["text"]) != list(other_validation["text"])
    assert sorted(list(train["text"]) + list(validation["text"])) == sorted(dataset["text"])
    assert list(train["text"]) == sorted(train["text"], key=lambda t: int(t.split()[1]))  # corpus order kept
    assert len(split_by_document(dataset, 5, seed=0)[1]) == 5
    assert len(split_by_document(dataset, 0.5, seed=0, max_validation_docs=3)[1]) == 3


def test_split_by_document_errors_when_a_part_would_be_empty():
    dataset = datasets.Dataset.from_dict({"text": [f"doc {i}" for i in range(5)]})
    with pytest.raises(ValueError, match="empty validation set"):
        split_by_document(dataset, 0.05, seed=0)
    with pytest.raises(ValueError, match="leave none for training"):
        split_by_document(dataset, 5, seed=0)


def test_streaming_split_is_deterministic_and_capped():
    dataset = datasets.Dataset.from_dict({"text": [f"doc {i}" for i in range(200)]}).to_iterable_dataset()
    train, validation = split_by_document(dataset, 0.2, seed=1)
    val_texts = [ex["text"] for ex in validation]
    train_texts = [ex["text"] for ex in train]
    assert 10 < len(val_texts) < 70
    assert sorted(val_texts + train_texts) == sorted(f"doc {i}" for i in range(200))
    assert val_texts == [ex["text"] for ex in validation]
    _, capped = split_by_document(dataset, 0.2, seed=1, max_validation_docs=5)
    assert [ex["text"] for ex in capped] == val_texts[:5]
    _, first = split_by_document(dataset, 3, seed=1)
    assert [ex["text"] for ex in first] == ["doc 0", "doc 1", "doc 2"]


# ------------------------------------------------------------------------------ tokenization + packing


def _expected_stream(texts, tokenizer):
    ids = []
    for text in texts:
        ids += tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        ids += [tokenizer.eos_token_id]
    return ids


def test_tokenize_and_pack_makes_exact_blocks_and_counts_remainder(tmp_path, tokenizer):
    texts = SAMPLE_TEXTS
    dataset = datasets.Dataset.from_dict({"text": texts})
    stats = {}
    packed = tokenize_and_pack(dataset, tokenizer, block_size=16, cache_dir=tmp_path, stats=stats)
    expected = _expected_stream(texts, tokenizer)
    blocks = packed["input_ids"]
    assert all(len(block) == 16 for block in blocks)
    assert len(blocks) == len(expected) // 16
    assert [t for block in blocks for t in block] == expected[: len(blocks) * 16]
    assert stats == {
        "documents": len(texts),
        "tokens": len(expected),
        "blocks": len(blocks),
        "dropped_remainder_tokens": len(expected) % 16,
        "special_token_strings_in_text": 0,
    }
    assert expected.count(tokenizer.eos_token_id) == len(texts)


def test_packing_spans_tokenizer_batches(tmp_path, tokenizer, monkeypatch):
    monkeypatch.setattr(cache, "ARROW_BATCH_ROWS", 1000)
    texts = [SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)] + f" #{i}" for i in range(2500)]
    dataset = datasets.Dataset.from_dict({"text": texts})
    stats = {}
    packed = tokenize_and_pack(dataset, tokenizer, block_size=64, cache_dir=tmp_path, stats=stats)
    expected = _expected_stream(texts, tokenizer)
    # Only the final remainder is dropped, even though the documents were tokenized in 3 batches.
    assert stats["dropped_remainder_tokens"] == len(expected) % 64
    flat = np.asarray(packed.with_format("numpy")["input_ids"]).reshape(-1)
    assert flat.tolist() == expected[: len(flat)]


def test_second_pack_is_served_from_cache_without_tokenizing(tmp_path, tokenizer, monkeypatch):
    dataset = datasets.Dataset.from_dict({"text": SAMPLE_TEXTS})
    calls = []
    original_encode = packing._encode_documents

    def counting_encode(*args, **kwargs):
        calls.append(1)
        return original_encode(*args, **kwargs)

    monkeypatch.setattr(packing, "_encode_documents", counting_encode)
    first_stats, second_stats = {}, {}
    first = tokenize_and_pack(dataset, tokenizer, block_size=8, cache_dir=tmp_path, stats=first_stats)
    assert len(calls) == 1
    cache_file = first.cache_files[0]["filename"]
    with open(cache_file, "rb") as handle:
        first_bytes = handle.read()
    second = tokenize_and_pack(dataset, tokenizer, block_size=8, cache_dir=tmp_path, stats=second_stats)
    assert len(calls) == 1  # not tokenized again
    assert second.cache_files[0]["filename"] == cache_file
    assert second["input_ids"] == first["input_ids"] and second_stats == first_stats
    with open(cache_file, "rb") as handle:
        assert handle.read() == first_bytes
    # Another block size re-packs (a new file) but reuses the cached per-document tokenization.
    repacked = tokenize_and_pack(dataset, tokenizer, block_size=9, cache_dir=tmp_path)
    assert len(calls) == 1
    assert repacked.cache_files[0]["filename"] != cache_file
    assert {len(block) for block in repacked["input_ids"]} == {9}
    # Another tokenizer is a different cache entry and tokenizes again.
    other_tokenizer = _train_tokenizer(SAMPLE_TEXTS, vocab_size=300)
    tokenize_and_pack(dataset, other_tokenizer, block_size=8, cache_dir=tmp_path)
    assert len(calls) == 2


def test_streaming_packing_yields_the_same_blocks(tmp_path, tokenizer):
    texts = [SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)] + f" #{i}" for i in range(1200)]
    dataset = datasets.Dataset.from_dict({"text": texts})
    packed = tokenize_and_pack(dataset, tokenizer, block_size=32, cache_dir=tmp_path)
    stream_stats = {}
    streamed = tokenize_and_pack(dataset.to_iterable_dataset(), tokenizer, block_size=32, stats=stream_stats)
    assert isinstance(streamed, datasets.IterableDataset)
    assert [ex["input_ids"] for ex in streamed] == packed["input_ids"]
    assert stream_stats["dropped_remainder_tokens"] == len(_expected_stream(texts, tokenizer)) % 32
    assert stream_stats["documents"] == len(texts)


JOIN_TEST_TEXTS = SAMPLE_TEXTS + [
    "",
    "  leading and trailing spaces  ",
    "line one\n\nline two after a blank line",
    "春眠不觉晓 " * 3000,  # longer than one joined run
    "x",
]


def _encode_alone(tokenizer, texts):
    ids = [
        tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        + [tokenizer.eos_token_id]
        for text in texts
    ]
    return [t for row in ids for t in row], [len(row) for row in ids]


def test_joined_encoding_equals_encoding_each_document(tokenizer, monkeypatch):
    joined_calls = []
    original = packing._encode_joined

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        joined_calls.append(result is not None)
        return result

    monkeypatch.setattr(packing, "_encode_joined", recording)
    monkeypatch.setattr(packing, "_JOINED_BELOW_MEAN_CHARS", 10**9)  # join even the long document
    flat, lengths, _ = packing._encode_documents(tokenizer, JOIN_TEST_TEXTS, tokenizer.eos_token_id)
    assert joined_calls == [True]  # the fast path was taken, and it must still give the per-document result
    expected_flat, expected_lengths = _encode_alone(tokenizer, JOIN_TEST_TEXTS)
    assert flat.tolist() == expected_flat and lengths.tolist() == expected_lengths


def test_document_containing_the_eos_text_is_encoded_as_text_per_document(tokenizer, monkeypatch):
    assert all(len(text) < packing._JOINED_BELOW_MEAN_CHARS for text in SAMPLE_TEXTS)  # short: joined path
    joined_calls = []
    monkeypatch.setattr(packing, "_encode_joined", lambda *args: joined_calls.append(1))
    texts = ["first document", "a document that mentions <|eos|> in its text", "last"]
    flat, lengths, special_docs = packing._encode_documents(tokenizer, texts, tokenizer.eos_token_id)
    expected_flat, expected_lengths = _encode_alone(tokenizer, texts)
    assert flat.tolist() == expected_flat and lengths.tolist() == expected_lengths
    assert joined_calls == []  # joining by the EOS string would turn the mentioned EOS into a control id
    assert special_docs == 1
    assert expected_flat.count(tokenizer.eos_token_id) == 3  # one per document: the mentioned EOS stays text
    assert tokenizer.decode(flat[: lengths[0] + lengths[1]]).count("<|eos|>") == 3  # its characters are kept


def test_tokenizers_where_joining_differs_are_encoded_per_document():
    # A Metaspace pre-tokenizer that marks only the start of a string: joining would drop the marker of every
    # later document, which the check on the first documents catches.
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<eos>"], show_progress=False)
    backend.train_from_iterator(stories(50), trainer)
    metaspace = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<pad>")
    # An EOS that swallows neighbouring spaces is never joined.
    stripping = _train_tokenizer(SAMPLE_TEXTS)
    stripping.backend_tokenizer.add_special_tokens(
        [AddedToken("<|eos|>", rstrip=True, lstrip=True, special=True)]
    )
    texts = ["one story", " two stories ", "three"] + stories(20)
    for tok in (metaspace, stripping):
        assert (
            packing._encode_joined(
                tok.backend_tokenizer, tok.backend_tokenizer.encode_batch, texts, tok.eos_token_id
            )
            is None
        )
        flat, lengths, _ = packing._encode_documents(tok, texts, tok.eos_token_id)
        expected_flat, expected_lengths = _encode_alone(tok, texts)
        assert flat.tolist() == expected_flat and lengths.tolist() == expected_lengths


def test_tokenizer_without_eos_is_rejected(tokenizer):
    no_eos = PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend_tokenizer)
    with pytest.raises(ValueError, match="eos_token"):
        tokenize_and_pack(datasets.Dataset.from_dict({"text": ["a"]}), no_eos, block_size=4)


# ------------------------------------------------------------------------------------------ byte count


def test_token_byte_lengths_match_decoding(tokenizer):
    lengths = token_byte_lengths(tokenizer)
    assert len(lengths) == len(tokenizer)
    assert lengths[tokenizer.eos_token_id] == 0 and lengths[tokenizer.pad_token_id] == 0
    for text in SAMPLE_TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert int(lengths[ids].sum()) == len(text.encode("utf-8"))
    # Every byte-level base token stands for exactly one byte, including bytes of multi-byte characters.
    for char in "é今🙂":
        for token_id in tokenizer(char, add_special_tokens=False)["input_ids"]:
            assert lengths[token_id] >= 1


def test_count_bytes_counts_predicted_positions(tmp_path, tokenizer):
    texts = [f"plain ascii text number {i}, with words." for i in range(30)]
    packed = tokenize_and_pack(datasets.Dataset.from_dict({"text": texts}), tokenizer, 16, cache_dir=tmp_path)
    lengths = token_byte_lengths(tokenizer)
    direct_predicted = 0
    direct_all = 0
    for block in packed["input_ids"]:
        direct_predicted += len(tokenizer.decode(block[1:], skip_special_tokens=True).encode("utf-8"))
        direct_all += len(tokenizer.decode(block, skip_special_tokens=True).encode("utf-8"))
    assert count_bytes(packed, lengths) == direct_predicted
    assert count_bytes(packed, lengths, skip_first=False) == direct_all
    assert direct_all > direct_predicted
    streamed = tokenize_and_pack(
        datasets.Dataset.from_dict({"text": texts}).to_iterable_dataset(), tokenizer, 16
    )
    assert count_bytes(streamed, lengths) == direct_predicted


# ----------------------------------------------------------------------------------- whole pipeline


def test_tokenizer_trainer_sees_only_training_documents(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": t} for t in stories(12)])
    seen = []

    def trainer(texts):
        seen.extend(texts)
        return _train_tokenizer(seen)

    prepared = prepare_datasets(make_args(tmp_path, [path], validation_split=3), tokenizer_trainer=trainer)
    assert sorted(seen) == sorted(prepared.train_text["text"])
    assert not set(seen) & set(prepared.validation_text["text"])
    assert prepared.tokenizer is not None and len(prepared.train) == prepared.report["blocks"]["train"]


def test_prepare_report_is_consistent(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": t} for t in stories(20)])
    prepared = prepare_datasets(
        make_args(tmp_path, [path], validation_split=0.2, block_size=16), tokenizer=tokenizer
    )
    report = prepared.report
    assert report["documents"] == {"train": 16, "validation": 4}
    lengths = token_byte_lengths(tokenizer)
    for split, packed in (("train", prepared.train), ("validation", prepared.validation)):
        assert report["blocks"][split] == len(packed)
        assert report["tokens"][split] == 16 * len(packed) + report["dropped_remainder_tokens"][split]
        assert report["bytes"][split] == count_bytes(packed, lengths)
    json.dumps(report)  # the report must be serialisable for logs and model cards


def test_streaming_matches_non_streaming(tmp_path, tokenizer):
    docs = stories(30) + stories(5)  # 5 duplicates
    path = tmp_path / "d.txt"
    path.write_text("\r\n\r\n".join(docs) + "\n\nshort\n", encoding="utf-8")
    common = {"validation_split": 0.2, "block_size": 16, "min_doc_chars": 10}
    eager = prepare_datasets(make_args(tmp_path, [path], **common), tokenizer=tokenizer)
    lazy = prepare_datasets(make_args(tmp_path, [path], streaming=True, **common), tokenizer=tokenizer)
    assert isinstance(lazy.train, datasets.IterableDataset)
    lazy_train = [ex["text"] for ex in lazy.train_text]
    lazy_validation = [ex["text"] for ex in lazy.validation_text]
    # Same cleaned documents; the split differs by design (seeded hash vs seeded exact-size choice).
    assert sorted(lazy_train + lazy_validation) == sorted(all_texts(eager))
    # After a full pass the live counters equal the eager counts.
    list(lazy.train_text)
    assert lazy.report["cleaning"] == eager.report["cleaning"]
    # Packing the streamed training documents gives exactly the eager packing of the same documents.
    same_docs = datasets.Dataset.from_dict({"text": lazy_train})
    eager_blocks = tokenize_and_pack(same_docs, tokenizer, 16, cache_dir=tmp_path / "c2")["input_ids"]
    assert [ex["input_ids"] for ex in lazy.train] == eager_blocks


def test_hub_source_calls_load_dataset_with_name_config_split_and_streaming(tmp_path, tokenizer, monkeypatch):
    calls = []
    fake = datasets.Dataset.from_dict({"content": stories(6), "other": list(range(6))})

    def fake_load_dataset(name, config=None, **kwargs):
        calls.append((name, config, kwargs["split"], kwargs["streaming"]))
        return fake.to_iterable_dataset() if kwargs["streaming"] else fake

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    for streaming in (False, True):
        args = make_args(
            tmp_path,
            ["hub:org/corpus:zh"],
            text_column="content",
            hub_split="validation",
            streaming=streaming,
        )
        prepared = prepare_datasets(args, tokenizer=tokenizer)
        texts = [ex["text"] for ex in prepared.train_text] + [ex["text"] for ex in prepared.validation_text]
        assert sorted(texts) == sorted(stories(6))
    assert calls == [("org/corpus", "zh", "validation", False), ("org/corpus", "zh", "validation", True)]


def _fake_corpus_module(tmp_path):
    module = types.ModuleType("fake_corpus")
    module.__file__ = str(tmp_path / "fake_corpus.py")
    (tmp_path / "fake_corpus.py").write_text("# fake\n")

    def generate_documents(num_docs, seed=0, words=None):
        rng = np.random.default_rng(seed)
        for i in range(num_docs):
            yield {"text": f"synthetic document {i} value {int(rng.integers(1000))}.", "logprob": -1.0}

    module.generate_documents = generate_documents
    return module


def test_builtin_source_with_fake_generator(tmp_path, tokenizer, monkeypatch):
    fake = _fake_corpus_module(tmp_path)
    monkeypatch.setattr(sources, "builtin_corpus", fake)
    prepared = prepare_datasets(make_args(tmp_path, ["builtin:10"], corpus_seed=5), tokenizer=tokenizer)
    expected = [d["text"] for d in fake.generate_documents(10, seed=5)]
    assert sorted(all_texts(prepared)) == sorted(expected)
    assert prepared.report["documents"]["train"] + prepared.report["documents"]["validation"] == 10


def test_builtin_source_with_real_corpus(tmp_path, tokenizer):
    expected = [d["text"] for d in builtin_corpus.generate_documents(30, seed=2)]
    prepared = prepare_datasets(
        make_args(tmp_path, ["builtin:30"], corpus_seed=2, validation_split=3, block_size=16),
        tokenizer=tokenizer,
    )
    cleaned = {t.strip() for t in expected if t.strip()}
    assert set(all_texts(prepared)) == cleaned
    assert prepared.report["cleaning"]["normalize"]["documents_in"] == 30


def test_pipeline_with_project_tokenizer_and_builtin_corpus(tmp_path):
    args = make_args(tmp_path, ["builtin:200"], scrub_pii=True, block_size=32, validation_split=10)
    prepared = prepare_datasets(args, tokenizer_trainer=lambda texts: train_tokenizer(texts, vocab_size=400))
    tok = prepared.tokenizer
    assert tok.eos_token_id == 2
    lengths = token_byte_lengths(tok)
    for text in list(prepared.train_text["text"])[:20] + [" ".join(PII_PLACEHOLDERS.values())]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert int(lengths[ids].sum()) == len(text.encode("utf-8"))
    assert prepared.report["blocks"]["validation"] >= 1
    assert prepared.report["bytes"]["validation"] == count_bytes(prepared.validation, lengths)


# ------------------------------------------------------------------------------------------ user text stays text


def test_special_token_strings_in_documents_stay_text_and_are_counted(tmp_path):
    tok = train_tokenizer(stories(40) + ["<|eos|> <|user|> <|end|>"], vocab_size=400)
    eos, user, end = (tok.convert_tokens_to_ids(t) for t in ("<|eos|>", "<|user|>", "<|end|>"))
    forged = [f"{text} <|eos|> and then <|user|> said <|end|>" for text in stories(12, "forged")]
    plain = stories(24)
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": t} for t in plain + forged])
    for streaming in (False, True):
        prepared = prepare_datasets(
            make_args(tmp_path, [path], block_size=16, validation_split=4, streaming=streaming), tokenizer=tok
        )
        ids = [t for block in prepared.train for t in block["input_ids"]]
        ids += [t for block in prepared.validation for t in block["input_ids"]]
        documents = len(plain) + len(forged)
        # One EOS per document (at most: the packing remainder is dropped), never a user or end-of-turn id.
        assert documents - 2 <= ids.count(eos) <= documents
        assert ids.count(user) == 0 and ids.count(end) == 0
        assert tok.decode(ids).count("<|user|>") >= len(forged) - 2
        if not streaming:
            counts = prepared.report["special_token_strings_in_text"]
            assert counts["train"] + counts["validation"] == len(forged)
            json.dumps(prepared.report)
    # The streamed packing counts them too, while it is consumed.
    stats = {}
    streamed = tokenize_and_pack(
        datasets.Dataset.from_dict({"text": forged}).to_iterable_dataset(), tok, 16, stats=stats
    )
    list(streamed)
    assert stats["special_token_strings_in_text"] == len(forged)


def test_tokenizer_flag_is_restored_after_packing(tmp_path):
    tok = train_tokenizer(stories(40), vocab_size=400)
    tokenize_and_pack(
        datasets.Dataset.from_dict({"text": ["say <|eos|> " * 3] * 4}), tok, 4, cache_dir=tmp_path
    )
    assert tok.backend_tokenizer.encode_special_tokens is False
    assert tok("<|eos|>", add_special_tokens=False)["input_ids"] == [tok.eos_token_id]


# Issue 14: compressed corpora load like their plain forms.
COMPRESSORS = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".zst": lambda data: zstandard.ZstdCompressor().compress(data),
}
PLAIN_FORMATS = {
    ".txt": lambda texts: "\n\n".join(texts) + "\n",
    ".jsonl": lambda texts: "".join(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in texts),
    ".json": lambda texts: json.dumps([{"text": text} for text in texts], ensure_ascii=False),
    ".csv": lambda texts: "text\n" + "".join(f'"{text}"\n' for text in texts),
}


def documents_of(path, tmp_path, streaming=False):
    args = make_args(tmp_path, [path], streaming=streaming)
    utf8 = {}
    parts = sources.load_source(resolve_sources([str(path)])[0], args, tmp_path / "cache", utf8)
    return [example["text"] for part in parts for example in part], utf8


@pytest.mark.parametrize("compression", list(COMPRESSORS))
@pytest.mark.parametrize("plain_format", list(PLAIN_FORMATS))
def test_compressed_files_give_the_documents_of_the_plain_file(tmp_path, plain_format, compression):
    texts = [*SAMPLE_TEXTS, "bad byte next"]
    data = PLAIN_FORMATS[plain_format](texts).encode()
    if plain_format in (".txt", ".jsonl"):
        data = data.replace(b"bad byte next", b"bad byte \xff next")  # repaired the same way in both forms
    plain = tmp_path / f"plain{plain_format}"
    plain.write_bytes(data)
    packed = tmp_path / f"packed{plain_format}{compression}"
    packed.write_bytes(COMPRESSORS[compression](data))
    expected, expected_utf8 = documents_of(plain, tmp_path / "a")
    assert len(expected) == len(texts)
    assert documents_of(packed, tmp_path / "b") == (expected, {str(packed): expected_utf8[str(plain)]})
    if plain_format == ".jsonl":
        assert documents_of(packed, tmp_path / "c", streaming=True)[0] == expected


def test_a_directory_picks_up_compressed_files_and_a_bad_line_is_numbered_after_decompression(tmp_path):
    (tmp_path / "corpus").mkdir()
    lines = [json.dumps({"text": text}) for text in SAMPLE_TEXTS]
    lines.insert(3, '{"text": "cut short')
    (tmp_path / "corpus" / "part.jsonl.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    (tmp_path / "corpus" / "notes.gz").write_bytes(gzip.compress(b"no format"))  # not a text format: skipped
    assert resolve_sources([str(tmp_path / "corpus")])[0].files == [
        str(tmp_path / "corpus" / "part.jsonl.gz")
    ]
    with pytest.raises(ValueError, match=r"part\.jsonl\.gz:4: invalid JSON"):
        documents_of(tmp_path / "corpus", tmp_path)


def test_a_truncated_compressed_file_is_named(tmp_path):
    path = tmp_path / "cut.txt.gz"
    path.write_bytes(gzip.compress(("\n\n".join(SAMPLE_TEXTS * 50)).encode())[:200])
    with pytest.raises(ValueError, match=r"cut\.txt\.gz: could not be decompressed.*gzip -t"):
        documents_of(path, tmp_path)


def test_zst_without_zstandard_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "corpus.jsonl.zst"
    path.write_bytes(COMPRESSORS[".zst"](b'{"text": "hello"}\n'))
    monkeypatch.setitem(sys.modules, "zstandard", None)  # an import of it now fails
    with pytest.raises(ImportError, match=r"corpus\.jsonl\.zst is zstd-compressed.*pip install zstandard"):
        documents_of(path, tmp_path)
