"""Jinja templates of wenlm model cards (rendered by `wenlm.training.hub.card`)."""
