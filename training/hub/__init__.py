"""Publishing: `validate` checks that a folder loads as Hub remote code in a process where wenlm cannot be imported
(`HIDE_WENLM` is that check, shared with the tests) and `publish` uploads (after re-rendering the card)."""
