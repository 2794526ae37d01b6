"""Write the artefacts of a wenlm data-scale study.

``write_report`` turns result records plus fits (from :func:`wenlm.training.scaling.fit.study_fit.fit_study`) into
results.csv, results.json, fit.json, scaling.png, loss_vs_compute.png and REPORT.md. Every sentence of the
report's conclusions is computed from the numbers; where a number cannot be computed (too few points, no
floor given) the report says so instead of printing a placeholder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wenlm.training.scaling.fit.laws import METRIC_UNITS, PUBLISHED_EXPONENTS, compute_optimal_split
from wenlm.training.scaling.fit.study_fit import fit_study, strip_private, validate_records
from wenlm.training.scaling.report.answer import (
    answer_section,
    chosen_fit,
    repetition_section,
    validation_section,
)
from wenlm.training.scaling.report.formatting import fixed, param_cell, percent, short
from wenlm.training.scaling.report.plots import plot_loss_vs_compute, plot_scaling
from wenlm.training.scaling.report.predictions import conclusions_section, extrapolation_section
from wenlm.training.scaling.results import RESULTS_CSV, RESULTS_FILE, load_records, with_flops, write_results
from wenlm.training.utils import MISSING, is_number, markdown_table, write_atomically, write_json

# load_records is re-exported: model cards read a study's table through this module.
__all__ = ["RESULTS_FILE", "load_records", "write_report"]

REPORT_FILE = "REPORT.md"
FIT_FILE = "fit.json"
SCALING_PLOT = "scaling.png"
COMPUTE_PLOT = "loss_vs_compute.png"


# ----------------------------------------------------------------------------------------------------------
# Report sections
# ----------------------------------------------------------------------------------------------------------


def _cells_section(records: Sequence[Mapping[str, Any]], excluded: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = []
    for record in sorted(records, key=lambda r: (float(r["n_params"]), float(r["tokens"]))):
        rows.append(
            [
                str(record["model"]),
                short(record.get("n_params")),
                short(record.get("n_params_total")),
                short(record.get("tokens")),
                _passes(record),
                short(record.get("flops")),
                fixed(record.get("train_loss")),
                fixed(record.get("val_loss")),
                fixed(record.get("val_bpb")),
                fixed(record.get("wall_time_s"), 3),
                short(record.get("tokens_per_s")),
            ]
        )
    header = [
        "model",
        "N (non-emb.)",
        "N (total)",
        "unique tokens D",
        "passes (best)",
        "FLOPs 6N·seen",
        "train loss",
        "val loss",
        "val bpb",
        "wall time (s)",
        "tokens/s",
    ]
    lines = ["## Measured cells", "", markdown_table(header, rows), ""]
    lines.append(
        "Losses in nats/token, bpb in bits per UTF-8 byte. “–” marks a value the run did not record."
    )
    capped = [
        r
        for r in records
        if r.get("best_epoch") is not None and r["best_epoch"] >= r["epochs_trained"] - 1e-6
    ]
    if capped:
        lines += [
            "",
            f"**{len(capped)} of {len(records)} cells were still improving at their last pass** (best weights at the "
            "final evaluation, no early stop): they reached the pass / step cap, so their losses are upper bounds "
            "on what their data allows, and a fit through them mixes data scarcity with compute scarcity.",
        ]
    if excluded:
        lines += ["", "Excluded from the fits (kept in results.json):", ""]
        lines += [
            f"- {cell['model']} at D = {short(cell.get('tokens'))}: {cell['reason']}" for cell in excluded
        ]
    lines.append("")
    return lines


def _passes(record: Mapping[str, Any]) -> str:
    if record.get("epochs_trained") is None:
        return MISSING
    best = record.get("best_epoch")
    return f"{record['epochs_trained']:g}" + (f" ({best:g})" if best is not None else "")


def _fits_section(fits: Mapping[str, Any], unit: str) -> list[str]:
    lines = ["## Fitted scaling laws", ""]
    data_laws = fits.get("data_laws", {})
    if data_laws:
        lines += [
            "### Per-model data law: L(D) = E + B / D^β",
            "",
            "Values are estimate ± standard error (Jacobian) [95% interval; method per row].",
            "",
        ]
        rows = []
        for name, fit in data_laws.items():
            rows.append(
                [
                    name,
                    str(fit["n_points"]),
                    str(fit["dof"]),
                    param_cell(fit, "E"),
                    param_cell(fit, "B"),
                    param_cell(fit, "beta"),
                    fixed(fit["rmse"], 3),
                    percent(fit["rmse_relative"]),
                    _fit_note(fit),
                ]
            )
        header = ["model", "points", "dof", f"E ({unit})", "B", "β", "RMSE", "rel. RMSE", "notes"]
        lines += [markdown_table(header, rows), ""]
    for key, title in (
        ("joint", "Joint law"),
        ("joint_constrained", "Joint law with E held at or above the floor"),
    ):
        lines += _joint_table(fits.get(key), title, unit)
    for name, reason in fits.get("skipped", {}).items():
        label = "joint law" if name == "joint" else f"data law for {name}"
        lines.append(f"- No {label}: {reason}")
    if fits.get("skipped"):
        lines.append("")
    return lines


def _joint_table(joint: Mapping[str, Any] | None, title: str, unit: str) -> list[str]:
    if joint is None:
        return []
    rows = [[name, param_cell(joint, name)] for name in ("E", "A", "alpha", "B", "beta")]
    return [
        f"### {title}: L(N, D) = E + A / N^α + B / D^β",
        "",
        markdown_table(["parameter", "estimate ± s.e. [95% interval]"], rows),
        "",
        f"{joint['n_points']} points, {joint['dof']} degrees of freedom, RMSE {fixed(joint['rmse'], 3)} "
        f"{unit} ({percent(joint['rmse_relative'])} relative). {_fit_note(joint)}.",
        "",
    ]


def _fit_note(fit: Mapping[str, Any]) -> str:
    notes = []
    if fit["dof"] <= 0:
        notes.append("exact fit, 0 degrees of freedom: no uncertainty")
    identification = fit.get("identification") or {}
    if fit.get("identified") is False:
        reason = identification.get("reason") or "not identified by these cells: see warnings"
        # Law fits give their reason as "not identified by these cells: ..."; other fits name only the cause.
        notes.append(reason if reason.startswith("not identified") else f"not identified: {reason}")
        if identification.get("fix"):
            notes.append("would fix it: " + identification["fix"])
    elif fit.get("ci95_method"):
        notes.append("interval: " + fit["ci95_method"])
    if fit.get("at_bounds"):
        notes.append("at a bound: " + ", ".join(fit["at_bounds"]))
    return "; ".join(notes) if notes else "least-squares fit"


def _residuals_section(fits: Mapping[str, Any], unit: str) -> list[str]:
    rows = []
    for name, fit in fits.get("data_laws", {}).items():
        inputs = fit["inputs"]
        for tokens, observed, fitted, residual in zip(
            inputs["tokens"], inputs["loss"], fit["fitted"], fit["residuals"], strict=True
        ):
            rows.append(
                [
                    name,
                    short(tokens),
                    fixed(observed),
                    fixed(fitted),
                    fixed(residual, 3),
                    percent(residual / observed),
                ]
            )
    if not rows:
        return []
    return [
        "## Residuals of the per-model fits",
        "",
        f"Residual = observed − fitted, in {unit}.",
        "",
        markdown_table(["model", "tokens D", "observed", "fitted", "residual", "residual %"], rows),
        "",
    ]


def _published_section(
    fits: Mapping[str, Any], published: Mapping[str, Mapping[str, Any]] | None
) -> list[str]:
    if not published:
        return []
    ours: list[tuple[str, str, Mapping[str, Any]]] = [
        (f"β (data law, {name})", "beta", fit) for name, fit in fits.get("data_laws", {}).items()
    ]
    if fits.get("joint") is not None:
        ours += [("β (joint law)", "beta", fits["joint"]), ("α (joint law)", "alpha", fits["joint"])]
    if not ours:
        return []
    sources = list(published)
    rows = []
    for label, key, fit in ours:
        row = [label, param_cell(fit, key)]
        for source in sources:
            reference = published[source].get(key)
            row.append(
                f"{fixed(reference, 3)} ({_compare(fit, key, reference)})"
                if is_number(reference)
                else MISSING
            )
        rows.append(row)
    lines = [
        "## Comparison with published exponents",
        "",
        markdown_table(["exponent", "this study", *sources], rows),
        "",
    ]
    lines += [f"- {source}: {published[source].get('form', 'form not stated')}." for source in sources]
    lines += [
        "- Exponents fitted with an irreducible term E come out larger than pure power-law exponents on the "
        "same data, and small models on small corpora are far from the regime of either paper; agreement or "
        "disagreement is indicative only.",
        "",
    ]
    return lines


def _compare(fit: Mapping[str, Any], key: str, reference: float) -> str:
    interval = (fit.get("ci95") or {}).get(key)
    value = fit["params"][key]
    if interval and all(is_number(bound) for bound in interval):
        if interval[0] <= reference <= interval[1]:
            return "consistent"
        return "ours higher" if value > reference else "ours lower"
    return f"ours {value / reference:.2g}×, no interval"


def _method_section(fits: Mapping[str, Any], training_rule: str) -> list[str]:
    some_fit = fits.get("joint") or next(iter(fits.get("data_laws", {}).values()), None) or {}
    boot = some_fit.get("bootstrap", {})
    lines = [
        "## Method",
        "",
        f"- Cells: {training_rule}." if training_rule else "- Cells: see the corpus paragraph above.",
        "- Fits follow Hoffmann et al. 2022 (approach 3) as corrected by Besiroglu et al. 2024: L(N, D) = E + "
        "A/N^α + B/D^β with E, A, B fitted as logarithms, the prediction computed as a log-sum-exp, a Huber loss "
        f"(δ = {some_fit.get('huber_delta', 1e-3):g}) on log residuals so each cell counts by its relative error "
        "and one bad run cannot dominate, minimised with L-BFGS-B from the best points of a grid of starts.",
        "- Intervals: 95 % percentile intervals from refits on cells resampled with replacement"
        + (f" ({boot['succeeded']} of {boot['requested']} refits succeeded)" if boot.get("succeeded") else "")
        + ". A fit is labelled not identified when a parameter sits on a bound, when an interval of E, α or β "
        "spans more than a factor 10, or when E lies below a known floor; such a fit gives no extrapolation.",
        "- Validation: the joint law is refitted without the cells of the largest D (and, separately, of the "
        "largest N) and its predictions for them are compared with the measured losses.",
        "",
    ]
    return lines


# ----------------------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------------------


def _write_fit_json(path: Path, fit_results: Mapping[str, Any], cells: list, floor, floor_label: str) -> None:
    """fit.json: the fits, the floor they are held against, and compute-optimal splits at 1x-100x compute."""
    extrapolations = []
    fit = chosen_fit(fit_results)[1]
    if fit is not None and cells:
        largest = max(float(cell["flops"]) for cell in cells)
        extrapolations = [compute_optimal_split(fit, factor * largest) for factor in (1, 10, 100)]
    write_json(
        path,
        strip_private(
            {**fit_results, "floor": floor, "floor_label": floor_label, "compute_optimal": extrapolations}
        ),
    )


def _report_header(corpus_description: str, metric: str, unit: str, cells: list, excluded: list) -> list[str]:
    lines = ["# Data-scaling study", ""]
    lines.append(
        f"Corpus: {corpus_description.strip()}" if corpus_description.strip() else "Corpus: not described."
    )
    lines += [
        "",
        f"Fitted metric: {metric}" + (f" ({unit})" if unit else "") + f"; {len(cells)} cells used, "
        f"{len(excluded)} excluded.",
        "",
        f"![validation loss vs tokens]({SCALING_PLOT})",
        "",
        f"![validation loss vs compute]({COMPUTE_PLOT})",
        "",
    ]
    return lines


def write_report(
    study_dir,
    records: Sequence[Mapping[str, Any]],
    fit_results: Mapping[str, Any] | None = None,
    floor: float | None = None,
    corpus_description: str = "",
    published: Mapping[str, Mapping[str, Any]] | None = PUBLISHED_EXPONENTS,
    metric: str | None = None,
    floor_label: str = "entropy floor",
    flops_budgets: Sequence[float] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    allow_dropping_cells: bool = False,
    control: bool = False,
    training_rule: str = "",
    extra_records: Sequence[Mapping[str, Any]] = (),
) -> dict[str, str]:
    """Write results.csv, results.json, fit.json, scaling.png, loss_vs_compute.png and REPORT.md.

    ``fit_results`` is the output of :func:`fit_study`; when None it is computed here on ``metric`` (default
    val_loss) with ``bootstrap`` refits. ``floor`` is the known entropy floor in the units of the fitted
    metric. ``published`` maps a source name to {"alpha", "beta", "form"} (None drops that section).
    ``flops_budgets`` chooses the compute-optimal extrapolations (default: 1x-100x the largest cell's).
    ``control`` marks a corpus whose floor is exact, so the report checks E and the held-out errors against
    the control targets; ``extra_records`` (the repetition sub-study's cells) go into results.csv/json only.
    results.json is rewritten from ``records``; if an existing results.json holds a (model, tokens) cell that
    ``records`` lacks, this raises instead of losing it, unless ``allow_dropping_cells`` is True.
    Returns {artefact name: path}.
    """
    directory = Path(study_dir)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"study_dir {directory} exists and is not a folder")
    directory.mkdir(parents=True, exist_ok=True)
    if fit_results is None:
        fit_results = fit_study(records, metric=metric or "val_loss", bootstrap=bootstrap, seed=seed)
    elif metric is not None and fit_results.get("metric") != metric:
        raise ValueError(f"fit_results were fitted on {fit_results.get('metric')!r}, not metric={metric!r}")
    metric = fit_results.get("metric", "val_loss")
    unit = METRIC_UNITS.get(metric, "")
    cells, excluded = validate_records(records, metric)
    names = (RESULTS_CSV, RESULTS_FILE, FIT_FILE, SCALING_PLOT, COMPUTE_PLOT, REPORT_FILE)
    paths = {name: directory / name for name in names}
    write_results(directory, with_flops([*records, *extra_records]), allow_dropping_cells)
    _write_fit_json(paths[FIT_FILE], fit_results, cells, floor, floor_label)
    plots = {SCALING_PLOT: plot_scaling, COMPUTE_PLOT: plot_loss_vs_compute}
    for name, plot in plots.items():
        plot(cells, fit_results, paths[name], floor=floor, metric=metric, floor_label=floor_label)

    lines = _report_header(corpus_description, metric, unit, cells, excluded)
    lines += answer_section(fit_results, cells, unit, floor, metric)
    lines += validation_section(fit_results, unit, floor, floor_label, control)
    lines += repetition_section(fit_results.get("repetition"), unit)
    lines += _fits_section(fit_results, unit)
    lines += _cells_section(cells, excluded)
    lines += _residuals_section(fit_results, unit)
    lines += _published_section(fit_results, published)
    lines += extrapolation_section(fit_results, cells, unit, flops_budgets, floor)
    lines += conclusions_section(fit_results, floor, floor_label, metric)
    lines += _method_section(fit_results, training_rule)
    write_atomically(paths[REPORT_FILE], "\n".join(lines))
    return {name: str(path) for name, path in paths.items()}
