"""`wenlm inspect`: what a model does with one text — the surprisal of every token, the logit lens (each layer's
residual stream read through the final norm and head) and every attention head's pattern."""
