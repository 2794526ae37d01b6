"""One module per `wenlm` command, named after it. Each parses its options (the dataclasses in `ARGUMENTS`) and
calls the libraries; only the dispatcher (`wenlm.training.cli`) imports these modules."""
