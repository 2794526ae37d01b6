"""attention.html: pick a layer and a head, see its attention over the tokens beside its statistics. One
self-contained page: the weights travel as JSON inside it and a small inline script draws the chosen head, so
it opens offline and nothing is fetched."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

import torch

# Weights are stored as whole thousandths: three digits are all a colour can show, and integers keep a
# 128-token page of a few dozen heads near a megabyte.
WEIGHT_SCALE = 1000

STYLE = """
body { font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", system-ui, sans-serif; margin: 2em; }
.controls { margin: 1em 0; } .controls label { margin-right: 1.5em; }
.layout { display: flex; gap: 2em; align-items: flex-start; flex-wrap: wrap; }
#map { border-collapse: collapse; font-size: 12px; }
#map td { width: 14px; height: 14px; padding: 0; border: 1px solid #f4f4f4; }
#map th { font-weight: normal; white-space: pre; padding: 0 4px; color: #333; }
#map thead th { writing-mode: vertical-rl; text-align: left; vertical-align: bottom; padding: 4px 0; }
#map tbody th { text-align: right; }
.stats table, table.heads { border-collapse: collapse; }
.stats td, .stats th, table.heads td, table.heads th { padding: 0.2em 0.6em; text-align: right;
  border-bottom: 1px solid #ddd; }
table.heads tbody tr { cursor: pointer; } table.heads tr.chosen { background: #ffe9a8; }
.note { color: #555; max-width: 40em; }
"""

SCRIPT = """
const data = JSON.parse(document.getElementById("attention-data").textContent);
const layerBox = document.getElementById("layer"), headBox = document.getElementById("head");
const fields = [["mean_distance", "mean distance looked back (tokens)"],
                ["previous_token_share", "share on the previous token"],
                ["first_token_share", "share on the first token"], ["entropy_bits", "entropy (bits)"]];
function option(box, value, text) {
  const item = document.createElement("option"); item.value = value; item.textContent = text; box.appendChild(item);
}
function cell(row, tag, text) {
  const item = document.createElement(tag); item.textContent = text; row.appendChild(item); return item;
}
function label(piece) { return piece.replace(/\\n/g, "\\\\n") || "\\u2205"; }
function shade(weight) {  // white for nothing, dark blue for all of a row's attention
  const light = 100 - 75 * weight; return "hsl(215, 80%, " + light.toFixed(1) + "%)";
}
function drawMap(layer, head) {
  const rows = data.weights[layer][head], table = document.getElementById("map");
  table.replaceChildren();
  const top = table.createTHead().insertRow();
  cell(top, "th", "query \\u2193 / key \\u2192");
  data.tokens.forEach(piece => cell(top, "th", label(piece)));
  const body = table.createTBody();
  rows.forEach((row, query) => {
    const line = body.insertRow();
    cell(line, "th", label(data.tokens[query]));
    data.tokens.forEach((piece, key) => {
      const weight = key < row.length ? row[key] / data.scale : 0, box = line.insertCell();
      box.style.background = shade(weight);
      box.title = label(data.tokens[query]) + " \\u2192 " + label(piece) + ": " + weight.toFixed(3);
    });
  });
}
function drawStatistics(layer, head) {
  const record = data.statistics.find(r => r.layer === layer + 1 && r.head === head);
  const table = document.getElementById("chosen");
  table.replaceChildren();
  fields.forEach(([key, name]) => {
    const row = table.insertRow(); cell(row, "th", name); cell(row, "td", record[key].toFixed(3));
  });
  document.querySelectorAll("table.heads tbody tr").forEach(row => row.classList.toggle(
    "chosen", Number(row.dataset.layer) === layer && Number(row.dataset.head) === head));
}
function show() {
  const layer = Number(layerBox.value), head = Number(headBox.value);
  drawMap(layer, head); drawStatistics(layer, head);
  document.getElementById("title").textContent = "Layer " + (layer + 1) + ", head " + head;
}
for (let layer = 0; layer < data.layers; layer++) option(layerBox, layer, "layer " + (layer + 1));
for (let head = 0; head < data.heads; head++) option(headBox, head, "head " + head);
const everyHead = document.querySelector("table.heads tbody");
data.statistics.forEach(record => {
  const row = everyHead.insertRow();
  row.dataset.layer = record.layer - 1; row.dataset.head = record.head;
  cell(row, "td", record.layer); cell(row, "td", record.head);
  fields.forEach(([key]) => cell(row, "td", record[key].toFixed(3)));
  row.addEventListener("click", () => { layerBox.value = record.layer - 1; headBox.value = record.head; show(); });
});
layerBox.addEventListener("change", show); headBox.addEventListener("change", show);
show();
"""


def attention_rows(weights: torch.Tensor) -> list[list[int]]:
    """One head's (queries, keys) weights as thousandths, each query's row cut at the diagonal: a causal
    model puts nothing on later tokens, so those zeros need not travel."""
    scaled = (weights.float() * WEIGHT_SCALE).round().int().tolist()
    return [row[: query + 1] for query, row in enumerate(scaled)]


def attention_data(
    attentions: Sequence[torch.Tensor], pieces: Sequence[str], statistics: list[dict], model_name: str
) -> dict:
    """What the page embeds: the tokens, every layer's and head's rows (`weights[layer][head][query]`, in
    1/`scale`) and the statistics of head_statistics."""
    return {
        "model": model_name,
        "tokens": list(pieces),
        "layers": len(attentions),
        "heads": attentions[0].shape[1],
        "scale": WEIGHT_SCALE,
        "weights": [
            [attention_rows(layer[0, head]) for head in range(layer.shape[1])] for layer in attentions
        ],
        "statistics": statistics,
    }


def script_json(value) -> str:
    """JSON safe inside a <script> element: a token such as `</script>` or `<!--` must not end or change it,
    so the characters that could are written as JSON escapes, which parse back to the same text."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def attention_page(
    attentions: Sequence[torch.Tensor], pieces: Sequence[str], statistics: list[dict], model_name: str
) -> str:
    """The page: layer and head pickers, the chosen head's heatmap (rows: query, columns: attended token; hover
    a cell for its weight), its statistics, and every head's statistics (click a row to show that head)."""
    data = attention_data(attentions, pieces, statistics, model_name)
    header = "".join(
        f"<th>{name}</th>"
        for name in ("layer", "head", "mean distance", "previous token", "first token", "entropy (bits)")
    )
    return f"""<!DOCTYPE html>
<html lang="zh">
<head>
<meta charset="utf-8">
<title>wenlm inspect attention: {html.escape(model_name)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Attention</h1>
<p class="note">Model: <code>{html.escape(model_name)}</code>, {len(pieces)} tokens. Each row is a query token and
shows how its attention is spread over the tokens up to it (darker is more; hover a cell for the weight).
A previous-token head lights the cells just left of the diagonal; an attention sink the first column.</p>
<noscript><p>This page draws the heatmaps with an inline script: allow scripts for this file to see them.</p>
</noscript>
<div class="controls"><label>Layer <select id="layer"></select></label>
<label>Head <select id="head"></select></label></div>
<div class="layout">
<div><h2 id="title"></h2><table id="map"></table></div>
<div class="stats"><h2>This head</h2><table id="chosen"></table>
<h2>Every head</h2><p class="note">Averaged over every query but the first. Click a row to show that head.</p>
<table class="heads"><thead><tr>{header}</tr></thead><tbody></tbody></table></div>
</div>
<script type="application/json" id="attention-data">{script_json(data)}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""
