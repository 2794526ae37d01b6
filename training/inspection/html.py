"""tokens.html: the text coloured by how surprised the model was at each token, one self-contained page (inline
style and no scripts or external resources, so it opens offline and can be attached anywhere)."""

from __future__ import annotations

import html

# Surprisal at which the colour saturates: 16 bits is a 1-in-65,536 token, about as surprising as a vocabulary
# of that size guessed uniformly.
SATURATION_BITS = 16.0

STYLE = """
body { font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", system-ui, sans-serif; margin: 2em;
       line-height: 2.2; max-width: 60em; }
.text { font-size: 1.2em; }
.token { border: 1px solid #888; border-radius: 3px; padding: 0.1em 0.15em; margin: 0 1px; white-space: pre-wrap;
         cursor: help; }
.special { color: #777; font-style: italic; background: #eee; }
.legend span { padding: 0.2em 0.6em; border: 1px solid #888; }
table { border-collapse: collapse; } td, th { padding: 0.2em 0.6em; text-align: left; }
"""


# A token nothing predicts (the start of the context).
UNSCORED_RGB = (238, 238, 238)


def surprisal_rgb(bits: float | None) -> tuple[int, int, int]:
    """White (expected) through yellow to red (surprising); grey for a token nothing predicts. tokens.png
    samples the same scale, so the page and the picture agree."""
    if bits is None:
        return UNSCORED_RGB
    share = max(0.0, min(bits / SATURATION_BITS, 1.0))
    return 255, round(255 * (1 - share)), round(255 * max(0.0, 1 - 2 * share))


def surprisal_colour(bits: float | None) -> str:
    return "rgb({},{},{})".format(*surprisal_rgb(bits))


def hover_text(record: dict) -> str:
    if record["surprisal_bits"] is None:
        return f"#{record['index']} {record['text']!r}: the start of the context, not predicted"
    lines = [
        f"#{record['index']} {record['text']!r}: {record['surprisal_bits']:.2f} bits",
        "model's top predictions:",
    ]
    lines += [f"  {prediction['text']!r}  {prediction['probability']:.1%}" for prediction in record["top"]]
    return "\n".join(lines)


def token_span(record: dict) -> str:
    classes = "token special" if record["surprisal_bits"] is None else "token"
    return (
        f'<span class="{classes}" style="background:{surprisal_colour(record["surprisal_bits"])}" '
        f'title="{html.escape(hover_text(record))}">{html.escape(record["text"])}</span>'
    )


def tokens_page(records: list[dict], model_name: str) -> str:
    """The page: a legend, the coloured tokens (hover one for its surprisal and the model's top predictions) and
    the mean."""
    scored = [record["surprisal_bits"] for record in records if record["surprisal_bits"] is not None]
    mean = sum(scored) / len(scored) if scored else float("nan")
    legend = "".join(
        f'<span style="background:{surprisal_colour(bits)}">{bits:g} bits</span>'
        for bits in (0, 2, 4, 8, 12, 16)
    )
    return f"""<!DOCTYPE html>
<html lang="zh">
<head>
<meta charset="utf-8">
<title>wenlm inspect: {html.escape(model_name)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Per-token surprisal</h1>
<p>Model: <code>{html.escape(model_name)}</code>. Each box is one token, coloured by its surprisal
(−log<sub>2</sub> of the probability the model gave it after the tokens before it). Hover a token for the
number and the model's top predictions at that point.</p>
<p class="legend">{legend}</p>
<p class="text">{"".join(token_span(record) for record in records)}</p>
<p>{len(scored)} predicted tokens, mean {mean:.3f} bits per token.</p>
</body>
</html>
"""
