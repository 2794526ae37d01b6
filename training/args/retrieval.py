"""Options of `wenlm embed` (the model comes from ModelSourceArguments: --model, --revision)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wenlm.training.args.evaluation import POOLINGS, check_at_least_one


@dataclass
class EmbedArguments:
    input: str | None = field(
        default=None,
        metadata={
            "help": "Texts to embed: a .txt file (one text per line; blank lines are skipped, ids are line numbers) "
            "or a .jsonl file (one object per line, the text in --text_column). Required unless "
            "--sentence_transformers true is given alone."
        },
    )
    output: str | None = field(
        default=None,
        metadata={
            "help": "The .parquet file to write: the input's columns, the id column and 'embedding' (a list of "
            "float32). An existing file is kept unless --overwrite. Required with --input."
        },
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
    sentence_transformers: bool = field(
        default=False,
        metadata={
            "help": "Also write the sentence-transformers files (modules.json, sentence_bert_config.json, "
            "1_Pooling/, 2_Normalize/ when --normalize) into the local --model folder, for this --pooling: "
            "SentenceTransformer(folder, trust_remote_code=True) then gives these vectors. Without --input, "
            "only the files are written."
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Replace an existing output file, and sentence-transformers files of the model folder that "
            "differ from the ones --sentence_transformers writes."
        },
    )

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"--pooling {self.pooling!r} is unknown; choose {' or '.join(POOLINGS)}.")
        if (self.input is None) != (self.output is None) or (
            self.input is None and not self.sentence_transformers
        ):
            raise ValueError(
                "give --input (the texts) and --output (the .parquet file to write), or --sentence_transformers "
                "true alone to write only the sentence-transformers files into the --model folder."
            )
        if self.output is not None and not self.output.endswith(".parquet"):
            raise ValueError(f"--output {self.output}: give a file name ending in .parquet.")
        check_at_least_one(
            per_device_eval_batch_size=self.per_device_eval_batch_size, max_length=self.max_length
        )
