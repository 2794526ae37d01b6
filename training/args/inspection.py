"""Options of `wenlm inspect`."""

from __future__ import annotations

from dataclasses import dataclass, field

from wenlm.training.args.evaluation import check_at_least_one


@dataclass
class InspectArguments:
    """What `wenlm inspect` looks at (the model comes from ModelSourceArguments: --model, --revision)."""

    text: str = field(metadata={"help": "The text to run through the model (Chinese or English)."})
    output_dir: str = field(
        metadata={
            "help": "Folder for tokens.json/.html, logit_lens.json/.md/.png, attention.png and heads.json/.md."
        }
    )
    max_length: int = field(
        default=128,
        metadata={"help": "Inspect only the first N tokens of the text (the attention grid gets unreadable beyond)."},
    )
    top_k: int = field(default=5, metadata={"help": "Predictions shown for each token."})

    def __post_init__(self):
        if not self.text.strip():
            raise ValueError("--text is empty: give the text to inspect, e.g. --text '从前有一只小猫。'")
        check_at_least_one(max_length=self.max_length, top_k=self.top_k)
