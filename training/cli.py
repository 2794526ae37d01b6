"""The `wenlm` command: one sub-command per job, each with its own --help."""

from __future__ import annotations

import importlib
import os
import sys

# command -> one-line description; the command's code is wenlm.training.commands.<command>. Modules are imported
# only when their command runs, so `wenlm --help` stays fast: importing every command pulls in torch,
# transformers, datasets and scipy (seconds).
COMMANDS: dict[str, str] = {
    "quickstart": "the main job: tokenizer + model on the built-in corpus, then generate",
    "pretrain": "train a tokenizer and a model on a corpus with the stock Trainer",
    "corpus": "write the built-in corpus or a built-in task set to a JSONL file",
    "finetune": "fine-tune a wenlm model: chat/instruction SFT, classification or embeddings",
    "evaluate": "measure a model: language modelling, QA, translation, summaries, classes",
    "embed": "one vector per text from a model's hidden states, to a parquet file",
    "generate": "generate continuations of prompts through pipeline('text-generation')",
    "inspect": "look inside a model: per-token surprisal, logit lens, attention",
    "audit": "privacy audit: exposure of inserted canaries, extraction of training text",
    "chat": "chat with a model in the terminal, streaming its replies",
    "scaling": "data-scale study: train a grid of (model, data) cells, fit and plot laws",
    "push": "validate a model folder and upload it to the Hugging Face Hub",
    "card": "re-render a model folder's model card from its reports",
    "export": "convert a wenlm model to a stock Llama folder or a llama.cpp GGUF file",
}


def command_module(command: str) -> str:
    return f"wenlm.training.commands.{command}"


# Errors a user can fix from the message alone: shown without a traceback (WENLM_DEBUG=1 shows it).
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, ImportError, KeyError)


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: wenlm COMMAND [options]   (wenlm COMMAND --help for a command's options)",
        "",
        "commands:",
    ]
    lines += [f"  {name.ljust(width)}  {description}" for name, description in COMMANDS.items()]
    return "\n".join(lines)


def reference() -> str:
    """docs/cli.md: every command's options, from the dataclasses each command parses (`make docs` writes it)."""
    from wenlm.training.args.reference import reference_page

    entries = []
    for name, description in COMMANDS.items():
        module = importlib.import_module(command_module(name))
        entries.append((name, description, module.ARGUMENTS, getattr(module, "DEFAULTS", None)))
    return reference_page(entries)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv == ["--reference"]:
        print(reference(), end="")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"wenlm: unknown command {command!r}.\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(command_module(command))
    try:
        module.main(rest)
    except USER_ERRORS as error:
        if os.environ.get("WENLM_DEBUG"):
            raise
        print(f"wenlm {command}: error: {error}", file=sys.stderr)
        return 2
    # --help, or argparse refusing the options: an exit status, not a crash
    except SystemExit as exit_request:
        return exit_status(exit_request.code)
    return 0


def exit_status(code: int | str | None) -> int:
    """The status `sys.exit(code)` would give, printing a message code as sys.exit does."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
