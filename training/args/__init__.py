"""Every `wenlm` command's options as dataclasses, parsed one way: `HfArgumentParser`.

One module per family of commands (`training`: pretrain, finetune, quickstart and the shared corpus options;
`evaluation`: evaluate, generate, chat; `scaling`; `publishing`: push, card, export, corpus) and `parsing`, the
parser they all use; everything is importable from `wenlm.training.args`.

Each command accepts `--a_b` and `--a-b`, an options file (YAML or JSON) as its first argument with later flags
winning, `--help` listing every option with its default, booleans as `--flag true|false`, and the same name for the
same thing in every command (`--model`, `--output_dir`, `--train_files`, `--validation_files`, `--max_samples`, and
TrainingArguments' names wherever training happens). Old spellings keep working for one release through
`renamed=`, with a warning that names the new one.
"""

from wenlm.training.args.evaluation import (
    EVALUATE_TASKS,
    PROMPT_FORMATS,
    ChatArguments,
    EvaluateArguments,
    GenerateArguments,
    ModelSourceArguments,
    SamplingArguments,
    check_at_least_one,
)
from wenlm.training.args.inspection import InspectArguments
from wenlm.training.args.parsing import (
    OPTIONS_FILE_SUFFIXES,
    options_file_to_argv,
    parse_options,
    rename_deprecated,
)
from wenlm.training.args.publishing import (
    EXPORT_FORMATS,
    CardArguments,
    CorpusArguments,
    ExportArguments,
    PushArguments,
    positional_model_to_flag,
)
from wenlm.training.args.scaling import (
    SCALING_DEFAULT_DATA_SIZES,
    SCALING_DEFAULT_PRESETS,
    SCALING_DEFAULT_VALIDATION_DOCS,
    SCALING_METRICS,
    ScalingArguments,
    parse_data_sizes,
)
from wenlm.training.args.training import (
    CPU_TRAINING_DEFAULTS,
    DEFAULT_LORA_TARGETS,
    DEFAULT_LOSS_CHUNK_SIZE,
    DEFAULT_MAX_BLOCK_SIZE,
    DEFAULT_VOCAB_SIZE,
    FINETUNE_RENAMED,
    FINETUNE_TASKS,
    FINETUNE_TRAINING_DEFAULTS,
    PRETRAIN_DEFAULTS,
    QUICKSTART_DEFAULTS,
    QUICKSTART_VOCAB_SIZE,
    DataArguments,
    FinetuneArguments,
    ModelArguments,
    QuickstartArguments,
    validation_spec,
)

__all__ = [
    "CPU_TRAINING_DEFAULTS",
    "PRETRAIN_DEFAULTS",
    "CardArguments",
    "ChatArguments",
    "CorpusArguments",
    "DEFAULT_LORA_TARGETS",
    "DEFAULT_LOSS_CHUNK_SIZE",
    "DEFAULT_MAX_BLOCK_SIZE",
    "DEFAULT_VOCAB_SIZE",
    "DataArguments",
    "EVALUATE_TASKS",
    "EXPORT_FORMATS",
    "EvaluateArguments",
    "ExportArguments",
    "FINETUNE_RENAMED",
    "FINETUNE_TASKS",
    "FINETUNE_TRAINING_DEFAULTS",
    "FinetuneArguments",
    "GenerateArguments",
    "InspectArguments",
    "ModelArguments",
    "ModelSourceArguments",
    "OPTIONS_FILE_SUFFIXES",
    "PROMPT_FORMATS",
    "PushArguments",
    "QUICKSTART_DEFAULTS",
    "QUICKSTART_VOCAB_SIZE",
    "QuickstartArguments",
    "SCALING_DEFAULT_DATA_SIZES",
    "SCALING_DEFAULT_PRESETS",
    "SCALING_DEFAULT_VALIDATION_DOCS",
    "SCALING_METRICS",
    "SamplingArguments",
    "ScalingArguments",
    "check_at_least_one",
    "options_file_to_argv",
    "parse_data_sizes",
    "parse_options",
    "positional_model_to_flag",
    "rename_deprecated",
    "validation_spec",
]
