"""`wenlm generate`: continue prompts (or answer them as chat turns, with `--chat true`) through
`pipeline("text-generation")`."""

from __future__ import annotations

import json
import sys
import typing
import warnings
from dataclasses import fields
from pathlib import Path

from transformers import pipeline, set_seed

from wenlm.tokenization import stop_token_ids
from wenlm.training.args import (
    OPTIONS_FILE_SUFFIXES,
    GenerateArguments,
    ModelSourceArguments,
    SamplingArguments,
    parse_options,
)
from wenlm.training.model_folder import check_model_folder, hub_errors_named

# Old flag spellings of generate and chat, still accepted for one release with a FutureWarning.
RENAMED = {"--greedy": ("--do_sample", "false")}
GENERATE_OPTIONS = (ModelSourceArguments, GenerateArguments, SamplingArguments)
# The words HfArgumentParser reads as a boolean after a flag such as --json.
BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "t", "f", "y", "n", "1", "0"})


def generation_kwargs(sampling: SamplingArguments, tokenizer) -> dict:
    kwargs = dict(
        max_new_tokens=sampling.max_new_tokens,
        do_sample=sampling.do_sample,
        repetition_penalty=sampling.repetition_penalty,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=stop_token_ids(tokenizer),
    )
    if sampling.do_sample:
        kwargs.update(temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p)
    return kwargs


def read_prompts(options: GenerateArguments) -> list[str]:
    prompts = list(options.prompts)
    if options.prompts_file:
        path = Path(options.prompts_file)
        if not path.is_file():
            raise FileNotFoundError(f"--prompts_file {path}: no such file.")
        prompts += [
            line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
    if not prompts:
        raise ValueError(
            "No prompts: give them with --prompts P1 P2 ... or with --prompts_file (one per line)."
        )
    return prompts


def flag_values(dataclass_types: typing.Iterable[type]) -> dict[str, str]:
    """Every flag spelling of the options -> what follows it: 'switch' (an optional boolean), 'list' or 'one'."""
    kinds: dict[str, str] = {}
    for dataclass_type in dataclass_types:
        hints = typing.get_type_hints(dataclass_type)
        for option in fields(dataclass_type):
            hint = hints[option.name]
            kind = "switch" if hint is bool else "list" if typing.get_origin(hint) is list else "one"
            kinds[f"--{option.name}"] = kinds[f"--{option.name.replace('_', '-')}"] = kind
    return kinds


def split_positional_prompts(argv: list[str]) -> tuple[list[str], list[str]]:
    """(options, prompts): the old positional prompts (`wenlm generate --model M "prompt"`) apart from the options.

    A bare boolean flag keeps the next word only when it reads as a boolean, so that in the old
    `--json "Once upon a time"` the text stays a prompt.
    """
    kinds = flag_values(GENERATE_OPTIONS)
    options: list[str] = []
    prompts: list[str] = []
    expecting: str | None = None  # what the last flag still takes
    for index, item in enumerate(argv):
        if index == 0 and item.endswith(OPTIONS_FILE_SUFFIXES) and not item.startswith("-"):
            options.append(item)  # an options file, read by parse_options
        elif item.startswith("-"):
            options.append(item)
            expecting = None if "=" in item else kinds.get(item)
        elif expecting in ("one", "list") or (expecting == "switch" and item.lower() in BOOLEAN_WORDS):
            options.append(item)
            expecting = "list" if expecting == "list" else None
        else:
            prompts.append(item)
            expecting = None
    return options, prompts


def parse_args(argv: list[str] | None) -> tuple[ModelSourceArguments, GenerateArguments, SamplingArguments]:
    options, prompts = split_positional_prompts(list(sys.argv[1:] if argv is None else argv))
    if prompts:
        warnings.warn(
            "wenlm generate: positional prompts are deprecated and will be removed in the next release; "
            "use --prompts P1 P2 ...",
            FutureWarning,
            stacklevel=3,
        )
    source, generate_options, sampling = parse_options(
        GENERATE_OPTIONS, options, renamed=RENAMED, command="generate"
    )
    generate_options.prompts = [*generate_options.prompts, *prompts]
    return source, generate_options, sampling


def prompt_encode_kwargs(chat: bool) -> dict:
    """How prompts are encoded: a special-token string a user typed (``<|eos|>``, ``<|assistant|>``) stays text,
    so that in chat mode only the chat template writes control tokens and no prompt can forge a turn."""
    return {"sanitize_control_tokens": True} if chat else {"split_special_tokens": True}


def check_context(tokenizer, max_context: int, prompts: list[str], chat: bool, max_new_tokens: int) -> None:
    """Refuse, before generating, a prompt that with --max_new_tokens does not fit the model's context."""
    for number, prompt in enumerate(prompts, start=1):
        if chat:
            conversation = [{"role": "user", "content": prompt}]
            length = len(
                tokenizer.apply_chat_template(
                    conversation, add_generation_prompt=True, return_dict=True, **prompt_encode_kwargs(chat)
                )["input_ids"]
            )
        else:  # tokenized as the text-generation pipeline does it
            length = len(
                tokenizer(prompt, add_special_tokens=False, **prompt_encode_kwargs(chat))["input_ids"]
            )
        if length + max_new_tokens > max_context:
            raise ValueError(
                f"Prompt {number} is {length} tokens and --max_new_tokens is {max_new_tokens}: "
                f"{length + max_new_tokens} tokens, more than the model's context of {max_context} "
                "(max_position_embeddings). Lower --max_new_tokens or shorten the prompt "
                "(--prompts / --prompts_file)."
            )


def generate(
    source: ModelSourceArguments, sampling: SamplingArguments, prompts: list[str], chat: bool = False
) -> list[str]:
    check_model_folder(source.model)
    with hub_errors_named(source.model):
        generator = pipeline(
            "text-generation", model=source.model, revision=source.revision, trust_remote_code=True
        )
    check_context(
        generator.tokenizer,
        generator.model.config.max_position_embeddings,
        prompts,
        chat,
        sampling.max_new_tokens,
    )
    kwargs = {
        **generation_kwargs(sampling, generator.tokenizer),
        "tokenizer_encode_kwargs": prompt_encode_kwargs(chat),
    }
    set_seed(sampling.seed)
    if chat:
        conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
        outputs = generator(conversations, **kwargs)
        # The pipeline returns the conversation with the reply appended as the last message.
        return [output[0]["generated_text"][-1]["content"] for output in outputs]
    outputs = generator(prompts, **kwargs)
    return [output[0]["generated_text"] for output in outputs]


def main(argv: list[str] | None = None) -> list[str]:
    source, options, sampling = parse_args(argv)
    prompts = read_prompts(options)
    texts = generate(source, sampling, prompts, chat=options.chat)
    for prompt, text in zip(prompts, texts, strict=True):
        if options.json:
            print(json.dumps({"prompt": prompt, "generated_text": text}, ensure_ascii=False))
        else:
            print(text if not options.chat else f"{prompt}\n→ {text}")
            print()
    return texts


if __name__ == "__main__":
    main()
