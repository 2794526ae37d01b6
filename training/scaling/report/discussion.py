"""REPORT.md parts that come from the study folder's own record rather than from the fits alone: the entropy
floor of the built-in corpus, the discussion of this study's exponents against the published ones, and how
to reproduce the study (the command, its wall time, the machine)."""

from __future__ import annotations

import math
import os

from wenlm.training.args import SCALING_DATA_DEFAULTS, DataArguments, ScalingArguments
from wenlm.training.data.sources import builtin_entropy_floor
from wenlm.training.scaling.fit.laws import METRIC_UNITS, PUBLISHED_EXPONENTS
from wenlm.training.scaling.report.formatting import short
from wenlm.training.scaling.run.study_folder import CELL_SETTINGS, option_value

__all__ = ["discussion_section", "entropy_floor", "reproduction_section"]


def entropy_floor(metric: str, train_files, bytes_per_token: float | None) -> tuple[float | None, str]:
    """The built-in corpus's entropy floor in the units of ``metric`` (None for other corpora)."""
    bits_per_byte = builtin_entropy_floor(train_files)
    if bits_per_byte is None:
        return None, "entropy floor"
    if metric == "val_bpb":
        return bits_per_byte, "entropy floor of the built-in corpus"
    if bytes_per_token:
        # Same floor, per token of this study's validation stream: bits/byte x bytes/token x ln 2 nats/bit.
        return bits_per_byte * bytes_per_token * math.log(2), (
            f"entropy floor of the built-in corpus ({bits_per_byte:.4f} bits/byte at "
            f"{bytes_per_token:.3f} bytes/token)"
        )
    return None, "entropy floor"


def discussion_section(fits: dict, records: list[dict], floor: float | None, floor_label: str) -> list[str]:
    """Why exponents from a small CPU study differ from the published ones, with this study's numbers."""
    unit = METRIC_UNITS.get(fits["metric"], "")
    kaplan = PUBLISHED_EXPONENTS["Kaplan et al. 2020"]
    hoffmann = PUBLISHED_EXPONENTS["Hoffmann et al. 2022"]
    betas = {name: fit["params"]["beta"] for name, fit in fits.get("data_laws", {}).items()}
    n_values = sorted({float(record["n_params"]) for record in records})
    d_values = sorted({float(record["tokens"]) for record in records})
    lines = ["## Discussion: this study against the published exponents", ""]
    if betas:
        listed = ", ".join(f"{name} {beta:.3g}" for name, beta in betas.items())
        lines.append(
            f"The per-model data exponents β are {listed}, against α_D ≈ {kaplan['beta']} (Kaplan et al. 2020) "
            f"and β ≈ {hoffmann['beta']} (Hoffmann et al. 2022)."
        )
    joint = fits.get("joint")
    if joint is not None:
        params = joint["params"]
        status = (
            "identifiable from this design"
            if joint.get("identifiable", True) and joint["dof"] > 0
            else "NOT identifiable from this design (too few model or data sizes), so read them as one of many "
            "equally good solutions"
        )
        lines.append(
            f"The joint fit gives α = {params['alpha']:.3g} and β = {params['beta']:.3g} (Hoffmann et al.: "
            f"α ≈ {hoffmann['alpha']}, β ≈ {hoffmann['beta']}); these are {status}."
        )
        interval = (joint.get("ci95") or {}).get("alpha")
        if (
            interval
            and all(bound is not None and bound > 0 for bound in interval)
            and interval[1] / interval[0] > 5
        ):
            lines.append(
                f"The model-size exponent is poorly constrained (95% interval {interval[0]:.3g}–{interval[1]:.3g} "
                f"with {len(n_values)} model sizes spanning {n_values[-1] / n_values[0]:.0f}×), so the "
                "compute-optimal splits in the Extrapolations section are not usable as advice."
            )
    else:
        lines.append(f"No joint law was fitted: {fits.get('skipped', {}).get('joint', 'too few cells')}.")
    lines += [
        "",
        "Why numbers from this study need not match the papers:",
        "",
        f"- **Scale.** Models here have {short(n_values[0])}–{short(n_values[-1])} non-embedding parameters and "
        f"see {short(d_values[0])}–{short(d_values[-1])} tokens; Kaplan et al. fit 10^3–10^9 parameters on up to "
        "2·10^10 tokens and Hoffmann et al. 7·10^7–1.6·10^10 parameters on 5·10^9–5·10^11 tokens. Power laws "
        "are local descriptions of a curve whose slope changes with scale. "
        + _direction_note(betas, hoffmann["beta"], kaplan["beta"]),
        "- **Functional form.** Kaplan's α_D ≈ 0.095 comes from a pure power law without an irreducible term and "
        "with models large enough to be data-limited; fitting E as well (as here and in Hoffmann et al.) moves "
        "the curvature into E and gives larger β on the same points." + _zero_e_note(fits),
        "- **Model-limited cells.** When a small model saturates inside the measured range, its loss at the "
        "largest D is set by its capacity (A/N^α), which a per-model fit absorbs into E, and the data term left "
        "over can come out steep or flat depending on where saturation starts. "
        + _capacity_note(records, fits["metric"]),
        "- **Training recipe.** One epoch, one fixed peak learning rate and batch size (a few thousand tokens "
        "per step, against 0.5–4 M in the papers), a cosine schedule scaled to each run (as in Hoffmann et al.; "
        "Kaplan et al. used one schedule for all runs, which biases against short runs). Neither the learning "
        "rate nor the batch size was tuned per cell, and the smallest cells take only a few dozen optimiser "
        "steps, so part of the measured gain from more data is simply more optimisation steps.",
        "- **Units and data.** Tokens of a small byte-level BPE are not the papers' tokens (bits per byte "
        "removes the tokenizer's effect on the loss, not on D); the corpus is small and narrow next to the "
        "papers' web text; and each cell is one run with one seed, so run-to-run noise of about 1 % is in every "
        "point and the intervals above are a lower bound on the uncertainty.",
    ]
    if floor is not None:
        lines += _floor_note(fits, floor, floor_label, unit)
    lines.append("")
    return lines


def _zero_e_note(fits: dict) -> str:
    at_zero = [name for name, fit in fits.get("data_laws", {}).items() if "E" in fit.get("at_bounds", [])]
    if not at_zero:
        return ""
    return (
        f" Here E sits at its bound 0 for {', '.join(at_zero)}: over the measured range the curve shows no "
        "flattening, so those fits reduce to a pure power law, Kaplan's form, and their β is the like-for-like "
        "comparison with α_D."
    )


def _capacity_note(records: list[dict], metric: str) -> str:
    largest_d = max(float(record["tokens"]) for record in records)
    at_largest = sorted(
        (float(record["n_params"]), float(record[metric]), str(record["model"]))
        for record in records
        if float(record["tokens"]) == largest_d and record.get(metric) is not None
    )
    if len(at_largest) < 2:
        return ""
    (_, small_loss, small_name), (_, large_loss, large_name) = at_largest[0], at_largest[-1]
    return (
        f"At the largest D here, {large_name} reaches {large_loss:.4g} against {small_loss:.4g} for {small_name} "
        f"({(large_loss - small_loss) / small_loss:+.0%}): the gap is what model size buys at this D."
    )


def _compact_count(value: int) -> str:
    """100000 -> '1e5', 2000000 -> '2e6', 123456 -> '123456': how a person would type --data_sizes."""
    exponent = len(str(value)) - 1
    mantissa, remainder = divmod(value, 10**exponent)
    return f"{mantissa}e{exponent}" if remainder == 0 and exponent >= 3 else str(value)


def _direction_note(betas: dict[str, float], hoffmann_beta: float, kaplan_beta: float) -> str:
    if not betas:
        return ""
    mean_beta = sum(betas.values()) / len(betas)
    if mean_beta > hoffmann_beta:
        return (
            f"Here β averages {mean_beta:.3g}, above both papers: with so few tokens a model is still learning "
            "the vocabulary, word frequencies and short-range structure, where each doubling of data (and of "
            "optimiser steps) removes much more loss than in the papers' regime, which steepens the local slope."
        )
    if mean_beta < kaplan_beta:
        return (
            f"Here β averages {mean_beta:.3g}, below both papers: the models are so small that capacity, not data, "
            "limits them over most of the measured range, so more data buys little and the slope flattens."
        )
    return (
        f"Here β averages {mean_beta:.3g}, between the two papers' values; with this few points and this far from "
        "their regime the agreement is partly coincidence."
    )


def _floor_note(fits: dict, floor: float, floor_label: str, unit: str) -> list[str]:
    """The fitted irreducible losses held against the entropy floor (a true E cannot lie below it)."""
    estimates = {name: fit["params"]["E"] for name, fit in fits.get("data_laws", {}).items()}
    if fits.get("joint") is not None:
        estimates["joint law"] = fits["joint"]["params"]["E"]
    if not estimates:
        return []
    listed = ", ".join(
        f"{name} {value:.4g} ({(value - floor) / floor:+.0%})" for name, value in estimates.items()
    )
    below = [name for name, value in estimates.items() if value < floor]
    return [
        f"- **Entropy floor.** The {floor_label} is {floor:.4g} {unit}; the fitted irreducible losses are "
        f"{listed}. A true E cannot lie below the floor, and a per-model E also holds that model's "
        "capacity limit, so it should sit above it."
        + (
            f" Where E lands below the floor ({', '.join(below)}), the losses measured are still far from "
            "flattening: the range of D does not pin E down, and the fitted β is correspondingly uncertain. "
            "More data per model (a wider range of D) is what would constrain it."
            if below
            else ""
        )
    ]


def _reproduce_command(study: dict, records: list[dict], options: ScalingArguments) -> list[str]:
    """The command that measures this study's grid again, naming only the options that differ from defaults."""
    settings = study.get("settings", {})
    command = [
        "wenlm scaling --train_files " + " ".join(settings.get("train_files", options.data.train_files))
    ]
    # The grid actually measured: a study resumed with other --data_sizes holds the union of both grids.
    data_sizes = sorted({int(record.get("data_size", record["tokens"])) for record in records})
    command.append("--data_sizes " + ",".join(_compact_count(size) for size in data_sizes))
    command.append(f"--presets {study.get('presets', options.presets)}")
    defaults = ScalingArguments(output_dir="")
    defaults.data = DataArguments(**SCALING_DATA_DEFAULTS)
    for key, option in CELL_SETTINGS.items():
        if key == "train_files" or key not in settings:
            continue
        value = settings[key]
        if value != option_value(defaults, option):
            command.append(f"--{option.rpartition('.')[2]} {value}")
    # The validation set in today's options: a fraction (with its cap) or a count.
    if settings.get("validation_split") is not None:
        command.append(f"--validation_split {settings['validation_split']}")
    if settings.get("validation_docs") is not None:
        command.append(f"--max_validation_docs {settings['validation_docs']}")
    if options.metric != defaults.metric:
        command.append(f"--metric {options.metric}")
    last_run = (study.get("runs") or [{}])[-1]
    if last_run.get("torch_threads_option"):
        command.append(f"--torch_threads {last_run['torch_threads_option']}")
    command.append("--output_dir STUDY_DIR")
    return command


def reproduction_section(study: dict, records: list[dict], options: ScalingArguments) -> list[str]:
    command = _reproduce_command(study, records, options)
    last_run = (study.get("runs") or [{}])[-1]
    data_sizes = sorted({int(record.get("data_size", record["tokens"])) for record in records})
    wall = sum(float(record.get("wall_time_s") or 0) for record in records)
    loads = [
        record[key]
        for record in records
        for key in ("load_avg_1min_start", "load_avg_1min_end")
        if key in record
    ]
    lines = ["## Reproduce", "", "```", " \\\n    ".join(command), "```", ""]
    lines.append(
        f"Training and evaluating the {len(records)} cells took {wall / 60:.1f} minutes of wall time in total"
        + (
            f" (1-minute load average between {min(loads):.1f} and {max(loads):.1f} while cells ran, on "
            f"{os.cpu_count()} CPUs)"
            if loads
            else ""
        )
        + "."
    )
    runs = study.get("runs") or []
    if runs:
        total = sum(float(run.get("wall_time_s") or 0) for run in runs)
        threads = last_run.get("torch_threads")
        load_at_end = (last_run.get("load_avg_at_end") or [None])[0]
        lines.append(
            f"The whole command (data preparation, tokenizer, all cells) took {total / 60:.1f} minutes over "
            f"{len(runs)} run(s)"
            + (f" with {threads} torch thread(s)" if threads else "")
            + (
                f"; 1-minute load average at the end of the last run: {load_at_end:.1f}"
                if load_at_end
                else ""
            )
            + "."
        )
    machine = last_run.get("machine")
    if machine:
        lines.append(
            f"Machine: {machine['cpu_count']} CPUs ({machine['processor']}), {machine['torch_threads']} torch "
            f"threads, torch {machine['torch']}, {machine['platform']}."
        )
    measured = {(str(record["model"]), int(record.get("data_size", record["tokens"]))) for record in records}
    models = sorted({model for model, _ in measured})
    missing = [(model, size) for model in models for size in data_sizes if (model, size) not in measured]
    if missing:
        listed = ", ".join(f"{model} at D={_compact_count(size)}" for model, size in missing)
        lines.append(
            f"Cells of the full grid that were not run: {listed}. Rerun the command above to add them; "
            "finished cells are skipped."
        )
    finished = [record["finished_at"] for record in records if record.get("finished_at")]
    if finished:
        lines.append(f"Cells finished between {min(finished)} and {max(finished)} (UTC).")
    lines.append("")
    return lines
