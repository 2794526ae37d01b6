"""The text as the model sees it: token ids with readable pieces, and each token's surprisal in bits."""

from __future__ import annotations

import math

import torch
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure

from wenlm.training.inspection.attention import readable
from wenlm.training.inspection.html import SATURATION_BITS, surprisal_rgb

LOG2 = math.log(2.0)

# tokens.png: page width and margin in points, text size, the space between boxes and between lines.
PAGE_WIDTH, MARGIN, FONT_SIZE, GAP, LINE_HEIGHT = 720.0, 24.0, 13.0, 8.0, 30.0
HEADER, FOOTER = 40.0, 64.0  # room for the title above the text and the colour bar below it


def encode(tokenizer, text: str, max_length: int) -> tuple[list[int], list[str]]:
    """Token ids of `text` behind a start token, and each token's piece of the text.

    Packed pretraining puts <|eos|> before every document, so that is the context a text starts from (a tokenizer
    that adds its own BOS keeps it); the start token's piece is its name. Pieces come from the character offsets,
    so a Chinese character split over two byte-level tokens shows once, on the token that completes it, instead
    of as two replacement characters.
    """
    encoding = tokenizer(text, add_special_tokens=True, return_offsets_mapping=tokenizer.is_fast)
    ids = list(encoding["input_ids"])
    offsets = list(encoding["offset_mapping"]) if tokenizer.is_fast else [None] * len(ids)
    starts = {tokenizer.bos_token_id, tokenizer.eos_token_id} - {None}
    if (not ids or ids[0] not in starts) and tokenizer.eos_token_id is not None:
        ids, offsets = [tokenizer.eos_token_id, *ids], [(0, 0), *offsets]
    ids, offsets = ids[:max_length], offsets[:max_length]
    return ids, token_pieces(tokenizer, text, ids, offsets)


def token_pieces(tokenizer, text: str, ids: list[int], offsets: list) -> list[str]:
    pieces, covered = [], 0
    for token_id, span in zip(ids, offsets):
        if span is None:  # a slow tokenizer has no offsets: decode the token alone
            pieces.append(tokenizer.decode([token_id]))
        elif span[0] == span[1]:  # a special token (start marker) covers no text
            pieces.append(tokenizer.convert_ids_to_tokens(token_id))
        else:
            start, end = max(span[0], covered), span[1]
            pieces.append(text[start:end])
            covered = max(covered, end)
    return pieces


def next_token_bits(log_probs: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """-log2 p(token i+1 | tokens <= i) for each position i but the last, from log-probs (natural log) of shape
    (positions, vocab)."""
    return -log_probs[:-1].gather(-1, ids[1:, None]).squeeze(-1) / LOG2


def token_records(
    log_probs: torch.Tensor, ids: list[int], pieces: list[str], tokenizer, top_k: int
) -> list[dict]:
    """One record per token: its piece, its surprisal in bits (none for the first: nothing predicts it) and the
    top-k predictions the model made for that position from the tokens before it."""
    bits = next_token_bits(log_probs, torch.tensor(ids)).tolist()
    top = log_probs.exp().topk(min(top_k, log_probs.shape[-1]), dim=-1)
    records = [{"index": 0, "id": ids[0], "text": pieces[0], "surprisal_bits": None, "top": []}]
    for position in range(1, len(ids)):
        predictions = [
            {"id": token_id, "text": tokenizer.decode([token_id]), "probability": probability}
            for token_id, probability in zip(
                top.indices[position - 1].tolist(), top.values[position - 1].tolist()
            )
        ]
        records.append(
            {
                "index": position,
                "id": ids[position],
                "text": pieces[position],
                "surprisal_bits": bits[position - 1],
                "top": predictions,
            }
        )
    return records


def flow(widths: list[float], line_ends: list[bool], line_width: float) -> list[tuple[int, float]]:
    """(line, x) of each box laid left to right in lines of `line_width` points; a box wider than a line gets
    one of its own, and a box marked in `line_ends` (a token ending a line of the text) ends its line."""
    places, line, x = [], 0, 0.0
    for width, ends in zip(widths, line_ends):
        if x > 0 and x + width > line_width:
            line, x = line + 1, 0.0
        places.append((line, x))
        x += width + GAP
        if ends:
            line, x = line + 1, 0.0
    return places


def scale_colour(bits: float | None) -> tuple[float, float, float]:
    """tokens.html's colour for `bits`, as matplotlib takes it."""
    red, green, blue = surprisal_rgb(bits)
    return red / 255, green / 255, blue / 255


def plot_tokens(records: list[dict], font=None) -> Figure:
    """tokens.html as a picture: the tokens as running text, each on a box coloured by its surprisal on the
    page's scale, and a colour bar. `font` carries the Chinese glyphs (attention.cjk_font); without one, tokens
    are drawn as ASCII escapes."""
    text_font = font.copy() if font is not None else font_manager.FontProperties()
    text_font.set_size(FONT_SIZE)
    labels = [readable(record["text"], font) for record in records]
    renderer = FigureCanvasAgg(Figure(dpi=72)).get_renderer()  # at 72 dpi a pixel is a point
    pad = 0.25 * FONT_SIZE  # the box's padding around its text (boxstyle pad is in font sizes)
    widths = [
        renderer.get_text_width_height_descent(label, text_font, ismath=False)[0] + 2 * pad
        for label in labels
    ]
    places = flow(widths, ["\n" in record["text"] for record in records], PAGE_WIDTH - 2 * MARGIN)
    height = HEADER + LINE_HEIGHT * (places[-1][0] + 1) + FOOTER + MARGIN
    figure = Figure(figsize=(PAGE_WIDTH / 72, height / 72))
    scored = [record["surprisal_bits"] for record in records if record["surprisal_bits"] is not None]
    mean = sum(scored) / len(scored) if scored else float("nan")
    figure.text(
        MARGIN / PAGE_WIDTH,
        1 - 0.6 * HEADER / height,
        f"Surprisal per token: mean {mean:.2f} bits over {len(scored)} predicted tokens "
        "(grey: the start token, which nothing predicts)",
        fontsize=11,
        va="center",
    )
    for label, record, (line, x) in zip(labels, records, places):
        colour = scale_colour(record["surprisal_bits"])
        figure.text(
            (MARGIN + x + pad) / PAGE_WIDTH,
            1 - (HEADER + LINE_HEIGHT * (line + 0.7)) / height,
            label,
            fontproperties=text_font,
            va="baseline",
            bbox={
                "boxstyle": "round,pad=0.25",
                "facecolor": colour,
                "edgecolor": "#888888",
                "linewidth": 0.6,
            },
        )
    scale = ListedColormap([scale_colour(SATURATION_BITS * step / 255) for step in range(256)]).with_extremes(
        over=scale_colour(SATURATION_BITS)
    )
    bar = figure.add_axes((MARGIN / PAGE_WIDTH, (0.55 * FOOTER) / height, 0.5, 12 / height))
    figure.colorbar(
        ScalarMappable(Normalize(0.0, SATURATION_BITS), scale),
        cax=bar,
        orientation="horizontal",
        extend="max",
        label="surprisal (bits = −log₂ of the probability the model gave the token)",
    )
    return figure
