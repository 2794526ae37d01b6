"""A data-scale study (`wenlm scaling`), from plan to report.

Trains a grid of (model size, training tokens D) cells with the stock Trainer, evaluates every cell on the
same held-out documents, then fits and plots scaling laws and writes REPORT.md (the package docstring lists
where each part lives).

This module runs the grid: every missing cell is trained and written at once to ``cells/<model>_<D>.json``
(atomically), so a killed study resumes where it stopped; then the report is rendered from every stored cell.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from wenlm.training.args import ScalingArguments
from wenlm.training.scaling.fit.laws import PUBLISHED_EXPONENTS
from wenlm.training.scaling.fit.repetition import repetition_study
from wenlm.training.scaling.fit.study_fit import REPETITION_SUBSTUDY, fit_study
from wenlm.training.scaling.report.discussion import discussion_section, entropy_floor, reproduction_section
from wenlm.training.scaling.report.markdown import write_report
from wenlm.training.scaling.results import load_records
from wenlm.training.scaling.run.cells import train_cell, training_rule
from wenlm.training.scaling.run.grid import ModelSpec, parse_model_specs
from wenlm.training.scaling.run.planning import (
    PlannedCell,
    assign_to_workers,
    estimate_seconds,
    measure_throughput,
    plan_cells,
    trim_to_budget,
)
from wenlm.training.scaling.run.study_data import (
    StudyData,
    check_corpus_size,
    corpus_description,
    prepare_study_data,
    read_study_corpus,
)
from wenlm.training.scaling.run.study_folder import (
    CELLS_DIR,
    check_study_folder,
    read_cell,
    read_cells,
    read_study,
    write_study,
)
from wenlm.training.utils import write_atomically, write_json

WORKERS_DIR = ".workers"


def check_options(options: ScalingArguments) -> None:
    """What ScalingArguments cannot check itself: the presets (their overrides parse like pretrain's) and the data
    options a study cannot honour."""
    parse_model_specs(options.presets)
    if options.data is None:
        raise ValueError("ScalingArguments.data is unset: parse the options with DataArguments beside them")
    if options.data.streaming:
        raise ValueError(
            "--streaming true: a study packs its corpus once and cuts every cell from the same token stream; "
            "drop --streaming"
        )
    if options.data.corpus_seed not in (0, options.seed):
        raise ValueError(
            f"--corpus_seed {options.data.corpus_seed}: a study seeds its validation split with --seed (the "
            "cells' seed too); give --seed instead"
        )


# ------------------------------------------------------------------------------------------ the study


def run_study(options: ScalingArguments) -> dict[str, str]:
    """Train every missing cell, then write the report; returns {artefact: path}."""
    check_options(options)
    study_dir = Path(options.output_dir)
    if options.report_only:
        return render_report(study_dir, options)
    started = time.perf_counter()
    specs = parse_model_specs(options.presets)
    read_study_corpus(options)  # an unreadable file is refused before the study folder is made
    study = check_study_folder(study_dir, options)
    data = prepare_study_data(options, study_dir)
    check_corpus_size(data, options, max(cell.data_size for cell in plan_cells(specs, options)))
    study["data"] = data.data_report
    study["validation_bytes_per_token"] = data.validation_bytes_per_token
    study["corpus_description"] = corpus_description(options, data.data_report)
    study["presets"], study["data_sizes"] = options.presets, options.grid_data_sizes
    study["training_rule"] = training_rule(options)
    if options.worker_cells is None:  # a worker of --workers finds it written by its parent
        write_study(study_dir, study)

    (study_dir / CELLS_DIR).mkdir(exist_ok=True)
    threads_before = torch.get_num_threads()
    if options.torch_threads:
        torch.set_num_threads(options.torch_threads)
    try:
        trained, dropped = _train_missing_cells(study_dir, specs, data, options)
    finally:
        # The thread count is process-wide state; give the caller (a notebook, a test session) its own back.
        torch.set_num_threads(threads_before)
    if options.worker_cells is not None:
        return {}  # the process that started the workers records the run and writes the report
    study = read_study(study_dir)
    study.setdefault("runs", []).append(
        {
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "cells_trained": trained,
            "cells_left_out_for_budget": dropped,
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
) -> tuple[int, list[str]]:
    """Train every planned cell not stored yet, with progress and an ETA; returns (trained, dropped labels)."""
    cells = plan_cells(specs, options)
    done = [read_cell(study_dir / CELLS_DIR / cell.file_name) for cell in cells if _stored(study_dir, cell)]
    missing = [cell for cell in cells if not _stored(study_dir, cell)]
    if options.worker_cells is not None:
        missing = [cell for cell in missing if cell.file_name in set(options.worker_cells.split(","))]
    rates = {
        spec.label: measure_throughput(spec, data, options)
        for spec in {c.spec.label: c.spec for c in missing}.values()
    }
    dropped: list[PlannedCell] = []
    if options.worker_cells is None:
        missing, dropped, estimate = trim_to_budget(missing, options, done, rates)
        for cell in dropped:
            print(
                f"[scaling] {cell.label}: left out to fit --budget_minutes {options.budget_minutes:g}",
                flush=True,
            )
        print(
            f"[scaling] {len(cells) - len(missing) - len(dropped)} cell(s) stored, {len(missing)} to train, "
            f"estimated {estimate / 60:.1f} min of training"
            + (
                f" (about {estimate / 60 / min(options.workers, max(len(missing), 1)):.1f} min with "
                f"{options.workers} workers)"
                if options.workers > 1
                else ""
            ),
            flush=True,
        )
        if options.workers > 1 and len(missing) > 1:
            _run_workers(
                study_dir, assign_to_workers(missing, options.workers, options, done, rates), options
            )
            return len(missing), [cell.label for cell in dropped]
    started = time.perf_counter()
    for index, cell in enumerate(missing, start=1):
        print(f"[scaling] ({index}/{len(missing)}) {cell.label}: training", flush=True)
        record = train_cell(
            cell.spec, cell.data_size, data, options, epochs=cell.epochs, rule_tokens=cell.rule_tokens
        )
        if cell.substudy:
            record["substudy"] = cell.substudy
        write_json(study_dir / CELLS_DIR / cell.file_name, record)
        done.append(record)
        remaining = sum(estimate_seconds(other, options, done, rates) for other in missing[index:])
        passes = f", {record['epochs_trained']:g} passes" if record.get("regime") == "converged" else ""
        print(
            f"[scaling] ({index}/{len(missing)}) {cell.label}: val_bpb {record['val_bpb']:.4f} (val_loss "
            f"{record['val_loss']:.4f}){passes}, {record['wall_time_s']:.0f} s; elapsed "
            f"{(time.perf_counter() - started) / 60:.1f} min, ETA {remaining / 60:.1f} min",
            flush=True,
        )
    return len(missing), [cell.label for cell in dropped]


def _run_workers(study_dir: Path, shares: list[list[PlannedCell]], options: ScalingArguments) -> None:
    """Train each share in its own `wenlm scaling` process (one torch thread each) and wait for all of them.

    Every worker resumes the same study folder with the same settings, so it reuses the prepared data and the
    tokenizer and writes its cells where a single process would; a worker that fails leaves the others' cells.
    """
    folder = study_dir / WORKERS_DIR
    folder.mkdir(exist_ok=True)
    processes = []
    for index, share in enumerate(share for share in shares if share):
        # One flat options file, as the command line would give them: the study's options and its data options.
        settings = {
            key: value
            for key, value in {**dataclasses.asdict(options.data), **dataclasses.asdict(options)}.items()
            if value is not None and key != "data"
        }
        settings.update(workers=1, torch_threads=1, worker_cells=",".join(cell.file_name for cell in share))
        path = folder / f"worker_{index}.json"
        write_json(path, settings)
        print(f"[scaling] worker {index}: {', '.join(cell.label for cell in share)}", flush=True)
        processes.append(subprocess.Popen([sys.executable, "-m", "wenlm.training.cli", "scaling", str(path)]))
    failed = [index for index, process in enumerate(processes) if process.wait() != 0]
    if failed:
        raise RuntimeError(
            f"worker(s) {failed} of the study in {study_dir} failed (their output is above); the cells that "
            "finished are kept: rerun the same command to train the rest"
        )


def _stored(study_dir: Path, cell: PlannedCell) -> bool:
    return (study_dir / CELLS_DIR / cell.file_name).is_file()


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
    grid = [record for record in records if not record.get("substudy")]
    repeated = [record for record in records if record.get("substudy") == REPETITION_SUBSTUDY]
    settings = study.get("settings", {})
    train_files = settings.get("train_files", options.data.train_files)
    floor, floor_label = entropy_floor(options.metric, train_files, study.get("validation_bytes_per_token"))
    fits = fit_study(
        grid,
        metric=options.metric,
        bootstrap=options.bootstrap,
        seed=options.seed,
        floor=floor,
        constrain_floor=options.constrain_floor,
    )
    fits["repetition"] = repetition_study(repeated, options.metric, options.bootstrap, options.seed)
    paths = write_report(
        study_dir,
        grid,
        fit_results=fits,
        floor=floor,
        floor_label=floor_label,
        corpus_description=study.get("corpus_description", ", ".join(train_files)),
        published=PUBLISHED_EXPONENTS,
        seed=options.seed,
        control=floor is not None,
        training_rule=study.get("training_rule", ""),
        extra_records=repeated,
    )
    extra = []
    if options.discussion:
        extra += discussion_section(fits, grid, floor, floor_label)
    extra += reproduction_section(study, records, options)
    report_path = Path(paths["REPORT.md"])
    text = report_path.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + "\n".join(extra) + "\n"
    write_atomically(report_path, text)
    return paths
