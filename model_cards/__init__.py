"""Jinja templates of wenlm model cards (rendered by `wenlm.training.cards.card`)."""
