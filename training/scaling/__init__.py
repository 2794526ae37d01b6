"""Data-scale studies (`wenlm scaling`): `study` plans, runs, fits and reports one study; `results` holds the
per-cell records on disk; `run/` trains the cells, `fit/` fits laws to them, `report/` writes REPORT.md and the
plots. Imports point one way: fit <- results <- run <- report <- study."""
