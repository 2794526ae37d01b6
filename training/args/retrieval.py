"""Options of `wenlm embed` (the model comes from ModelSourceArguments: --model, --revision)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wenlm.training.args.evaluation import check_at_least_one

POOLINGS = ("mean", "last")


@dataclass
class EmbedArguments:
    input: str = field(
        metadata={
            "help": "Texts to embed: a .txt file (one text per line; blank lines are skipped, ids are line numbers) "
            "or a .jsonl file (one object per line, the text in --text_column)."
        }
    )
    output: str = field(
        metadata={
            "help": "The .parquet file to write: the input's columns, the id column and 'embedding' (a list of "
            "float32). An existing file is kept unless --overwrite."
        }
    )
    text_column: str = field(
        default="text",
        metadata={"help": "The field holding the text (a .txt file's lines go to a column of this name)."},
    )
    id_column: str = field(
        default="id",
        metadata={
            "help": "The field holding each row's id; when no .jsonl row has it (and for .txt), it is added with the "
            "line number."
        },
    )
    pooling: str = field(
        default="mean",
        metadata={
            "help": "mean: the average of the last hidden states over the text's tokens (padding excluded); last: "
            "the hidden state of the text's last token, which alone has seen the whole text in a causal model.",
            "choices": POOLINGS,
        },
    )
    normalize: bool = field(
        default=True, metadata={"help": "Scale every vector to unit length (cosine = dot)."}
    )
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Texts per forward pass."})
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Embed only the first N tokens of each text (default: the model's context length)."
        },
    )
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing output file."})

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"--pooling {self.pooling!r} is unknown; choose {' or '.join(POOLINGS)}.")
        if not self.output.endswith(".parquet"):
            raise ValueError(f"--output {self.output}: give a file name ending in .parquet.")
        check_at_least_one(
            per_device_eval_batch_size=self.per_device_eval_batch_size, max_length=self.max_length
        )
