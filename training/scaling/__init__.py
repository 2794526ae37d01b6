"""`wenlm scaling`, a data-scale study, one module per part:

* :mod:`.study` — the command: parses the options, trains the missing cells (in worker processes with
  ``--workers``), renders the report, fits the repetition sub-study;
* :mod:`.grid` — the model sizes of the grid (the data sizes are parsed with the options, in training/args/);
* :mod:`.planning` — which cells, in what order, their time estimate, ``--budget_minutes`` and worker shares;
* :mod:`.study_data` — the study's one tokenizer, its nested token stream, the early-stopping tail and the
  shared, document-aligned validation set;
* :mod:`.cells` — training and evaluating one (model, D) cell in its regime (converged or single_epoch);
* :mod:`.study_folder` — study.json and the per-cell files a rerun resumes from;
* :mod:`.laws` — the scaling laws and what a fitted law predicts;
* :mod:`.robust` — the Huber log-residual fit of one law (L-BFGS-B from a grid of starts) and its bootstrap;
* :mod:`.law_fit` — the per-model and joint fits with their identification checks;
* :mod:`.holdout` — validated extrapolation: refits without the largest D (or N), predictions for those cells;
* :mod:`.repetition` — the effective-data law of repeated data (Muennighoff et al. 2023) and R*;
* :mod:`.fit` — fitting a study's cells: data laws, free and floor-constrained joint laws, the hold-outs;
* :mod:`.results` — results.csv and results.json;
* :mod:`.plots` — scaling.png and loss_vs_compute.png;
* :mod:`.report_answer` (the answer, validation, repetition), :mod:`.report`, :mod:`.report_predictions`,
  :mod:`.report_study`, :mod:`.report_format` — REPORT.md.
"""
