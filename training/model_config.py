"""A model's WenLMConfig from the command's options: the preset, `--config_overrides` checked field by field
against the config's own annotations, the context length checked against `--block_size`, and a new model built
from it with the tokenizer's special tokens. Shared by pretraining and the scaling study's cells."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from transformers import PreTrainedTokenizerBase

from wenlm.modeling import PRESETS, WenLMConfig, WenLMForCausalLM
from wenlm.tokenization import stop_token_ids
from wenlm.training.args import ModelArguments


def parse_override_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _override_matches(value: Any, annotation: Any) -> bool:
    """Whether an override value (parsed as JSON) fits a WenLMConfig field annotation such as ``int | None``."""
    for kind in typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,):
        kind = typing.get_origin(kind) or kind
        if kind is type(None):
            if value is None:
                return True
        elif isinstance(value, bool) or kind is bool:  # JSON true/false is a bool, and a bool is not a number
            if kind is bool and isinstance(value, bool):
                return True
        elif kind is float and isinstance(value, (int, float)):
            return True
        elif isinstance(kind, type) and isinstance(value, kind):
            return True
    return False


# Field types of the config; rope_theta is accepted as a keyword and stored in rope_parameters.
_OVERRIDE_TYPES = {**WenLMConfig.__annotations__, "rope_theta": float}


_TYPE_WORDS = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    dict: "a JSON object",
}


def parse_config_overrides(model_args: ModelArguments) -> dict[str, Any]:
    """The --config_overrides fields, each a known WenLMConfig field with a value of that field's type."""
    overrides: dict[str, Any] = {}
    for item in filter(None, (model_args.config_overrides or "").split(",")):
        if "=" not in item:
            raise ValueError(f"--config_overrides: {item!r} is not of the form name=value.")
        name, value = item.split("=", 1)
        overrides[name.strip()] = parse_override_value(value.strip())
    unknown = set(overrides) - set(WenLMConfig().to_dict()) - {"rope_theta"}
    if unknown:
        raise ValueError(f"--config_overrides: unknown config fields {sorted(unknown)}.")
    for name, value in overrides.items():
        annotation = _OVERRIDE_TYPES.get(name)
        if (
            annotation is not None
            and not isinstance(annotation, str)
            and not _override_matches(value, annotation)
        ):
            kinds = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
            wanted = " or ".join(_TYPE_WORDS.get(typing.get_origin(k) or k, "null") for k in kinds)
            raise ValueError(
                f"--config_overrides: {name}={value!r} is not valid; {name} must be {wanted} "
                f"(e.g. --config_overrides {name}={WenLMConfig.from_preset(model_args.preset).to_dict().get(name)})."
            )
    return overrides


def build_config(
    model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, block_size: int
) -> WenLMConfig:
    overrides = parse_config_overrides(model_args)
    base = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = WenLMConfig.from_preset(model_args.preset, **{**base, **overrides})
    check_block_size(block_size, config, model_args.preset)
    return config


def check_block_size(block_size: int, config: WenLMConfig, preset: str) -> None:
    if block_size > config.max_position_embeddings:
        raise ValueError(
            f"--block_size {block_size} exceeds the context of preset {preset!r} (max_position_embeddings="
            f"{config.max_position_embeddings}); lower --block_size or pass "
            f"--config_overrides max_position_embeddings={block_size}."
        )


def check_tokenizer_matches(tokenizer: PreTrainedTokenizerBase, config: WenLMConfig) -> None:
    if len(tokenizer) > config.vocab_size:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but the model's vocab_size is {config.vocab_size}: ids "
            "past the embedding table would crash. Use the tokenizer the model was trained with, or call "
            "model.resize_token_embeddings(len(tokenizer))."
        )


def check_model_arguments(model_args: ModelArguments) -> None:
    if model_args.preset not in PRESETS:
        raise ValueError(f"--preset {model_args.preset!r} is unknown. Valid presets: {', '.join(PRESETS)}.")
    if model_args.loss_chunk_size < 0:
        raise ValueError(
            f"--loss_chunk_size must be a positive number of token rows, or 0 for the stock loss; "
            f"got {model_args.loss_chunk_size}."
        )


def new_model(model_args: ModelArguments, tokenizer, block_size: int) -> WenLMForCausalLM:
    config = build_config(model_args, tokenizer, block_size)
    check_tokenizer_matches(tokenizer, config)
    model = WenLMForCausalLM._from_config(config, attn_implementation=model_args.attn_implementation)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = stop_token_ids(tokenizer)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model
