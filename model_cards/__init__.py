"""Jinja templates of wenlm model cards (rendered by `wenlm.training.model_card`)."""
