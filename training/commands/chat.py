"""`wenlm chat`: talk to a model in the terminal, its replies streamed (see docs/finetune-evaluate.md)."""

from __future__ import annotations

import sys
from typing import TextIO

from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

from wenlm.training.args import ChatArguments, ModelSourceArguments, SamplingArguments, parse_options
from wenlm.training.args.evaluation import SAMPLING_RENAMED
from wenlm.training.evaluation.chat import chat_loop
from wenlm.training.evaluation.generate import generation_kwargs
from wenlm.training.model_folder import check_model_folder, hub_errors_named

ARGUMENTS = (ModelSourceArguments, ChatArguments, SamplingArguments)


def parse_args(argv: list[str] | None) -> tuple[ModelSourceArguments, ChatArguments, SamplingArguments]:
    return parse_options(ARGUMENTS, argv, renamed=SAMPLING_RENAMED, command="chat")


def main(
    argv: list[str] | None = None, input_stream: TextIO | None = None, output_stream: TextIO | None = None
) -> list[dict]:
    source, options, sampling = parse_args(argv)
    check_model_folder(source.model)
    with hub_errors_named(source.model):
        tokenizer = AutoTokenizer.from_pretrained(
            source.model, revision=source.revision, trust_remote_code=True
        )
        model = AutoModelForCausalLM.from_pretrained(
            source.model, revision=source.revision, trust_remote_code=True
        ).eval()
    set_seed(sampling.seed)
    return chat_loop(
        model,
        tokenizer,
        input_stream or sys.stdin,
        output_stream or sys.stdout,
        system=options.system,
        generate_kwargs=generation_kwargs(sampling, tokenizer),
    )


if __name__ == "__main__":
    main()
