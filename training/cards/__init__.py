"""Model cards: rendered from the reports a model folder holds (training_report.json, eval_results.json, the audit
section, a linked scaling study) with the templates in `model_cards/`. `card` reads the reports, renders and writes,
`sections` holds what each part of the card says, `usage` the "how to use it" code, `audit_section` the privacy
sentences; pretraining, fine-tuning, evaluation, audits and the Hub upload feed it by writing those reports."""
