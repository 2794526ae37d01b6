"""Fitting a study's cells: the laws (`laws`), the Huber log-residual fit and its bootstrap (`robust`), per-model and
joint fits with identification checks (`law_fit`), validated extrapolation (`holdout`), the repeated-data law
(`repetition`) and all of them over one study (`study_fit`)."""
