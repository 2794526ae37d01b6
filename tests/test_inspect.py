"""`wenlm inspect`: per-token surprisal, logit lens and attention, on a tiny random model."""

from __future__ import annotations

import html
import json
import math
from html.parser import HTMLParser

import pytest
import torch
from test_finetune import make_tiny_base
from transformers import AutoModelForCausalLM, AutoTokenizer

from wenlm.training.cli import main as cli_main
from wenlm.training.export import llama_twin
from wenlm.training.inspection.attention import head_statistics, tick_labels
from wenlm.training.inspection.command import OUTPUT_FILES, forward, inspect
from wenlm.training.inspection.lens import lens_log_probs
from wenlm.training.inspection.tokens import encode, token_records

TEXT = "One sunny day, Dawei went to the park. 明明：你好，小龙！<b>&</b>"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = make_tiny_base(tmp_path_factory.mktemp("inspect") / "base", num_layers=3)
    return folder, AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def test_logit_lens_at_the_last_layer_is_the_model_output(tiny):
    _, model, tokenizer = tiny
    ids, _ = encode(tokenizer, TEXT, 128)
    outputs = forward(model, ids)
    readings = lens_log_probs(model, outputs.hidden_states)
    assert len(readings) == model.config.num_hidden_layers + 1
    assert torch.equal(readings[-1], torch.log_softmax(outputs.logits[0].float(), dim=-1))
    assert not torch.allclose(readings[-2], readings[-1])  # the earlier layers really are different readings


def test_llama_export_gets_the_same_lens(tiny):
    _, model, tokenizer = tiny
    ids, _ = encode(tokenizer, TEXT, 128)
    llama = llama_twin(model).eval()
    ours, theirs = (lens_log_probs(m, forward(m, ids).hidden_states) for m in (model, llama))
    for mine, twin in zip(ours, theirs):
        torch.testing.assert_close(mine, twin, atol=1e-4, rtol=1e-4)


def test_attention_rows_sum_to_one_and_are_causal(tiny):
    _, model, tokenizer = tiny
    ids, _ = encode(tokenizer, TEXT, 128)
    outputs = forward(model, ids)
    assert model.config._attn_implementation != "eager"  # eager only for the inspected forward
    assert len(outputs.attentions) == model.config.num_hidden_layers
    for weights in outputs.attentions:
        assert weights.shape == (1, model.config.num_attention_heads, len(ids), len(ids))
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
        assert torch.all(weights.triu(diagonal=1) == 0)


def test_surprisal_is_minus_log2_of_the_model_probability(tiny):
    _, model, tokenizer = tiny
    ids, pieces = encode(tokenizer, TEXT, 128)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    records = token_records(torch.log_softmax(logits, -1), ids, pieces, tokenizer, top_k=5)
    assert records[0]["surprisal_bits"] is None and ids[0] == tokenizer.eos_token_id
    for position in range(1, len(ids)):
        expected = -math.log2(torch.softmax(logits[position - 1].double(), -1)[ids[position]].item())
        assert records[position]["surprisal_bits"] == pytest.approx(expected, rel=1e-4)
        assert len(records[position]["top"]) == 5
    assert "".join(pieces[1:]) == TEXT  # the pieces spell the text, Chinese included


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.titles, self.text, self.open = [], [], []

    def handle_starttag(self, tag, attrs):
        if tag not in ("meta", "br", "link", "img"):  # void elements never close
            self.open.append(tag)
        if tag == "span" and dict(attrs).get("class", "").startswith("token"):
            self.titles.append(dict(attrs)["title"])

    def handle_endtag(self, tag):
        assert self.open.pop() == tag, f"</{tag}> closes something else"

    def handle_data(self, data):
        self.text.append(data)


def test_command_writes_every_file_and_valid_html(tiny, tmp_path):
    folder, _, _ = tiny
    out = tmp_path / "out"
    assert cli_main(["inspect", "--model", str(folder), "--text", TEXT, "--output_dir", str(out)]) == 0
    assert sorted(path.name for path in out.iterdir()) == sorted(OUTPUT_FILES)
    tokens = json.loads((out / "tokens.json").read_text(encoding="utf-8"))["tokens"]
    page = (out / "tokens.html").read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in page and "http" not in page and "<script" not in page
    assert "<b>" not in page and "</b>" not in page  # the text's markup is shown, never obeyed
    assert all(f">{html.escape(record['text'])}</span>" in page for record in tokens)
    parser = Collector()
    parser.feed(page)
    parser.close()
    assert parser.open == []
    assert len(parser.titles) == len(tokens)
    assert all(record["text"] in "".join(parser.text) for record in tokens)
    assert "明明" in "".join(parser.text)
    lens = json.loads((out / "logit_lens.json").read_text(encoding="utf-8"))["layers"]
    assert [layer["layer"] for layer in lens] == [0, 1, 2, 3]
    heads = json.loads((out / "heads.json").read_text(encoding="utf-8"))["heads"]
    assert len(heads) == 3 * 4
    assert all(0 <= head["previous_token_share"] <= 1 and head["entropy_bits"] >= 0 for head in heads)
    assert "| layer | head |" in (out / "heads.md").read_text(encoding="utf-8")
    assert (out / "attention.png").stat().st_size > 1000 and (out / "logit_lens.png").stat().st_size > 1000


def test_chinese_text_and_statistics_of_known_patterns(tiny, tmp_path):
    _, model, tokenizer = tiny
    result = inspect(model, tokenizer, "从前有一只小猫，它住在一个小村子里。", tmp_path / "zh", model_name="tiny")
    assert "".join(record["text"] for record in result["tokens"][1:]) == "从前有一只小猫，它住在一个小村子里。"
    assert all(record["surprisal_bits"] > 0 for record in result["tokens"][1:])


def test_head_statistics_recognise_previous_token_and_sink_heads():
    length = 6
    previous = torch.zeros(length, length)
    previous[0, 0] = 1
    previous[torch.arange(1, length), torch.arange(length - 1)] = 1
    sink = torch.zeros(length, length)
    sink[:, 0] = 1
    (prev_head, sink_head) = head_statistics([torch.stack([previous, sink])[None]])
    assert prev_head["previous_token_share"] == 1 and prev_head["mean_distance"] == 1
    assert prev_head["entropy_bits"] == pytest.approx(0)
    assert sink_head["first_token_share"] == 1 and sink_head["mean_distance"] == pytest.approx(3.0)


def test_empty_text_is_refused(tiny, tmp_path, capsys):
    folder, _, _ = tiny
    assert cli_main(["inspect", "--model", str(folder), "--text", " ", "--output_dir", str(tmp_path)]) == 2
    assert "--text" in capsys.readouterr().err


def test_labels_without_a_cjk_font_are_index_and_ascii_never_boxes():
    labels = tick_labels(["小明", "\n", "Tom"], font=None)
    assert labels == ["0:\\u5c0f\\u660e", "1:\\n", "2:Tom"]
    assert all(label.isascii() for label in labels)
    assert tick_labels(["小明", "\n"], font=object()) == ["小明", "\\n"]
