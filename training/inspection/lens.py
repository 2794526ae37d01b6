"""The logit lens: every layer's residual stream read through the model's final norm and output head, as if
the network stopped there."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.figure import Figure

from wenlm.training.inspection.tokens import next_token_bits
from wenlm.training.utils import markdown_table


def final_norm(model) -> torch.nn.Module:
    """The norm before the head: `model.model.norm` in wenlm and Llama (any decoder whose base model names it
    `norm`)."""
    norm = getattr(model.base_model, "norm", None)
    if norm is None:
        raise ValueError(
            f"{type(model).__name__} has no final norm at base_model.norm: the logit lens needs a "
            "Llama-style decoder (wenlm, Llama, Mistral, Qwen...)."
        )
    return norm


def lens_log_probs(model, hidden_states: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Log-probs (positions, vocab) read from each entry of `hidden_states` (batch of one): the embeddings, then
    each layer's output. transformers records the last layer's output after the final norm, so only the earlier
    entries get the norm here; the last one's reading is the model's own output distribution."""
    norm, head = final_norm(model), model.get_output_embeddings()
    readings = []
    for layer, hidden in enumerate(hidden_states):
        normed = hidden if layer == len(hidden_states) - 1 else norm(hidden)
        readings.append(torch.log_softmax(head(normed)[0].float(), dim=-1))
    return readings


def layer_name(layer: int, layers: int) -> str:
    return "embeddings" if layer == 0 else f"layer {layer}" + (" (output)" if layer == layers else "")


def lens_records(readings: list[torch.Tensor], ids: list[int], tokenizer) -> list[dict]:
    """Per layer: the top next-token prediction at each position, and the bits of the true next token (per
    position and their mean)."""
    target = torch.tensor(ids)
    records = []
    for layer, log_probs in enumerate(readings):
        bits = next_token_bits(log_probs, target)
        top_ids = log_probs.argmax(dim=-1).tolist()
        records.append(
            {
                "layer": layer,
                "name": layer_name(layer, len(readings) - 1),
                "mean_bits": bits.mean().item() if bits.numel() else None,
                "bits": bits.tolist(),
                "top_tokens": [tokenizer.decode([token_id]) for token_id in top_ids],
            }
        )
    return records


def lens_markdown(records: list[dict], pieces: list[str]) -> str:
    """Mean bits per layer, then one row per position (layers are few, positions many): each layer's top
    prediction for the next token and, in brackets, the bits it gave the true one."""
    summary = markdown_table(
        ["layer", "mean bits of the true next token"],
        [[record["name"], record["mean_bits"]] for record in records],
    )
    header = ["after token", "true next", *[record["name"] for record in records]]
    rows = [
        [
            cell_text(pieces[position]),
            cell_text(pieces[position + 1]),
            *[
                f"{cell_text(record['top_tokens'][position])} ({record['bits'][position]:.2f})"
                for record in records
            ],
        ]
        for position in range(len(pieces) - 1)
    ]
    return (
        "# Logit lens\n\nEach layer's residual stream read through the final norm and the output head.\n\n"
        + summary
        + "\n\n## Top prediction per position (bits of the true next token)\n\n"
        + markdown_table(header, rows)
        + "\n"
    )


def cell_text(piece: str) -> str:
    """A token inside a table cell: quoted so spaces show and newlines stay escaped (markdown_table escapes
    pipes)."""
    return repr(piece)


def plot_lens(records: list[dict]) -> Figure:
    figure = Figure(figsize=(6, 3.5), layout="constrained")
    axes = figure.subplots()
    axes.plot(
        [record["layer"] for record in records], [record["mean_bits"] for record in records], marker="o"
    )
    axes.set_xticks([record["layer"] for record in records])
    axes.set_xlabel("layer (0 = embeddings)")
    axes.set_ylabel("bits of the true next token (mean)")
    axes.set_title("Logit lens")
    axes.grid(alpha=0.3)
    return figure
