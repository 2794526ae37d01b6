"""Options of `wenlm evaluate`, `generate` and `chat`."""

from __future__ import annotations

from dataclasses import dataclass, field

# ---------------------------------------------------------------------------- wenlm evaluate, generate, chat

EVALUATE_TASKS = ("lm", "qa", "translate", "summarize", "classification", "retrieval")
PROMPT_FORMATS = ("auto", "chat", "plain")
POOLINGS = ("mean", "last")
RETRIEVERS = ("dense", "bm25_jieba", "bm25_char_ngrams")
CONTEXT_SOURCES = ("oracle", "retrieved", "none")
# Old flag spellings of generate and chat, still accepted for one release with a FutureWarning.
SAMPLING_RENAMED = {"--greedy": ("--do_sample", "false")}


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
            "references), classification or retrieval (recall@1/5/10 and MRR of question rows searched "
            "against story rows). Required unless --harness is given.",
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
        metadata={
            "help": "--harness: examples before each question (default: each task's own, 0 for wenlm's)."
        },
    )
    max_samples: int | None = field(
        default=None,
        metadata={"help": "Evaluate only the first N rows/documents (with --harness: per task)."},
    )
    per_device_eval_batch_size: int = field(
        default=16, metadata={"help": "Rows or windows per forward pass."}
    )
    max_new_tokens: int = field(
        default=64, metadata={"help": "Generation tasks: the longest answer, in tokens."}
    )
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
    retriever: str | None = field(
        default=None,
        metadata={
            "help": "--task retrieval, and --task qa --context retrieved: dense (cosine similarity of "
            "--pooling vectors from --embedding_model's final hidden states), bm25_jieba (BM25 over jieba "
            "words; needs pip install 'wenlm[zh]') or bm25_char_ngrams (BM25 over CJK characters and "
            "character pairs, and English words). Default dense. The BM25 retrievers load no model.",
            "choices": RETRIEVERS,
        },
    )
    pooling: str = field(
        default="mean",
        metadata={"help": "--retriever dense: mean or last (see `wenlm embed --help`).", "choices": POOLINGS},
    )
    embedding_model: str | None = field(
        default=None,
        metadata={
            "help": "--retriever dense: the model folder or Hub id whose hidden states embed questions and "
            "stories (e.g. a contrastively fine-tuned one). Default: --model."
        },
    )
    context: str | None = field(
        default=None,
        metadata={
            "help": "--task qa on question rows {kind: question, text, answer, story_id} (`wenlm corpus "
            "--kind retrieval`): what precedes each question in the prompt. oracle: its own story; "
            "retrieved: the --top_k stories --retriever finds, best first, separated by blank lines; none: "
            "nothing. Default: retrieved when --retrieve_from is given, else the rows' own "
            "context/question/answer (plain qa).",
            "choices": CONTEXT_SOURCES,
        },
    )
    retrieve_from: str | None = field(
        default=None,
        metadata={
            "help": "--task qa --context oracle|retrieved: the stories, a .jsonl file of a `wenlm corpus "
            "--kind retrieval` set (its story rows) or of any rows with 'id' and 'text'. Default: the story "
            "rows of --validation_files."
        },
    )
    top_k: int = field(
        default=3, metadata={"help": "--context retrieved: the stories put before each question."}
    )
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
            raise ValueError(
                "--task and --harness are separate runs: give --task (wenlm's own scoring) or "
                "--harness (lm-evaluation-harness tasks), not both."
            )
        if not self.harness and self.task is None:
            raise ValueError(
                "--task is required (lm, qa, translate, summarize, classification or "
                "retrieval), unless --harness names lm-evaluation-harness tasks."
            )
        if self.task is not None and not self.validation_files:
            raise ValueError(f"--task {self.task} needs --validation_files: the files to evaluate on.")
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise ValueError(f"--num_fewshot must be 0 or more, got {self.num_fewshot}.")
        check_at_least_one(
            max_samples=self.max_samples,
            per_device_eval_batch_size=self.per_device_eval_batch_size,
            max_new_tokens=self.max_new_tokens,
            top_k=self.top_k,
        )
        self.check_retrieval_options()

    def check_retrieval_options(self) -> None:
        """Resolve the defaults of the retrieval options and refuse those the task does not use."""
        for name, value, choices in (
            ("retriever", self.retriever, RETRIEVERS),
            ("pooling", self.pooling, POOLINGS),
            ("context", self.context, CONTEXT_SOURCES),
        ):
            if value is not None and value not in choices:
                raise ValueError(f"--{name} {value!r} is unknown; choose one of {', '.join(choices)}.")
        if self.task != "qa" and (self.context is not None or self.retrieve_from is not None):
            raise ValueError(
                "--context and --retrieve_from build retrieval-augmented prompts for --task qa; "
                f"drop them for --task {self.task}."
            )
        if self.context is None and self.retrieve_from is not None:
            self.context = "retrieved"
        if self.context == "none" and self.retrieve_from is not None:
            raise ValueError("--context none puts no story before the question; drop --retrieve_from.")
        if self.task == "retrieval" or self.context == "retrieved":
            self.retriever = self.retriever or "dense"
        elif self.retriever is not None:
            raise ValueError(
                "--retriever is used by --task retrieval and by --task qa --context retrieved "
                "(or --retrieve_from); drop it or give one of those."
            )
        if self.embedding_model is not None and self.retriever != "dense":
            raise ValueError("--embedding_model is used only by --retriever dense; drop it.")

    def result_name(self) -> str:
        """The name of this run's eval_results.json entry; retrievers and context sources get names of their
        own so that their results sit side by side (retrieval_bm25_jieba, qa_retrieved_dense_mean_top3,
        qa_oracle)."""
        method = f"dense_{self.pooling}" if self.retriever == "dense" else self.retriever
        if self.task == "retrieval":
            return f"retrieval_{method}"
        if self.context == "retrieved":
            return f"qa_retrieved_{method}_top{self.top_k}"
        return f"{self.task}_{self.context}" if self.context else self.task


@dataclass
class SamplingArguments:
    """How `wenlm generate` and `wenlm chat` pick tokens (one definition, so both spell them the same)."""

    max_new_tokens: int = field(
        default=64, metadata={"help": "The longest continuation or reply, in tokens."}
    )
    do_sample: bool = field(
        default=True,
        metadata={"help": "Sample with the options below; false always takes the likeliest token."},
    )
    temperature: float = field(default=0.8, metadata={"help": "Sampling temperature (> 0)."})
    top_k: int = field(default=50, metadata={"help": "Sample among the k likeliest tokens; 0 turns it off."})
    top_p: float = field(
        default=0.9, metadata={"help": "Nucleus sampling: the smallest set with this mass, (0, 1]."}
    )
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
    prompts: list[str] = field(
        default_factory=list, metadata={"help": "Texts to continue (or to answer, with --chat)."}
    )
    prompts_file: str | None = field(
        default=None, metadata={"help": "A UTF-8 file with one prompt per line."}
    )
    chat: bool = field(
        default=False,
        metadata={"help": "Send each prompt as a user turn through the chat template; print only the reply."},
    )
    json: bool = field(default=False, metadata={"help": "Print one JSON object per prompt."})


@dataclass
class ChatArguments:
    system: str | None = field(
        default=None, metadata={"help": "A system message that starts every conversation."}
    )
