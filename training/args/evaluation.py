"""Options of `wenlm evaluate`, `generate` and `chat`."""

from __future__ import annotations

from dataclasses import dataclass, field

# ---------------------------------------------------------------------------- wenlm evaluate, generate, chat

EVALUATE_TASKS = ("lm", "qa", "translate", "summarize", "classification")
PROMPT_FORMATS = ("auto", "chat", "plain")


def check_at_least_one(**values: int | None) -> None:
    """Raise naming the option when a count that may be unset (None) is set below 1."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be at least 1, got {value}.")


@dataclass
class ModelSourceArguments:
    """The model a command loads (evaluate, generate, chat)."""

    model: str = field(metadata={"help": "Model folder or Hugging Face Hub id."})
    revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a Hub model."})


@dataclass
class EvaluateArguments:
    task: str | None = field(
        default=None,
        metadata={
            "help": "lm (loss, perplexity, bits per byte), qa, translate, summarize (generation scored against "
            "references) or classification. Required unless --harness is given.",
            "choices": EVALUATE_TASKS,
        },
    )
    validation_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Evaluation data: .txt (lm only: documents separated by blank lines), .jsonl, .json, .csv or "
            ".parquet. Several files are read in order as one set. Required with --task; with --harness, the "
            "rows of the wenlm_* tasks (default: the built-in validation sets)."
        },
    )
    harness: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Run lm-evaluation-harness instead of --task: task names, comma-separated or several. "
            "wenlm_qa_en, wenlm_qa_zh, wenlm_classify_en, wenlm_classify_zh (wenlm_qa, wenlm_classify, wenlm: "
            "the pairs, all four) score the built-in task sets; any lm-eval task, group or tag (hellaswag, "
            "arc_easy, cmmlu, ceval-valid, ...) runs on its own data, which offline must already be cached. "
            "Needs the harness extra (pip install 'wenlm[harness]')."
        },
    )
    num_fewshot: int | None = field(
        default=None,
        metadata={"help": "--harness: examples before each question (default: each task's own, 0 for wenlm's)."},
    )
    max_samples: int | None = field(
        default=None, metadata={"help": "Evaluate only the first N rows/documents (with --harness: per task)."}
    )
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "Rows or windows per forward pass."})
    max_new_tokens: int = field(default=64, metadata={"help": "Generation tasks: the longest answer, in tokens."})
    prompt_format: str = field(
        default="auto",
        metadata={
            "help": "Generation tasks: chat renders the prompt as a user turn with the chat template; plain feeds "
            "it as text and cuts the answer at the first newline; auto picks chat for models fine-tuned on chat "
            "turns (their training_report.json says task sft) and plain for the rest.",
            "choices": PROMPT_FORMATS,
        },
    )
    text_column: str = field(default="text", metadata={"help": "lm/classification: the text column."})
    label_column: str = field(default="label", metadata={"help": "classification: the label column."})
    save_results: bool = field(
        default=True,
        metadata={
            "help": "For a local model folder, merge the metrics into its eval_results.json and re-render its "
            "model card; false only prints them."
        },
    )

    def __post_init__(self):
        if isinstance(self.validation_files, str):
            self.validation_files = [self.validation_files]
        if isinstance(self.harness, str):
            self.harness = [self.harness]
        if self.harness and self.task is not None:
            raise ValueError("--task and --harness are separate runs: give --task (wenlm's own scoring) or "
                             "--harness (lm-evaluation-harness tasks), not both.")
        if not self.harness and self.task is None:
            raise ValueError("--task is required (lm, qa, translate, summarize or classification), unless "
                             "--harness names lm-evaluation-harness tasks.")
        if self.task is not None and not self.validation_files:
            raise ValueError(f"--task {self.task} needs --validation_files: the files to evaluate on.")
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise ValueError(f"--num_fewshot must be 0 or more, got {self.num_fewshot}.")
        check_at_least_one(
            max_samples=self.max_samples,
            per_device_eval_batch_size=self.per_device_eval_batch_size,
            max_new_tokens=self.max_new_tokens,
        )


@dataclass
class SamplingArguments:
    """How `wenlm generate` and `wenlm chat` pick tokens (one definition, so both spell them the same)."""

    max_new_tokens: int = field(default=64, metadata={"help": "The longest continuation or reply, in tokens."})
    do_sample: bool = field(
        default=True, metadata={"help": "Sample with the options below; false always takes the likeliest token."}
    )
    temperature: float = field(default=0.8, metadata={"help": "Sampling temperature (> 0)."})
    top_k: int = field(default=50, metadata={"help": "Sample among the k likeliest tokens; 0 turns it off."})
    top_p: float = field(default=0.9, metadata={"help": "Nucleus sampling: the smallest set with this mass, (0, 1]."})
    repetition_penalty: float = field(default=1.0, metadata={"help": "Above 1 discourages repeated tokens."})
    seed: int = field(default=0, metadata={"help": "Same seed and options, same samples."})

    def __post_init__(self):
        check_at_least_one(max_new_tokens=self.max_new_tokens)
        if self.temperature <= 0:
            raise ValueError(
                f"--temperature must be positive (use --do_sample false for deterministic output), "
                f"got {self.temperature}."
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"--top_p must be in (0, 1], got {self.top_p}.")
        if self.top_k < 0:
            raise ValueError(f"--top_k must be 0 (off) or positive, got {self.top_k}.")
        if self.repetition_penalty <= 0:
            raise ValueError(f"--repetition_penalty must be positive, got {self.repetition_penalty}.")


@dataclass
class GenerateArguments:
    prompts: list[str] = field(default_factory=list, metadata={"help": "Texts to continue (or to answer, with --chat)."})
    prompts_file: str | None = field(default=None, metadata={"help": "A UTF-8 file with one prompt per line."})
    chat: bool = field(
        default=False,
        metadata={"help": "Send each prompt as a user turn through the chat template; print only the reply."},
    )
    json: bool = field(default=False, metadata={"help": "Print one JSON object per prompt."})


@dataclass
class ChatArguments:
    system: str | None = field(default=None, metadata={"help": "A system message that starts every conversation."})
