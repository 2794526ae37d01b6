"""`wenlm push --model DIR --repo_id NAME/MODEL`: check that a model folder loads for strangers, then upload it.

Validates a saved model folder (clean load with trust_remote_code, auto_map, remote-code imports, weights,
tokenizer, model card metadata, no tokens in files) and uploads it to the Hugging Face Hub. Checkpoints, optimizer
states and training_args.bin are not uploaded. The token comes from HF_TOKEN or `hf auth login` (or --hub_token);
it is never printed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from wenlm.training.args import PushArguments, parse_options, positional_model_to_flag
from wenlm.training.hub.publish import push_folder, take_hub_token_from_args
from wenlm.training.hub.validate import problems_message, validate_folder

ARGUMENTS = (PushArguments,)
# Old spellings, kept working for one release with a FutureWarning (`--repo-id`, `--commit-message` and
# `--check-only` need no entry: every option is accepted with dashes too).
RENAMED = {
    "--no-validate": ("--validate", "false"),
    "--no_validate": ("--validate", "false"),
    "--no-card-update": ("--update_card", "false"),
    "--no_card_update": ("--update_card", "false"),
    "--token": "--hub_token",
}


def check_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if len(parts) > 2 or not all(parts) or any(part in (".", "..") for part in parts):
        raise ValueError(f"--repo_id {repo_id!r}: expected NAME/MODEL (or MODEL for your own account)")


def parse_args(argv: list[str] | None = None) -> PushArguments:
    (args,) = parse_options(
        ARGUMENTS, positional_model_to_flag(argv, "push"), renamed=RENAMED, command="push"
    )
    return args


def main(argv: list[str] | None = None) -> str | None:
    args = parse_args(argv)
    # From here on the token lives only in this process's HF_TOKEN, never in `args` that could be printed.
    take_hub_token_from_args(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    check_repo_id(args.repo_id)
    folder = Path(args.model)
    if not folder.is_dir():
        raise FileNotFoundError(f"--model {folder}: the model folder does not exist (or is not a directory)")
    if args.check_only:
        problems = validate_folder(folder)
        if problems:
            raise ValueError(problems_message(folder, problems))
        print(f"{folder} is ready to publish")
        return None
    commit_url = push_folder(
        folder,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        validate=args.validate,
        update_card=args.update_card,
    )
    print(commit_url)
    return commit_url


if __name__ == "__main__":
    main()
