"""`wenlm push DIR --repo-id NAME/MODEL`: check that a model folder loads for strangers, then upload it.

The token comes from HF_TOKEN or `hf auth login` (or --token); it is never printed.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from wenlm.training.hub.publish import push_folder, take_hub_token_from_args, validate_folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wenlm push",
        description="Validate a saved model folder (clean load with trust_remote_code, auto_map, remote-code "
        "imports, weights, tokenizer, model card metadata, no tokens in files) and upload it to the Hugging Face "
        "Hub. Checkpoints, optimizer states and training_args.bin are not uploaded.",
    )
    parser.add_argument("folder", type=Path, help="model folder written by wenlm pretrain / finetune")
    parser.add_argument("--repo-id", "--repo_id", dest="repo_id", required=True,
                        help="Hub repository, NAME/MODEL (created if it does not exist)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--revision", default=None, help="branch to push to (created from main if missing)")
    parser.add_argument("--commit-message", "--commit_message", dest="commit_message", default=None)
    parser.add_argument("--no-validate", "--no_validate", dest="validate", action="store_false",
                        help="skip the checks (not recommended: the upload may not load for anyone)")
    parser.add_argument("--no-card-update", "--no_card_update", dest="update_card", action="store_false",
                        help="upload a wenlm-generated README.md as it is instead of re-rendering it with the repo id")
    parser.add_argument("--check-only", "--check_only", dest="check_only", action="store_true",
                        help="run the checks and stop; nothing is uploaded")
    parser.add_argument("--token", dest="hub_token", default=None,
                        help="Hub access token (default: HF_TOKEN or the `hf auth login` token)")
    return parser


def check_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if len(parts) > 2 or not all(parts) or any(part in (".", "..") for part in parts):
        raise ValueError(f"--repo-id {repo_id!r}: expected NAME/MODEL (or MODEL for your own account)")


def main(argv: list[str] | None = None) -> str | None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    check_repo_id(args.repo_id)
    if not args.folder.is_dir():
        raise FileNotFoundError(f"model folder {args.folder} does not exist (or is not a directory)")
    # From here on the token lives only in this process's HF_TOKEN, never in `args` that could be printed.
    take_hub_token_from_args(args)
    if args.check_only:
        problems = validate_folder(args.folder)
        if problems:
            bullets = "\n".join(f"- {problem}" for problem in problems)
            raise ValueError(f"{args.folder} is not ready to publish:\n{bullets}")
        print(f"{args.folder} is ready to publish")
        return None
    commit_url = push_folder(
        args.folder,
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
