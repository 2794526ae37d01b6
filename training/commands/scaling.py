"""`wenlm scaling`: a data-scale study — train a grid of (model, data) cells, fit and plot scaling laws, write
REPORT.md (see docs/scaling.md)."""

from __future__ import annotations

import logging
from pathlib import Path

from wenlm.training.args import SCALING_DATA_DEFAULTS, DataArguments, ScalingArguments, parse_options
from wenlm.training.scaling.study import check_options, run_study

ARGUMENTS = (ScalingArguments, DataArguments)
DEFAULTS = SCALING_DATA_DEFAULTS
# Spellings of the argparse version of this command, kept working (with a FutureWarning) for one release.
RENAMED = {
    "--batch_size": "--per_device_train_batch_size",
    "--warmup_ratio": "--warmup_steps",
    "--no_discussion": ("--discussion", "false"),
    "--validation_docs": "--max_validation_docs",
}


def parse_args(argv: list[str] | None = None) -> ScalingArguments:
    """The study's options, with its data options (DataArguments) attached as `options.data`."""
    options, data = parse_options(ARGUMENTS, argv, defaults=DEFAULTS, renamed=RENAMED, command="scaling")
    options.data = data
    check_options(options)
    return options


def main(argv: list[str] | None = None) -> dict[str, str]:
    options = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = run_study(options)
    if not paths:  # a worker of --workers: its parent reports
        return paths
    print(
        f"[scaling] wrote {', '.join(sorted(Path(path).name for path in paths.values()))} to {options.output_dir}"
    )
    return paths
