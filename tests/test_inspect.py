"""`wenlm inspect`: per-token surprisal, logit lens and attention, on a tiny random model."""

from __future__ import annotations

import html
import io
import json
import math
import re
import warnings
from html.parser import HTMLParser

import pytest
import torch
from helpers import save_wenlm_folder
from matplotlib import image
from test_finetune import make_tiny_base
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from wenlm.training.cli import main as cli_main
from wenlm.training.commands.export import main as export_main
from wenlm.training.export import llama_twin
from wenlm.training.inspection.attention import head_statistics, tick_labels
from wenlm.training.inspection.attention_html import WEIGHT_SCALE
from wenlm.training.inspection.lens import lens_log_probs
from wenlm.training.inspection.text_view import OUTPUT_FILES, forward, inspect
from wenlm.training.inspection.tokens import LOG2, encode, flow, plot_tokens, token_records

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


@pytest.fixture(scope="module")
def written(tiny, tmp_path_factory):
    """The command's output folder for TEXT on the tiny model."""
    out = tmp_path_factory.mktemp("inspect-out") / "out"
    assert cli_main(["inspect", "--model", str(tiny[0]), "--text", TEXT, "--output_dir", str(out)]) == 0
    return out


def test_command_writes_every_file_and_valid_html(written):
    out = written
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
    result = inspect(
        model, tokenizer, "从前有一只小猫，它住在一个小村子里。", tmp_path / "zh", model_name="tiny"
    )
    assert (
        "".join(record["text"] for record in result["tokens"][1:]) == "从前有一只小猫，它住在一个小村子里。"
    )
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


def embedded_attention(page: str) -> dict:
    """The JSON attention.html draws from."""
    match = re.search(r'<script type="application/json" id="attention-data">(.*?)</script>', page, re.DOTALL)
    assert match, "attention.html embeds no attention data"
    return json.loads(match.group(1))


def assert_rows_are_attention(data: dict, length: int):
    """Every embedded row of every head is a causal distribution: it stops at the diagonal (the page draws the
    rest as zero) and its thousandths add up to 1 up to rounding."""
    for layer in data["weights"]:
        for head in layer:
            assert len(head) == length
            for query, row in enumerate(head):
                assert len(row) == query + 1 and min(row) >= 0
                assert sum(row) / data["scale"] == pytest.approx(1.0, abs=0.5 * len(row) / data["scale"])


def test_attention_page_is_self_contained_and_embeds_every_head(written, tiny):
    _, model, tokenizer = tiny
    page = (written / "attention.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and "<link" not in page and " src=" not in page
    assert "<b>" not in page and "</b>" not in page  # the text's markup is data, never markup
    parser = Collector()
    parser.feed(page)
    parser.close()
    assert parser.open == [] and page.count("</script>") == 2  # the text cannot end the data block early
    data = embedded_attention(page)
    ids, pieces = encode(tokenizer, TEXT, 128)
    assert data["tokens"] == pieces and "明明" in page
    assert (data["layers"], data["heads"], data["scale"]) == (3, 4, WEIGHT_SCALE)
    assert len(data["weights"]) == 3 and all(len(layer) == 4 for layer in data["weights"])
    assert_rows_are_attention(data, len(ids))
    attentions = forward(model, ids).attentions
    for layer, weights in enumerate(attentions):
        for head in range(4):
            stored = torch.zeros(len(ids), len(ids))
            for query, row in enumerate(data["weights"][layer][head]):
                stored[query, : len(row)] = torch.tensor(row, dtype=torch.float32) / WEIGHT_SCALE
            torch.testing.assert_close(stored, weights[0, head], atol=0.5 / WEIGHT_SCALE + 1e-6, rtol=0)
    assert data["statistics"] == json.loads((written / "heads.json").read_text(encoding="utf-8"))["heads"]


def test_tokens_picture_is_a_png_with_the_page_colours(written):
    raw = (written / "tokens.png").read_bytes()
    assert raw.startswith(b"\x89PNG\r\n\x1a\n") and len(raw) > 1000
    pixels = (image.imread(written / "tokens.png")[..., :3] * 255).round()
    start_grey = torch.tensor([238.0, 238.0, 238.0])  # html.surprisal_rgb of the unscored start token
    assert (torch.from_numpy(pixels) == start_grey).all(-1).any()


def test_tokens_picture_without_a_cjk_font_draws_no_missing_glyph(tiny):
    _, model, tokenizer = tiny
    ids, pieces = encode(tokenizer, TEXT, 128)
    records = token_records(torch.log_softmax(forward(model, ids).logits[0], -1), ids, pieces, tokenizer, 3)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*[Gg]lyph")  # matplotlib's word for a character it lacks
        plot_tokens(records, font=None).savefig(io.BytesIO(), format="png")


def test_token_flow_wraps_long_lines_and_breaks_at_newlines():
    places = flow([100, 100, 100, 500, 50], [False, True, False, False, False], line_width=300)
    assert [line for line, _ in places] == [0, 0, 1, 2, 3]
    assert places[1][1] > places[0][1] + 100 and places[2][1] == 0


def test_inspect_a_llama_export_on_disk(tmp_path):
    wenlm_folder = save_wenlm_folder(tmp_path / "wenlm")
    llama_folder = export_main(
        ["--model", str(wenlm_folder), "--to", "llama", "--output_dir", str(tmp_path / "l")]
    )
    out = tmp_path / "out"
    assert cli_main(["inspect", "--model", str(llama_folder), "--text", TEXT, "--output_dir", str(out)]) == 0
    assert sorted(path.name for path in out.iterdir()) == sorted(OUTPUT_FILES)
    llama = LlamaForCausalLM.from_pretrained(llama_folder).eval()
    ids = [record["id"] for record in json.loads((out / "tokens.json").read_text(encoding="utf-8"))["tokens"]]
    with torch.no_grad():
        log_probs = torch.log_softmax(llama(torch.tensor([ids])).logits[0].float(), dim=-1)
    outputs = forward(llama, ids)
    torch.testing.assert_close(
        lens_log_probs(llama, outputs.hidden_states)[-1], log_probs, atol=1e-5, rtol=1e-5
    )
    last = json.loads((out / "logit_lens.json").read_text(encoding="utf-8"))["layers"][-1]
    true_next = -log_probs[:-1].gather(-1, torch.tensor(ids)[1:, None]).squeeze(-1) / LOG2
    assert last["bits"] == pytest.approx(true_next.tolist(), rel=1e-4, abs=1e-5)
    tokenizer = AutoTokenizer.from_pretrained(llama_folder)
    assert last["top_tokens"] == [tokenizer.decode([token_id]) for token_id in log_probs.argmax(-1).tolist()]
    for weights in outputs.attentions:
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
    assert_rows_are_attention(
        embedded_attention((out / "attention.html").read_text(encoding="utf-8")), len(ids)
    )
