"""One forward pass over a text, written out as pictures and tables (what `wenlm inspect` shows): per-token
surprisal, the logit lens and every attention head."""

from __future__ import annotations

from pathlib import Path

import torch

from wenlm.training.inspection.attention import (
    cjk_font,
    eager_attention,
    head_statistics,
    heads_markdown,
    plot_attention,
)
from wenlm.training.inspection.attention_html import attention_page
from wenlm.training.inspection.html import tokens_page
from wenlm.training.inspection.lens import lens_log_probs, lens_markdown, lens_records, plot_lens
from wenlm.training.inspection.tokens import encode, plot_tokens, token_records
from wenlm.training.utils import write_atomically, write_json

OUTPUT_FILES = (
    "tokens.json",
    "tokens.html",
    "tokens.png",
    "logit_lens.json",
    "logit_lens.md",
    "logit_lens.png",
    "attention.png",
    "attention.html",
    "heads.json",
    "heads.md",
)


@torch.no_grad()
def forward(model, ids: list[int]):
    """Logits, every layer's hidden state and attention weights for one sequence, on the eager path."""
    with eager_attention(model):
        return model(
            torch.tensor([ids], device=model.device),
            output_hidden_states=True,
            output_attentions=True,
            use_cache=False,
        )


def inspect(
    model,
    tokenizer,
    text: str,
    output_dir: str | Path,
    max_length: int = 128,
    top_k: int = 5,
    model_name: str = "",
) -> dict:
    """Write every file of OUTPUT_FILES to `output_dir`; returns what went into the JSON files."""
    output_dir = Path(output_dir)
    ids, pieces = encode(tokenizer, text, max_length)
    if len(ids) < 2:
        raise ValueError("--text gives no token after the start token: nothing to predict.")
    outputs = forward(model.eval(), ids)
    log_probs = torch.log_softmax(outputs.logits[0].float(), dim=-1).cpu()
    tokens = token_records(log_probs, ids, pieces, tokenizer, top_k)
    lens = lens_records(
        [reading.cpu() for reading in lens_log_probs(model, outputs.hidden_states)], ids, tokenizer
    )
    attentions = [weights.cpu() for weights in outputs.attentions]
    heads = head_statistics(attentions)
    font = cjk_font()

    write_json(output_dir / "tokens.json", {"model": model_name, "text": text, "tokens": tokens})
    write_atomically(output_dir / "tokens.html", tokens_page(tokens, model_name))
    plot_tokens(tokens, font).savefig(output_dir / "tokens.png", dpi=150)
    write_json(output_dir / "logit_lens.json", {"model": model_name, "tokens": pieces, "layers": lens})
    write_atomically(output_dir / "logit_lens.md", lens_markdown(lens, pieces))
    plot_lens(lens).savefig(output_dir / "logit_lens.png", dpi=120)
    plot_attention(attentions, pieces, font).savefig(output_dir / "attention.png", dpi=110)
    write_atomically(output_dir / "attention.html", attention_page(attentions, pieces, heads, model_name))
    write_json(output_dir / "heads.json", {"model": model_name, "tokens": pieces, "heads": heads})
    write_atomically(output_dir / "heads.md", heads_markdown(heads))
    return {"tokens": tokens, "logit_lens": lens, "heads": heads}
