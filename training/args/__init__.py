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

from __future__ import annotations

import importlib

# name -> the module of this package that defines it. Imported on first use (PEP 562), so that a command whose
# options need no TrainingArguments (corpus, card, push, export, ...) does not pay for importing the Trainer's
# stack at start-up (seconds: transformers.trainer_utils imports peft).
_DEFINED_IN = {
    "CPU_TRAINING_DEFAULTS": "training",
    "CardArguments": "publishing",
    "ChatArguments": "evaluation",
    "CorpusArguments": "publishing",
    "DEFAULT_LORA_TARGETS": "training",
    "DEFAULT_LOSS_CHUNK_SIZE": "training",
    "DEFAULT_MAX_BLOCK_SIZE": "training",
    "DEFAULT_VOCAB_SIZE": "training",
    "DataArguments": "training",
    "EVALUATE_TASKS": "evaluation",
    "EXPORT_FORMATS": "publishing",
    "EvaluateArguments": "evaluation",
    "ExportArguments": "publishing",
    "FINETUNE_RENAMED": "training",
    "FINETUNE_TASKS": "training",
    "FINETUNE_TRAINING_DEFAULTS": "training",
    "FinetuneArguments": "training",
    "GenerateArguments": "evaluation",
    "InspectArguments": "inspection",
    "ModelArguments": "training",
    "ModelSourceArguments": "evaluation",
    "OPTIONS_FILE_SUFFIXES": "parsing",
    "PRETRAIN_DEFAULTS": "training",
    "PROMPT_FORMATS": "evaluation",
    "PushArguments": "publishing",
    "QUICKSTART_DEFAULTS": "training",
    "QUICKSTART_VOCAB_SIZE": "training",
    "QuickstartArguments": "training",
    "SCALING_DATA_DEFAULTS": "scaling",
    "SCALING_DEFAULT_DATA_SIZES": "scaling",
    "SCALING_DEFAULT_PRESETS": "scaling",
    "SCALING_DEFAULT_VALIDATION_DOCS": "scaling",
    "SCALING_METRICS": "scaling",
    "SamplingArguments": "evaluation",
    "ScalingArguments": "scaling",
    "check_at_least_one": "evaluation",
    "options_file_to_argv": "parsing",
    "parse_data_sizes": "scaling",
    "parse_options": "parsing",
    "positional_model_to_flag": "publishing",
    "rename_deprecated": "parsing",
    "validation_spec": "training",
}


def __getattr__(name: str):
    if name not in _DEFINED_IN:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_DEFINED_IN[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_DEFINED_IN])


__all__ = sorted(_DEFINED_IN)
