"""`wenlm scaling`: a data-scale study.

Trains a grid of (model size, training tokens D) cells with the stock Trainer, evaluates every cell on the
same held-out documents, then fits and plots scaling laws and writes REPORT.md (the package docstring lists
where each part lives).

This module runs the grid: every missing cell is trained and written at once to ``cells/<model>_<D>.json``
(atomically), so a killed study resumes where it stopped; then the report is rendered from every stored cell.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from wenlm.training.args import ScalingArguments, parse_options
from wenlm.training.scaling.cells import train_cell
from wenlm.training.scaling.fit import fit_study
from wenlm.training.scaling.grid import ModelSpec, parse_model_specs
from wenlm.training.scaling.laws import PUBLISHED_EXPONENTS
from wenlm.training.scaling.report import write_report
from wenlm.training.scaling.report_study import discussion_section, entropy_floor, reproduction_section
from wenlm.training.scaling.results import load_records
from wenlm.training.scaling.study_data import (
    StudyData,
    check_corpus_size,
    corpus_description,
    prepare_study_data,
)
from wenlm.training.scaling.study_folder import (
    CELLS_DIR,
    cell_path,
    check_study_folder,
    read_cell,
    read_cells,
    read_study,
    write_study,
)
from wenlm.training.utils import write_atomically, write_json

__all__ = ["RENAMED_OPTIONS", "main", "parse_args", "render_report", "run_study"]

# Spellings of the argparse version of this command, kept working (with a FutureWarning) for one release.
RENAMED_OPTIONS = {
    "--epochs": "--num_train_epochs",
    "--batch_size": "--per_device_train_batch_size",
    "--warmup_ratio": "--warmup_steps",
    "--no_discussion": ("--discussion", "false"),
}


def parse_args(argv: list[str] | None = None) -> ScalingArguments:
    (options,) = parse_options([ScalingArguments], argv, renamed=RENAMED_OPTIONS, command="scaling")
    check_options(options)
    return options


def check_options(options: ScalingArguments) -> None:
    """What ScalingArguments cannot check itself: the presets (their overrides parse like pretrain's)."""
    parse_model_specs(options.presets)


# ------------------------------------------------------------------------------------------ the study


def run_study(options: ScalingArguments) -> dict[str, str]:
    """Train every missing cell, then write the report; returns {artefact: path}."""
    check_options(options)
    study_dir = Path(options.output_dir)
    if options.report_only:
        return render_report(study_dir, options)
    started = time.perf_counter()
    specs = parse_model_specs(options.presets)
    study = check_study_folder(study_dir, options)
    data = prepare_study_data(options, study_dir)
    check_corpus_size(data, options)
    study["data"] = data.data_report
    study["validation_bytes_per_token"] = data.validation_bytes_per_token
    study["corpus_description"] = corpus_description(options, data.data_report)
    study["presets"], study["data_sizes"] = options.presets, options.grid_data_sizes
    write_study(study_dir, study)

    (study_dir / CELLS_DIR).mkdir(exist_ok=True)
    threads_before = torch.get_num_threads()
    if options.torch_threads:
        torch.set_num_threads(options.torch_threads)
    try:
        trained = _train_missing_cells(study_dir, specs, data, options)
    finally:
        # The thread count is process-wide state; give the caller (a notebook, a test session) its own back.
        torch.set_num_threads(threads_before)
    study = read_study(study_dir)
    study.setdefault("runs", []).append(
        {
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "cells_trained": trained,
            "wall_time_s": round(time.perf_counter() - started, 1),
            "torch_threads": options.torch_threads or threads_before,
            "torch_threads_option": options.torch_threads,
            "load_avg_at_end": [round(value, 2) for value in os.getloadavg()],
            "machine": _machine(),
        }
    )
    write_study(study_dir, study)
    return render_report(study_dir, options)


def _train_missing_cells(
    study_dir: Path, specs: list[ModelSpec], data: StudyData, options: ScalingArguments
) -> int:
    trained = 0
    for spec in specs:
        for data_size in options.grid_data_sizes:
            path = cell_path(study_dir, spec, data_size)
            if path.is_file():
                record = read_cell(path)
                print(
                    f"[scaling] {spec.label} D={data_size:,}: done earlier (val_loss {record['val_loss']:.4f})"
                )
                continue
            print(f"[scaling] {spec.label} D={data_size:,}: training", flush=True)
            record = train_cell(spec, data_size, data, options)
            write_json(path, record)
            trained += 1
            print(
                f"[scaling] {spec.label} D={data_size:,}: val_loss {record['val_loss']:.4f}, val_bpb "
                f"{record['val_bpb']:.4f}, {record['wall_time_s']:.0f} s",
                flush=True,
            )
    return trained


def _machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "torch": torch.__version__,
    }


# ---------------------------------------------------------------------------------------------- report


def render_report(study_dir: Path, options: ScalingArguments) -> dict[str, str]:
    """Fit and write results.csv/json, fit.json, scaling.png, loss_vs_compute.png and REPORT.md."""
    study_dir = Path(study_dir)
    study = read_study(study_dir)
    records = read_cells(study_dir)
    if not records:
        # A study copied without its cells/ folder still has results.json.
        records = load_records(study_dir)
    settings = study.get("settings", {})
    train_files = settings.get("train_files", options.train_files)
    floor, floor_label = entropy_floor(options.metric, train_files, study.get("validation_bytes_per_token"))
    fits = fit_study(records, metric=options.metric, bootstrap=options.bootstrap, seed=options.seed)
    paths = write_report(
        study_dir,
        records,
        fit_results=fits,
        floor=floor,
        floor_label=floor_label,
        corpus_description=study.get("corpus_description", ", ".join(train_files)),
        published=PUBLISHED_EXPONENTS,
        seed=options.seed,
    )
    extra = []
    if options.discussion:
        extra += discussion_section(fits, records, floor, floor_label)
    extra += reproduction_section(study, records, options)
    report_path = Path(paths["REPORT.md"])
    text = report_path.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + "\n".join(extra) + "\n"
    write_atomically(report_path, text)
    return paths


def main(argv: list[str] | None = None) -> dict[str, str]:
    options = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = run_study(options)
    print(
        f"[scaling] wrote {', '.join(sorted(Path(path).name for path in paths.values()))} to {options.output_dir}"
    )
    return paths


if __name__ == "__main__":
    main()
