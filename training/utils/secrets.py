"""Hugging Face access tokens: where this process finds them, and masking them in anything written or shown.

Tokens come from the standard places (`HF_TOKEN`, `hf auth login`) unless passed explicitly, and are never logged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import constants

HF_TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{20,}")
REDACTED = "hf_***"
# Shorter "tokens" are not masked: replacing every occurrence of a short string would corrupt unrelated text.
MIN_SECRET_LENGTH = 8


def current_tokens() -> list[str]:
    """Token values this process could authenticate with, read without any network call."""
    tokens = [os.environ.get(name, "") for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")]
    for token_file in {constants.HF_TOKEN_PATH, os.path.join(constants.HF_HOME, "token")}:
        try:
            tokens.append(Path(token_file).read_text(encoding="utf-8").strip())
        except OSError:
            pass
    return [token.strip() for token in tokens if len(token.strip()) >= MIN_SECRET_LENGTH]


def redact_secrets(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Mask Hugging Face access tokens in `text`.

    Masks anything shaped like an HF token (`hf_` + 20 or more letters/digits), the token this process is configured
    with (HF_TOKEN, HUGGING_FACE_HUB_TOKEN, the `hf auth login` token file) and any `extra_secrets`, whatever their
    shape. Use it on everything that gets saved or printed: reports, saved training arguments, logs.
    """
    if not isinstance(text, str):
        raise TypeError(f"redact_secrets expects a str, got {type(text).__name__}")
    secrets = sorted(
        {secret for secret in [*current_tokens(), *extra_secrets] if len(secret) >= MIN_SECRET_LENGTH},
        key=len,
        reverse=True,  # longest first, so a token containing another secret is masked whole
    )
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return HF_TOKEN_PATTERN.sub(REDACTED, text)


def take_hub_token_from_args(args) -> None:
    """Moves `hub_token` out of `args` (TrainingArguments, or a command's options) into this process's HF_TOKEN.

    The Trainer pickles its TrainingArguments into training_args.bin (in the output folder and every checkpoint);
    a token left in them would be saved in plain bytes. huggingface_hub reads HF_TOKEN on every call, so the token
    still authenticates this process, and only this process (the variable is not written anywhere).
    """
    token = getattr(args, "hub_token", None)
    if token:
        os.environ["HF_TOKEN"] = token
        args.hub_token = None
