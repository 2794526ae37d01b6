"""wenlm tokenizer: byte-level BPE for mixed Chinese/English text, with fixed special-token ids.

``tokenization_wenlm`` (the jieba remote-code tokenizer) is not imported here so that this package works
without the optional ``jieba`` dependency.
"""

from .bpe import (
    BOS_TOKEN,
    CHAT_ROLE_TOKENS,
    CHAT_TEMPLATE,
    END_OF_TURN_TOKEN,
    EOS_TOKEN,
    PAD_TOKEN,
    PII_PLACEHOLDERS,
    PRE_TOKENIZE_PATTERN,
    SPECIAL_TOKEN_IDS,
    SPLIT_RULES,
    split_rule_of,
    stop_token_ids,
    tokenizer_stats,
    train_tokenizer,
)

__all__ = [
    "BOS_TOKEN",
    "CHAT_ROLE_TOKENS",
    "CHAT_TEMPLATE",
    "END_OF_TURN_TOKEN",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "PII_PLACEHOLDERS",
    "PRE_TOKENIZE_PATTERN",
    "SPECIAL_TOKEN_IDS",
    "SPLIT_RULES",
    "split_rule_of",
    "stop_token_ids",
    "tokenizer_stats",
    "train_tokenizer",
]
