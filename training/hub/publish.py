"""Publish a saved wenlm model folder to the Hugging Face Hub, after checking that strangers can load it.

`push_folder` refuses to upload a folder that fails `validate_folder` (see validate.py). Tokens come from the
standard places (`HF_TOKEN`, `hf auth login`) unless passed explicitly, and are never logged; `redact_secrets`
(tokens.py) masks them in any text that is about to be written or shown. Training commands take their Hub settings
out of TrainingArguments with `take_hub_push_from_args`, so that only wenlm publishes, once, at the end.
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError

from wenlm.training.cards.card import CARD_FILE, TRAINING_REPORT, is_generated_card, write_model_card
from wenlm.training.hub.validate import PUSH_IGNORE_PATTERNS, problems_message, validate_folder
from wenlm.training.utils.secrets import redact_secrets, take_hub_token_from_args

# Importers of this module use these names from here (pretrain, finetune, tests).
__all__ = [
    "HubPushError",
    "HubPushPlan",
    "push_command",
    "push_failure",
    "push_folder",
    "redact_secrets",
    "take_hub_push_from_args",
    "take_hub_token_from_args",
    "validate_folder",
]

logger = logging.getLogger(__name__)


# huggingface_hub 1.x raises httpx's errors and 2.x those of httpx2; its HfHubHTTPError derives from the one it
# uses, so the base of every network error (refused connection, timeout, HTTP status) is found there.
HUB_ERRORS = (*(base for base in HfHubHTTPError.__mro__ if base.__name__ == "HTTPError"), OSError)


class HubPushError(ValueError):
    """The Hub could not be reached or refused the upload (a ValueError, so the CLI prints it as a sentence)."""


def push_command(
    folder: str | os.PathLike, repo_id: str, private: bool = False, revision: str | None = None
) -> str:
    """The `wenlm push` command that uploads the folder later, as one can paste it into a shell."""
    words = ["wenlm", "push", "--model", str(folder), "--repo_id", repo_id]
    words += ["--private", "true"] if private else []
    words += ["--revision", revision] if revision else []
    return shlex.join(words)


def push_failure(
    error: Exception, folder: Path, repo_id: str, private: bool, revision: str | None
) -> HubPushError:
    """The sentence for a push that failed on the network or at the Hub: what happened, that the model is kept,
    and the command that pushes it later."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    reason = f"HTTP {status}" if status is not None else type(error).__name__
    detail = redact_secrets(str(error).splitlines()[0] if str(error) else "")
    return HubPushError(
        f"Could not push {folder} to {repo_id} at {constants.ENDPOINT} ({reason}: {detail}). The model is kept "
        f"in {folder}; once the Hub can be reached (check the network, HF_ENDPOINT and your token), push it with:"
        f"\n  {push_command(folder, repo_id, private, revision)}"
    )


@dataclass(frozen=True)
class HubPushPlan:
    """Where a training run publishes its final folder (from --push_to_hub, --hub_model_id, ...)."""

    repo_id: str
    private: bool = False
    revision: str | None = None

    def push(self, folder: str | os.PathLike) -> str:
        return push_folder(folder, self.repo_id, private=self.private, revision=self.revision)


def take_hub_push_from_args(training_args) -> HubPushPlan | None:
    """Takes the Hub settings out of TrainingArguments so that only wenlm publishes, once, at the end.

    Moves the token out (see `take_hub_token_from_args`) and turns the Trainer's own hub sync off: that sync creates
    the repo before training and uploads every checkpoint without validation, including training_args.bin and a
    Trainer-written card. Returns where to push the finished folder with `HubPushPlan.push`, or None without
    --push_to_hub.
    """
    take_hub_token_from_args(training_args)
    if not training_args.push_to_hub:
        return None
    plan = HubPushPlan(
        repo_id=training_args.hub_model_id or Path(training_args.output_dir).name,
        private=bool(getattr(training_args, "hub_private_repo", False)),
        revision=getattr(training_args, "hub_revision", None),
    )
    training_args.push_to_hub = False
    return plan


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    validate: bool = True,
    update_card: bool = True,
) -> str:
    """Uploads a saved model folder to the Hub and returns the commit URL.

    Validates first (see `validate_folder`) and raises ValueError listing every problem. Creates the repo if needed
    (`private` only applies to a new repo), creates the branch `revision` from main if it does not exist, and
    uploads everything except checkpoints/, runs/, checkpoint-*/, optimizer/RNG states (*.pt, *.pth) and
    training_args.bin. `token` defaults to HF_TOKEN or the `hf auth login` token.

    With `update_card`, a README.md that wenlm generated (see `card.is_generated_card`) is re-rendered with the
    full repo id, so its usage code loads from the Hub; a hand-written card is uploaded as it is.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist (or is not a directory)")
    if validate:
        problems = validate_folder(folder)
        if problems:
            raise ValueError(problems_message(folder, problems, target=repo_id))
    if not (token or get_token()):
        raise ValueError(
            "no Hugging Face token found: set the HF_TOKEN environment variable, run `hf auth login`, "
            "or pass token=..."
        )
    try:
        commit = _upload(folder, repo_id, private, revision, commit_message, token, update_card)
    except HUB_ERRORS as error:
        raise push_failure(error, folder, repo_id, private, revision) from None
    logger.info("pushed %s", commit.commit_url)
    return commit.commit_url


def _upload(
    folder: Path,
    repo_id: str,
    private: bool,
    revision: str | None,
    commit_message: str | None,
    token: str | None,
    update_card: bool,
):
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    if update_card and (folder / TRAINING_REPORT).is_file() and is_generated_card(folder / CARD_FILE):
        write_model_card(folder, repo_id=repo_id)
    if revision is not None and revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    message = redact_secrets(
        commit_message or f"Upload {folder.name} with wenlm", extra_secrets=[token or ""]
    )
    logger.info("uploading %s to %s (revision %s)", folder, repo_id, revision or "main")
    commit = api.upload_folder(
        folder_path=folder,
        repo_id=repo_id,
        revision=revision,
        commit_message=message,
        ignore_patterns=list(PUSH_IGNORE_PATTERNS),
    )
    return commit
