"""`wenlm scaling`, a data-scale study, one module per part:

* :mod:`.study` — the command: parses the options, trains the missing cells of the grid, renders the report;
* :mod:`.grid` — the model sizes of the grid (the data sizes are parsed with the options, in training/args.py);
* :mod:`.study_data` — the study's one tokenizer, its nested token stream and its shared validation set;
* :mod:`.cells` — training and evaluating one (model, D) cell;
* :mod:`.study_folder` — study.json and the per-cell files a rerun resumes from;
* :mod:`.laws` — the scaling laws and what a fitted law predicts;
* :mod:`.robust` — the robust log-residual fit of one law and its uncertainties;
* :mod:`.fit` — fitting a study's cells: one data law per model, one joint law;
* :mod:`.results` — results.csv and results.json;
* :mod:`.plots` — scaling.png and loss_vs_compute.png;
* :mod:`.report`, :mod:`.report_predictions`, :mod:`.report_study`, :mod:`.report_format` — REPORT.md.
"""
