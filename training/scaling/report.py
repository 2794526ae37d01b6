"""Write and read back the artefacts of a wenlm data-scale study.

``write_report`` turns result records plus fits (from :func:`wenlm.training.scaling.fit.fit_study`) into
results.csv, results.json, fit.json, scaling.png, loss_vs_compute.png and REPORT.md. Every sentence of the
report's conclusions is computed from the numbers; where a number cannot be computed (too few points, no
floor given) the report says so instead of printing a placeholder.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wenlm.training.scaling.fit import (
    CHINCHILLA_TOKENS_PER_PARAM,
    METRIC_UNITS,
    PUBLISHED_EXPONENTS,
    compute_optimal_split,
    fit_study,
    plot_loss_vs_compute,
    plot_scaling,
    predict_loss,
    tokens_for_target_loss,
    validate_records,
)

__all__ = ["RESULTS_FILE", "load_records", "write_report"]

RESULTS_FILE = "results.json"
_RESULTS_FORMAT = "wenlm-scaling-results"
_RECORD_COLUMNS = (
    "model",
    "n_params",
    "n_params_total",
    "tokens",
    "flops",
    "train_loss",
    "val_loss",
    "val_bpb",
    "wall_time_s",
    "tokens_per_s",
)
_MISSING = "–"


# ----------------------------------------------------------------------------------------------------------
# Reading and writing files
# ----------------------------------------------------------------------------------------------------------


def _write_atomically(path: Path, text: str | bytes) -> None:
    """Write via a temporary file and rename, so an interrupted run never leaves a half-written results.json."""
    mode = "wb" if isinstance(text, bytes) else "w"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": ""})) as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _json_ready(value: Any) -> Any:
    """Plain JSON values; non-finite floats become None (JSON has no NaN) rather than invalid output."""
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if hasattr(value, "tolist"):
        return _json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def load_records(study_dir) -> list[dict[str, Any]]:
    """Read the records of a study back from ``study_dir/results.json`` (for ``--report-only``).

    Accepts both the file written by :func:`write_report` and a bare JSON list of records.
    """
    path = Path(study_dir) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run the study first, or pass the study folder that holds {RESULTS_FILE}"
        )
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} line {error.lineno} column {error.colno}: invalid JSON ({error.msg})"
        ) from error
    records = payload.get("records") if isinstance(payload, dict) else payload
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a list of records or an object with a 'records' list")
    try:
        validate_records(records, metric="val_loss")
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    return [dict(record) for record in records]


def _cell_key(record: Mapping[str, Any]) -> tuple[str, float]:
    return str(record.get("model")), float(record.get("tokens") or 0.0)


def _refuse_to_drop_cells(path: Path, new_records: Sequence[Mapping[str, Any]]) -> None:
    if not path.is_file():
        return
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{path} exists but cannot be read ({error}); move it away before writing a new report"
        ) from error
    old_records = payload.get("records") if isinstance(payload, dict) else payload
    if not isinstance(old_records, list):
        return
    kept = {_cell_key(record) for record in new_records}
    dropped = [
        key for key in (_cell_key(r) for r in old_records if isinstance(r, Mapping)) if key not in kept
    ]
    if dropped:
        listed = ", ".join(f"{model} at D={tokens:.3g}" for model, tokens in dropped[:5])
        raise ValueError(
            f"{path} holds {len(dropped)} cell(s) missing from the new records ({listed}); writing would lose "
            "them. Include them (load_records) or pass allow_dropping_cells=True"
        )


def _records_csv(records: Sequence[Mapping[str, Any]]) -> str:
    extra = sorted({key for record in records for key in record} - set(_RECORD_COLUMNS))
    columns = [*_RECORD_COLUMNS, *extra]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = {}
        for column in columns:
            value = record.get(column)
            row[column] = (
                "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else value
            )
        writer.writerow(row)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------------------
# Number formatting: one place decides how missing values look, so no "None"/"nan" reaches the report
# ----------------------------------------------------------------------------------------------------------


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any, digits: int = 4) -> str:
    """``digits`` significant figures in fixed notation (scientific only for very large or small values)."""
    if not _finite(value):
        return _MISSING
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.{max(digits - 1, 1)}e}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:.{decimals}f}"


def _big(value: Any) -> str:
    return f"{value:.3g}" if _finite(value) else _MISSING


def _pct(value: Any, digits: int = 2) -> str:
    return f"{100 * value:.{digits}f}%" if _finite(value) else _MISSING


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell if cell else _MISSING for cell in row) + " |" for row in rows]
    return lines


def _param_cell(fit: Mapping[str, Any], name: str) -> str:
    value = fit["params"][name]
    stderr = (fit.get("stderr") or {}).get(name)
    interval = (fit.get("ci95") or {}).get(name)
    text = _num(value)
    if _finite(stderr):
        text += f" ± {_num(stderr, 2)}"
    if interval and all(_finite(bound) for bound in interval):
        text += f" [{_num(interval[0], 3)}, {_num(interval[1], 3)}]"
    return text


# ----------------------------------------------------------------------------------------------------------
# Report sections
# ----------------------------------------------------------------------------------------------------------


def _cells_section(records: Sequence[Mapping[str, Any]], excluded: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = []
    for record in sorted(records, key=lambda r: (float(r["n_params"]), float(r["tokens"]))):
        rows.append(
            [
                str(record["model"]),
                _big(record.get("n_params")),
                _big(record.get("n_params_total")),
                _big(record.get("tokens")),
                _big(record.get("flops")),
                _num(record.get("train_loss")),
                _num(record.get("val_loss")),
                _num(record.get("val_bpb")),
                _num(record.get("wall_time_s"), 3),
                _big(record.get("tokens_per_s")),
            ]
        )
    header = [
        "model",
        "N (non-emb.)",
        "N (total)",
        "tokens D",
        "FLOPs 6ND",
        "train loss",
        "val loss",
        "val bpb",
        "wall time (s)",
        "tokens/s",
    ]
    lines = ["## Measured cells", "", *_table(header, rows), ""]
    lines.append(
        "Losses in nats/token, bpb in bits per UTF-8 byte. “–” marks a value the run did not record."
    )
    if excluded:
        lines += ["", "Excluded from the fits (kept in results.json):", ""]
        lines += [
            f"- {cell['model']} at D = {_big(cell.get('tokens'))}: {cell['reason']}" for cell in excluded
        ]
    lines.append("")
    return lines


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
                    _param_cell(fit, "E"),
                    _param_cell(fit, "B"),
                    _param_cell(fit, "beta"),
                    _num(fit["rmse"], 3),
                    _pct(fit["rmse_relative"]),
                    _fit_note(fit),
                ]
            )
        header = ["model", "points", "dof", f"E ({unit})", "B", "β", "RMSE", "rel. RMSE", "notes"]
        lines += [*_table(header, rows), ""]
    joint = fits.get("joint")
    if joint is not None:
        lines += ["### Joint law: L(N, D) = E + A / N^α + B / D^β", ""]
        rows = [[name, _param_cell(joint, name)] for name in ("E", "A", "alpha", "B", "beta")]
        lines += _table(["parameter", "estimate ± s.e. [95% interval]"], rows)
        lines += [
            "",
            f"{joint['n_points']} points, {joint['dof']} degrees of freedom, RMSE {_num(joint['rmse'], 3)} "
            f"{unit} ({_pct(joint['rmse_relative'])} relative). {_fit_note(joint)}.",
            "",
        ]
    for name, reason in fits.get("skipped", {}).items():
        label = "joint law" if name == "joint" else f"data law for {name}"
        lines.append(f"- No {label}: {reason}")
    if fits.get("skipped"):
        lines.append("")
    return lines


def _fit_note(fit: Mapping[str, Any]) -> str:
    notes = []
    if fit["dof"] <= 0:
        notes.append("exact fit, 0 degrees of freedom: no uncertainty")
    elif not fit.get("identifiable", True):
        notes.append("parameters not identifiable from this design")
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
                    _big(tokens),
                    _num(observed),
                    _num(fitted),
                    _num(residual, 3),
                    _pct(residual / observed),
                ]
            )
    if not rows:
        return []
    return [
        "## Residuals of the per-model fits",
        "",
        f"Residual = observed − fitted, in {unit}.",
        "",
        *_table(["model", "tokens D", "observed", "fitted", "residual", "residual %"], rows),
        "",
    ]


def _floor_section(fits: Mapping[str, Any], floor: float | None, floor_label: str, unit: str) -> list[str]:
    lines = [f"## Fitted irreducible loss vs the {floor_label}", ""]
    if floor is None:
        return [*lines, f"No {floor_label} was given, so E cannot be compared with it.", ""]
    estimates = [(name, fit) for name, fit in fits.get("data_laws", {}).items()]
    if fits.get("joint") is not None:
        estimates.append(("joint law", fits["joint"]))
    if not estimates:
        return [*lines, "No fit succeeded, so there is no E to compare.", ""]
    rows = []
    for name, fit in estimates:
        value = fit["params"]["E"]
        interval = (fit.get("ci95") or {}).get("E")
        if interval and interval[0] <= floor <= interval[1]:
            verdict = "floor inside the 95% interval of E"
        elif value < floor:
            verdict = "below the floor: E is not a usable floor estimate here"
        else:
            verdict = "above the floor"
        rows.append([name, _num(value), _num(value - floor, 3), _pct((value - floor) / floor, 1), verdict])
    lines += [
        f"{floor_label}: {_num(floor)} {unit}.",
        "",
        *_table(["fit", f"E ({unit})", "E − floor", "relative gap", "verdict"], rows),
        "",
        "A per-model E also holds the part of the loss that comes from the model's finite size (A / N^α in "
        "the joint law), so it should sit above the floor and approach it as models grow; the joint-law E is "
        "the estimate to hold against the floor. A fitted E below a true entropy floor is impossible for a "
        "real model: it means the measured range does not constrain E (the losses are still far above it).",
        "",
    ]
    return lines


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
        row = [label, _param_cell(fit, key)]
        for source in sources:
            reference = published[source].get(key)
            row.append(
                f"{_num(reference, 3)} ({_compare(fit, key, reference)})" if _finite(reference) else _MISSING
            )
        rows.append(row)
    lines = [
        "## Comparison with published exponents",
        "",
        *_table(["exponent", "this study", *sources], rows),
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
    if interval and all(_finite(bound) for bound in interval):
        if interval[0] <= reference <= interval[1]:
            return "consistent"
        return "ours higher" if value > reference else "ours lower"
    return f"ours {value / reference:.2g}×, no interval"


def _extrapolation_section(
    fits: Mapping[str, Any],
    cells: Sequence[Mapping[str, Any]],
    unit: str,
    target_losses: Sequence[float] | None,
    flops_budgets: Sequence[float] | None,
) -> list[str]:
    data_laws = fits.get("data_laws", {})
    joint = fits.get("joint")
    if not data_laws and joint is None:
        return []
    lines = [
        "## Extrapolations",
        "",
        "**Everything in this section is an EXTRAPOLATION of the fitted laws beyond the measured cells** and "
        "inherits their uncertainty, which grows quickly outside the measured range.",
        "",
    ]
    if data_laws:
        rows = []
        for name, fit in data_laws.items():
            largest = fit["measured_range"]["tokens"][1]
            for factor in (10, 100):
                tokens = factor * largest
                rows.append(
                    [
                        name,
                        f"{factor}× largest D = {_big(tokens)}",
                        _num(predict_loss(fit, tokens)),
                        "EXTRAPOLATION",
                    ]
                )
        lines += [
            f"### Predicted loss with more data ({unit})",
            "",
            *_table(["model", "tokens D", "predicted loss", "status"], rows),
            "",
        ]

        if target_losses is None:
            best = min(min(fit["inputs"]["loss"]) for fit in data_laws.values())
            target_losses = [best * 0.98, best * 0.95]
        rows = []
        for name, fit in data_laws.items():
            low, high = fit["measured_range"]["tokens"]
            for target in target_losses:
                try:
                    tokens = tokens_for_target_loss(fit, float(target))
                except ValueError:
                    rows.append(
                        [name, _num(target), "unreachable", f"target ≤ fitted E = {_num(fit['params']['E'])}"]
                    )
                    continue
                status = "EXTRAPOLATION" if tokens > high or tokens < low else "interpolation"
                rows.append([name, _num(target), _big(tokens), status])
        lines += [
            f"### Tokens needed to reach a target loss ({unit})",
            "",
            *_table(["model", "target loss", "tokens needed", "status"], rows),
            "",
        ]

    if joint is not None:
        if flops_budgets is None:
            largest_flops = max(float(cell["flops"]) for cell in cells)
            flops_budgets = [largest_flops, 10 * largest_flops, 100 * largest_flops]
        rows = []
        for budget in flops_budgets:
            split = compute_optimal_split(joint, float(budget))
            status = "EXTRAPOLATION" + ("" if split["within_measured_range"] else " (outside measured N, D)")
            rows.append(
                [
                    _big(budget),
                    _big(split["n_params"]),
                    _big(split["tokens"]),
                    _num(split["tokens_per_param"], 3),
                    _num(split["loss"]),
                    status,
                ]
            )
        measured = joint["measured_range"]
        lines += [
            "### Compute-optimal split under the joint law (6 N D = C)",
            "",
            f"Measured range: N from {_big(measured['n_params'][0])} to {_big(measured['n_params'][1])}, "
            f"D from {_big(measured['tokens'][0])} to {_big(measured['tokens'][1])}.",
            "",
            *_table(
                ["FLOPs C", "N optimal", "D optimal", "tokens/param", f"predicted loss ({unit})", "status"],
                rows,
            ),
            "",
        ]
    return lines


def _conclusions(fits: Mapping[str, Any], floor: float | None, floor_label: str, metric: str) -> list[str]:
    """Plain-language findings, each computed from the fitted numbers."""
    findings = []
    for name, fit in fits.get("data_laws", {}).items():
        low, high = fit["measured_range"]["tokens"]
        # Doubling from D_max / 2 to D_max stays inside the measured range when it spans at least a factor 2.
        start = max(high / 2, low)
        before, after = predict_loss(fit, start), predict_loss(fit, 2 * start)
        where = "within the measured range" if 2 * start <= high else "partly extrapolated"
        drop = (before - after) / before
        findings.append(
            f"{name}: doubling the data from {_big(start)} to {_big(2 * start)} tokens lowers {metric} by "
            f"{_pct(drop)} ({_num(before)} → {_num(after)}, {where})."
        )
        params = fit["params"]
        observed_best = min(fit["inputs"]["loss"])
        reducible = (observed_best - params["E"]) / observed_best
        findings.append(
            f"{name}: the lowest measured loss is {_num(observed_best)}, of which "
            f"{_pct(reducible, 1)} lies above the fitted irreducible E = {_num(params['E'])} and could still "
            "be removed by more data."
        )
        if fit["dof"] <= 0:
            findings.append(
                f"{name}: the fit has as many parameters as points; its numbers carry no error bars."
            )
    joint = fits.get("joint")
    if joint is not None and joint.get("identifiable", True):
        params = joint["params"]
        split = compute_optimal_split(joint, max(joint["measured_range"]["flops"]))
        findings.append(
            f"Joint law: at the largest measured compute ({_big(split['flops'])} FLOPs) the compute-optimal "
            f"allocation is {_num(split['tokens_per_param'], 3)} tokens per parameter (Hoffmann et al. 2022 "
            f"report about {CHINCHILLA_TOKENS_PER_PARAM:.0f}); α = {_num(params['alpha'], 3)} vs "
            f"β = {_num(params['beta'], 3)} means "
            + (
                "model size should grow faster than data as compute grows."
                if params["beta"] > params["alpha"]
                else "data should grow faster than model size as compute grows."
            )
        )
    if floor is not None:
        estimates = [fit["params"]["E"] for fit in fits.get("data_laws", {}).values()]
        if estimates:
            closest = min(estimates, key=lambda value: abs(value - floor))
            findings.append(
                f"The fitted irreducible losses lie between {_num(min(estimates))} and {_num(max(estimates))}; "
                f"the closest is {_num(closest - floor, 3)} from the {floor_label} ({_num(floor)})."
            )
    if not findings:
        findings.append(
            "No law could be fitted, so there are no quantitative conclusions; see the skipped fits."
        )
    return ["## Conclusions", "", *[f"- {finding}" for finding in findings], ""]


def _method_section(fits: Mapping[str, Any]) -> list[str]:
    some_fit = next(iter(fits.get("data_laws", {}).values()), None) or fits.get("joint")
    boot = (some_fit or {}).get("bootstrap", {})
    lines = [
        "## Method",
        "",
        "- Fits minimise a Huber loss on log residuals (log fitted − log observed), as in Hoffmann et al. "
        "2022, so each cell counts by its relative error and a single bad run cannot dominate. The Huber "
        "threshold is set from the data (1.345 robust standard deviations of the log residuals, "
        "re-estimated until it settles). Several starting points are tried and the best optimum kept; bounds: E ≥ 0, B > 0, "
        "0 < β ≤ 2 (and A > 0, 0 < α ≤ 2).",
        "- Standard errors come from the Jacobian covariance at the optimum.",
    ]
    if boot.get("succeeded"):
        lines.append(
            f"- 95% intervals: {boot['method']}, {boot['succeeded']} of {boot['requested']} refits. With few "
            "points percentile intervals tend to be too narrow; read them as a lower bound on the uncertainty."
        )
    lines.append("")
    return lines


# ----------------------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------------------


def write_report(
    study_dir,
    records: Sequence[Mapping[str, Any]],
    fit_results: Mapping[str, Any] | None = None,
    floor: float | None = None,
    corpus_description: str = "",
    published: Mapping[str, Mapping[str, Any]] | None = PUBLISHED_EXPONENTS,
    metric: str | None = None,
    floor_label: str = "entropy floor",
    target_losses: Sequence[float] | None = None,
    flops_budgets: Sequence[float] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    allow_dropping_cells: bool = False,
) -> dict[str, str]:
    """Write results.csv, results.json, fit.json, scaling.png, loss_vs_compute.png and REPORT.md.

    ``fit_results`` is the output of :func:`fit_study`; when None it is computed here on ``metric`` (default
    val_loss) with ``bootstrap`` refits. ``floor`` is the known entropy floor in the units of the fitted
    metric. ``published`` maps a source name to {"alpha", "beta", "form"} (None drops that section).
    ``target_losses`` / ``flops_budgets`` choose the extrapolations (defaults derive from the data).
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
    # Keep the caller's order and every cell (excluded ones too); only fill in the derivable FLOPs.
    all_records = [
        {**record, "flops": 6.0 * float(record["n_params"]) * float(record["tokens"])}
        if not _finite(record.get("flops"))
        else dict(record)
        for record in records
    ]
    if not allow_dropping_cells:
        _refuse_to_drop_cells(directory / RESULTS_FILE, all_records)

    paths = {
        name: directory / name
        for name in (
            "results.csv",
            RESULTS_FILE,
            "fit.json",
            "scaling.png",
            "loss_vs_compute.png",
            "REPORT.md",
        )
    }
    _write_atomically(paths["results.csv"], _records_csv(all_records))
    _write_atomically(
        paths[RESULTS_FILE],
        json.dumps({"format": _RESULTS_FORMAT, "version": 1, "records": _json_ready(all_records)}, indent=2)
        + "\n",
    )
    extrapolations = []
    if fit_results.get("joint") is not None and cells:
        largest = max(float(cell["flops"]) for cell in cells)
        extrapolations = [
            compute_optimal_split(fit_results["joint"], factor * largest) for factor in (1, 10, 100)
        ]
    fit_payload = {
        **fit_results,
        "floor": floor,
        "floor_label": floor_label,
        "compute_optimal": extrapolations,
    }
    _write_atomically(paths["fit.json"], json.dumps(_json_ready(fit_payload), indent=2) + "\n")
    plot_scaling(
        cells, fit_results, paths["scaling.png"], floor=floor, metric=metric, floor_label=floor_label
    )
    plot_loss_vs_compute(
        cells, fit_results, paths["loss_vs_compute.png"], floor=floor, metric=metric, floor_label=floor_label
    )

    lines = ["# Data-scaling study", ""]
    lines.append(
        f"Corpus: {corpus_description.strip()}" if corpus_description.strip() else "Corpus: not described."
    )
    lines += [
        "",
        f"Fitted metric: {metric}" + (f" ({unit})" if unit else "") + f"; {len(cells)} cells used, "
        f"{len(excluded)} excluded.",
        "",
        "![validation loss vs tokens](scaling.png)",
        "",
        "![validation loss vs compute](loss_vs_compute.png)",
        "",
    ]
    lines += _cells_section(cells, excluded)
    lines += _fits_section(fit_results, unit)
    lines += _residuals_section(fit_results, unit)
    lines += _floor_section(fit_results, floor, floor_label, unit)
    lines += _published_section(fit_results, published)
    lines += _extrapolation_section(fit_results, cells, unit, target_losses, flops_budgets)
    lines += _conclusions(fit_results, floor, floor_label, metric)
    lines += _method_section(fit_results)
    _write_atomically(paths["REPORT.md"], "\n".join(lines))
    return {name: str(path) for name, path in paths.items()}
