"""Publishing: `validate` checks that a folder loads as Hub remote code in a process where wenlm cannot be imported
(`HIDE_WENLM` is that check, shared with the tests), `tokens` finds and redacts access tokens, `publish` uploads,
`push` is `wenlm push`, `card` renders model cards from the templates in model_cards/, and `card_command` is
`wenlm card`.
"""
