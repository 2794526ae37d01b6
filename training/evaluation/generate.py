"""Generation through `pipeline("text-generation")`: continuations of prompts or replies to them as chat turns
(`wenlm generate`), special-token strings kept as text, and sampled continuations (`wenlm quickstart`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from transformers import pipeline, set_seed

from wenlm.tokenization import stop_token_ids
from wenlm.training.args import (
    ModelSourceArguments,
    SamplingArguments,
)
from wenlm.training.model_folder import check_model_folder, hub_errors_named


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


def sample_continuations(
    model_dir: str | Path, prompts: Sequence[str], max_new_tokens: int = 48, seed: int = 0
) -> list[str]:
    """Sampled continuations (top-p 0.9, temperature 0.8) of `prompts` by the model saved in `model_dir`."""
    set_seed(seed)
    generator = pipeline("text-generation", model=str(model_dir), trust_remote_code=True)
    outputs = generator(
        list(prompts), max_new_tokens=max_new_tokens, do_sample=True, top_p=0.9, temperature=0.8
    )
    return [output[0]["generated_text"] for output in outputs]
