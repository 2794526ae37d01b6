"""Attention patterns: a heatmap per layer and head, and numbers that find the common kinds of head at a glance
(previous-token heads attend one step back, attention sinks pile onto the first token)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from matplotlib import font_manager
from matplotlib.figure import Figure

from wenlm.training.utils import markdown_table

# Font families that carry Chinese glyphs, best first; matplotlib's default (DejaVu Sans) draws empty boxes.
CJK_FONT_NAMES = (
    "Noto Sans CJK SC",
    "Noto Sans CJK",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Noto Serif CJK SC",
)
CJK_FILE_HINTS = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy", "simhei", "msyh", "pingfang")


@contextlib.contextmanager
def eager_attention(model) -> Iterator[None]:
    """Eager attention for the forward inside the block only: SDPA and flash kernels never materialise the
    attention weights; the model's own implementation comes back afterwards."""
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


def head_statistics(attentions: Sequence[torch.Tensor]) -> list[dict]:
    """Per layer and head (attentions: per layer, shape (1, heads, queries, keys)), averaged over the queries
    after the first (the first can only look at itself): mean distance looked back, weight on the previous token,
    weight on the first token, entropy in bits."""
    records = []
    for layer, weights in enumerate(attentions, start=1):
        weights = weights[0].float()
        length = weights.shape[-1]
        if length < 2:
            raise ValueError("--text gives a single token: attention statistics need at least two.")
        positions = torch.arange(length, dtype=torch.float32)
        distance = (weights * (positions[:, None] - positions[None, :]).clamp(min=0)).sum(-1)[:, 1:]
        previous = weights.diagonal(offset=-1, dim1=-2, dim2=-1)
        first = weights[:, 1:, 0]
        entropy = -(weights * torch.log2(weights.clamp(min=1e-30))).sum(-1)[:, 1:]
        for head in range(weights.shape[0]):
            records.append(
                {
                    "layer": layer,
                    "head": head,
                    "mean_distance": distance[head].mean().item(),
                    "previous_token_share": previous[head].mean().item(),
                    "first_token_share": first[head].mean().item(),
                    "entropy_bits": entropy[head].mean().item(),
                }
            )
    return records


def heads_markdown(records: list[dict]) -> str:
    header = [
        "layer",
        "head",
        "mean distance (tokens)",
        "share on previous token",
        "share on first token",
        "entropy (bits)",
    ]
    rows = [
        [
            record["layer"],
            record["head"],
            record["mean_distance"],
            record["previous_token_share"],
            record["first_token_share"],
            record["entropy_bits"],
        ]
        for record in records
    ]
    return (
        "# Attention heads\n\nAveraged over every query but the first. A previous-token head puts most of its "
        "weight one step back; an attention sink puts it on the first token; low entropy means a sharp head."
        "\n\n" + markdown_table(header, rows, digits=3) + "\n"
    )


def cjk_font() -> font_manager.FontProperties | None:
    """A font with Chinese glyphs, from matplotlib's font list or, when its cache predates the font's install,
    from the font files on the system; None when there is none."""
    by_name = {entry.name: entry.fname for entry in font_manager.fontManager.ttflist}
    for name in CJK_FONT_NAMES:
        if name in by_name:
            return font_manager.FontProperties(fname=by_name[name])
    # Regular before bold: the labels are small, and a bold face fills its strokes in.
    for path in sorted(font_manager.findSystemFonts(), key=lambda path: ("bold" in path.lower(), path)):
        if any(hint in path.lower().replace("-", "").replace("_", "") for hint in CJK_FILE_HINTS):
            return font_manager.FontProperties(fname=path)
    return None


def readable(piece: str, font) -> str:
    """A token as text to draw: newlines escaped and an empty piece marked; without a CJK font, an ASCII escape
    so it is never a box."""
    if font is None:
        return ascii(piece)[1:-1]
    return piece.replace("\n", "\\n") or "∅"


def tick_labels(pieces: Sequence[str], font) -> list[str]:
    """Token labels for the axes; without a CJK font, the index and an ASCII escape so a label is never a box."""
    if font is not None:
        return [readable(piece, font) for piece in pieces]
    return [f"{index}:{readable(piece, font)}" for index, piece in enumerate(pieces)]


def plot_attention(attentions: Sequence[torch.Tensor], pieces: Sequence[str], font=None) -> Figure:
    """A grid of heatmaps, one row per layer and one column per head; rows are queries, columns keys."""
    layers, heads = len(attentions), attentions[0].shape[1]
    length = len(pieces)
    cell = max(2.2, min(0.22 * length, 9.0))
    figure = Figure(figsize=(cell * heads + 1, cell * layers + 1), layout="constrained")
    grid = figure.subplots(layers, heads, squeeze=False)
    labels = tick_labels(pieces, font)
    step = max(1, math.ceil(length / 40))  # at most ~40 labels an axis, or they overprint
    label_font = font.copy() if font is not None else font_manager.FontProperties()
    label_font.set_size(max(4, min(9, 200 / max(length, 1))))
    for layer, row in enumerate(grid):
        for head, axes in enumerate(row):
            axes.imshow(attentions[layer][0, head].float().numpy(), cmap="viridis", vmin=0.0, vmax=1.0)
            axes.set_title(f"layer {layer + 1} head {head}", fontsize=9)
            ticks = list(range(0, length, step))
            axes.set_xticks(ticks, [labels[i] for i in ticks], rotation=90, fontproperties=label_font)
            axes.set_yticks(ticks, [labels[i] for i in ticks], fontproperties=label_font)
    figure.suptitle("Attention (rows: query token, columns: attended token)")
    return figure
