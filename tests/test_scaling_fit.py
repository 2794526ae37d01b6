"""Scaling-law fits, extrapolations, plots and the study report (wenlm.training.scaling: laws, fit, plots,
report)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from wenlm.training.scaling.fit import fit_data_law, fit_joint_law, fit_study
from wenlm.training.scaling.laws import compute_optimal_split, predict_loss, tokens_for_target_loss
from wenlm.training.scaling.plots import plot_loss_vs_compute, plot_scaling
from wenlm.training.scaling.report import load_records, write_report

TRUE_DATA = {"E": 1.7, "B": 400.0, "beta": 0.3}
TRUE_JOINT = {"E": 1.7, "A": 400.0, "alpha": 0.34, "B": 400.0, "beta": 0.3}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def data_law_points(noise=0.01, seed=0, n_points=8):
    tokens = np.geomspace(1e4, 1e7, n_points)
    clean = TRUE_DATA["E"] + TRUE_DATA["B"] / tokens ** TRUE_DATA["beta"]
    rng = np.random.default_rng(seed)
    return tokens, clean * np.exp(noise * rng.standard_normal(n_points))


def joint_points(noise=0.01, seed=0, model_sizes=(1e6, 1e7, 1e8), token_counts=None):
    token_counts = np.geomspace(1e5, 1e8, 5) if token_counts is None else np.asarray(token_counts)
    n_params = np.repeat(np.asarray(model_sizes, dtype=float), len(token_counts))
    tokens = np.tile(token_counts, len(model_sizes))
    p = TRUE_JOINT
    clean = p["E"] + p["A"] / n_params ** p["alpha"] + p["B"] / tokens ** p["beta"]
    rng = np.random.default_rng(seed)
    return n_params, tokens, clean * np.exp(noise * rng.standard_normal(len(clean)))


def study_records(seed=0):
    n_params, tokens, losses = joint_points(seed=seed)
    names = {1e6: "tiny", 1e7: "small", 1e8: "base"}
    records = []
    for n, d, loss in zip(n_params, tokens, losses, strict=True):
        records.append(
            {
                "model": names[n],
                "n_params": float(n),
                "n_params_total": float(n) * 1.4,
                "tokens": float(d),
                "flops": 6.0 * n * d,
                "train_loss": float(loss) * 0.97,
                "val_loss": float(loss),
                "val_bpb": float(loss) / math.log(2) / 3.0,
                "wall_time_s": d / 2e5,
                "tokens_per_s": 2e5,
            }
        )
    return records


# ---------------------------------------------------------------------------------------------------------
# Data law
# ---------------------------------------------------------------------------------------------------------


def test_data_law_recovers_exact_parameters_without_noise():
    tokens, losses = data_law_points(noise=0.0)
    fit = fit_data_law(tokens, losses, bootstrap=0)
    for name, true in TRUE_DATA.items():
        assert fit["params"][name] == pytest.approx(true, rel=1e-4), name
    assert fit["rmse"] < 1e-6
    assert fit["n_points"] == 8 and fit["dof"] == 5 and not fit["underdetermined"]


def test_data_law_recovers_parameters_with_one_percent_noise():
    tokens, losses = data_law_points(noise=0.01, seed=0)
    fit = fit_data_law(tokens, losses, bootstrap=100, seed=0)
    params, stderr, ci95 = fit["params"], fit["stderr"], fit["ci95"]
    assert params["beta"] == pytest.approx(0.3, abs=0.02)
    assert params["B"] == pytest.approx(400.0, rel=0.15)
    assert params["E"] == pytest.approx(1.7, abs=0.3)
    for name, true in TRUE_DATA.items():
        # the truth should be within 3 standard errors and inside the bootstrap interval
        assert abs(params[name] - true) < 3 * stderr[name], name
        assert ci95[name][0] < true < ci95[name][1], name
        assert ci95[name][0] < params[name] < ci95[name][1], name
    assert fit["bootstrap"]["succeeded"] >= 95
    assert "bootstrap" in fit["ci95_method"]
    assert set(fit["stderr_bootstrap"]) == {"E", "B", "beta"}
    residuals = np.asarray(fit["residuals"])
    assert residuals.shape == (8,)
    np.testing.assert_allclose(residuals, losses - np.asarray(fit["fitted"]))
    assert fit["rmse"] == pytest.approx(float(np.sqrt(np.mean(residuals**2))))
    assert 0.003 < fit["rmse_relative"] < 0.02  # matches the 1 % noise that was injected


def test_data_law_huber_loss_resists_a_single_bad_cell():
    tokens, losses = data_law_points(noise=0.01, seed=1)
    corrupted = losses.copy()
    corrupted[5] *= 1.25  # e.g. an evaluation on the wrong split
    robust = fit_data_law(tokens, corrupted, bootstrap=0)
    squares = fit_data_law(tokens, corrupted, bootstrap=0, huber_delta=10.0)  # delta this large = least squares
    assert robust["params"]["beta"] == pytest.approx(0.3, abs=0.02)
    assert robust["params"]["E"] == pytest.approx(1.7, abs=0.3)
    assert abs(squares["params"]["E"] - 1.7) > 3 * abs(robust["params"]["E"] - 1.7)
    worst = int(np.argmax(np.abs(robust["log_residuals"])))
    assert worst == 5


def test_three_points_give_an_exact_fit_without_fake_uncertainty():
    tokens = np.array([1e5, 1e6, 1e7])
    losses = TRUE_DATA["E"] + TRUE_DATA["B"] / tokens ** TRUE_DATA["beta"]
    fit = fit_data_law(tokens, losses, bootstrap=100)
    assert fit["dof"] == 0 and fit["underdetermined"] is True
    assert fit["stderr"] is None and fit["ci95"] is None and fit["stderr_bootstrap"] is None
    assert fit["bootstrap"]["succeeded"] == 0
    assert any("exact" in warning for warning in fit["warnings"])
    np.testing.assert_allclose(fit["fitted"], losses, rtol=1e-6)


@pytest.mark.parametrize(
    "tokens, losses",
    [([1e5, 1e6], [3.0, 2.5]), ([1e5], [3.0]), ([1e5, 1e5, 1e6, 1e6], [3.0, 3.01, 2.5, 2.49])],
)
def test_data_law_with_too_few_distinct_points_raises(tokens, losses):
    with pytest.raises(ValueError, match="at least 3 points"):
        fit_data_law(tokens, losses)


def test_data_law_rejects_bad_inputs_by_name():
    with pytest.raises(ValueError, match=r"L \(loss\)\[1\]"):
        fit_data_law([1e5, 1e6, 1e7], [3.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match=r"D \(tokens\)\[0\]"):
        fit_data_law([-1.0, 1e6, 1e7], [3.0, 2.5, 2.0])
    with pytest.raises(ValueError, match="equal length"):
        fit_data_law([1e5, 1e6, 1e7], [3.0, 2.5])
    with pytest.raises(ValueError, match="bootstrap"):
        fit_data_law([1e5, 1e6, 1e7, 1e8], [3.0, 2.5, 2.2, 2.1], bootstrap=-5)


# ---------------------------------------------------------------------------------------------------------
# Joint law
# ---------------------------------------------------------------------------------------------------------


def test_joint_law_recovers_exact_parameters_without_noise():
    n_params, tokens, losses = joint_points(noise=0.0)
    fit = fit_joint_law(n_params, tokens, losses, bootstrap=0)
    for name, true in TRUE_JOINT.items():
        assert fit["params"][name] == pytest.approx(true, rel=1e-3), name
    assert fit["identifiable"] and fit["dof"] == 10


def test_joint_law_recovers_parameters_with_one_percent_noise():
    n_params, tokens, losses = joint_points(noise=0.01, seed=0)
    fit = fit_joint_law(n_params, tokens, losses, bootstrap=100, seed=0)
    params = fit["params"]
    assert params["beta"] == pytest.approx(0.3, abs=0.02)
    assert params["alpha"] == pytest.approx(0.34, abs=0.05)
    assert params["B"] == pytest.approx(400.0, rel=0.15)
    assert params["A"] == pytest.approx(400.0, rel=0.5)
    assert params["E"] == pytest.approx(1.7, abs=0.35)
    for name, true in TRUE_JOINT.items():
        assert abs(params[name] - true) < 3 * fit["stderr"][name], name
        assert fit["ci95"][name][0] < true < fit["ci95"][name][1], name
    assert fit["measured_range"]["n_params"] == [1e6, 1e8]
    assert fit["measured_range"]["tokens"] == pytest.approx([1e5, 1e8])


def test_joint_law_needs_five_points_and_two_model_sizes():
    with pytest.raises(ValueError, match="at least 5 points"):
        fit_joint_law([1e6, 1e6, 1e7, 1e7], [1e5, 1e6, 1e5, 1e6], [5.0, 4.0, 4.5, 3.5])
    with pytest.raises(ValueError, match="2 distinct model sizes"):
        fit_joint_law([1e6] * 6, np.geomspace(1e5, 1e8, 6), np.linspace(5, 3, 6))


def test_joint_law_on_two_model_sizes_is_flagged_not_identifiable():
    # With two model sizes, E, A and alpha only enter through two numbers: they cannot be separated.
    n_params, tokens, losses = joint_points(noise=0.01, model_sizes=(1e6, 1e8))
    fit = fit_joint_law(n_params, tokens, losses, bootstrap=50)
    assert fit["identifiable"] is False and fit["underdetermined"] is True
    assert fit["stderr"] is None and fit["ci95"] is None
    assert any("3 distinct model sizes" in warning for warning in fit["warnings"])


# ---------------------------------------------------------------------------------------------------------
# Using fits
# ---------------------------------------------------------------------------------------------------------


def test_tokens_for_target_loss_inverts_the_fitted_law():
    tokens, losses = data_law_points(noise=0.0)
    fit = fit_data_law(tokens, losses, bootstrap=0)
    needed = tokens_for_target_loss(fit, 2.5)
    assert predict_loss(fit, needed) == pytest.approx(2.5, rel=1e-9)
    assert needed == pytest.approx((400.0 / (2.5 - 1.7)) ** (1 / 0.3), rel=1e-3)
    with pytest.raises(ValueError, match="unreachable"):
        tokens_for_target_loss(fit, 1.7)
    with pytest.raises(ValueError, match="n_params applies only to a joint fit"):
        tokens_for_target_loss(fit, 2.5, n_params=1e7)


def test_tokens_for_target_loss_with_joint_fit_depends_on_model_size():
    n_params, tokens, losses = joint_points(noise=0.0)
    fit = fit_joint_law(n_params, tokens, losses, bootstrap=0)
    with pytest.raises(ValueError, match="needs n_params"):
        tokens_for_target_loss(fit, 3.0)
    large, small = tokens_for_target_loss(fit, 3.0, n_params=1e9), tokens_for_target_loss(fit, 3.0, n_params=1e8)
    assert large < small
    assert predict_loss(fit, large, n_params=1e9) == pytest.approx(3.0, rel=1e-9)
    # a 1e6-parameter model cannot go below E + A / N^alpha (about 2.94 here), whatever the data
    with pytest.raises(ValueError, match="unreachable"):
        tokens_for_target_loss(fit, 2.9, n_params=1e6)


@pytest.mark.parametrize("budget", [1e15, 1e18, 1e21])
def test_compute_optimal_split_matches_brute_force_minimisation(budget):
    n_params, tokens, losses = joint_points(noise=0.01)
    fit = fit_joint_law(n_params, tokens, losses, bootstrap=0)

    def loss_at(log_n):
        n = math.exp(log_n)
        return predict_loss(fit, budget / (6 * n), n_params=n)

    numeric = minimize_scalar(loss_at, bounds=(0.0, math.log(budget / 6)), method="bounded",
                              options={"xatol": 1e-10})
    split = compute_optimal_split(fit, budget)
    assert split["n_params"] == pytest.approx(math.exp(numeric.x), rel=1e-4)
    assert 6 * split["n_params"] * split["tokens"] == pytest.approx(budget, rel=1e-12)
    assert split["loss"] == pytest.approx(numeric.fun, rel=1e-9)
    assert split["extrapolation"] is True
    assert split["measured_n_params_range"] == [1e6, 1e8]
    assert split["tokens_per_param"] == pytest.approx(split["tokens"] / split["n_params"])


def test_compute_optimal_split_rejects_data_law_and_bad_budget():
    tokens, losses = data_law_points(noise=0.0)
    with pytest.raises(ValueError, match="joint fit"):
        compute_optimal_split(fit_data_law(tokens, losses, bootstrap=0), 1e18)
    n_params, tokens, losses = joint_points(noise=0.0)
    with pytest.raises(ValueError, match="flops_budget"):
        compute_optimal_split(fit_joint_law(n_params, tokens, losses, bootstrap=0), -1.0)


# ---------------------------------------------------------------------------------------------------------
# Plots and report
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study_fits():
    records = study_records()
    return records, fit_study(records, metric="val_loss", bootstrap=25, seed=0)


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5000


def test_plots_are_png_files(tmp_path, study_fits):
    records, fits = study_fits
    plot_scaling(records, fits, tmp_path / "scaling.png", floor=1.5)
    plot_loss_vs_compute(records, fits, tmp_path / "compute.png")
    _assert_png(tmp_path / "scaling.png")
    _assert_png(tmp_path / "compute.png")


def test_plot_in_bits_per_byte_and_metric_mismatch(tmp_path, study_fits):
    records, fits = study_fits
    bpb_fits = fit_study(records, metric="val_bpb", bootstrap=0)
    plot_scaling(records, bpb_fits, tmp_path / "bpb.png", floor=0.6, metric="val_bpb")
    _assert_png(tmp_path / "bpb.png")
    with pytest.raises(ValueError, match="fits were made on 'val_loss'"):
        plot_scaling(records, fits, tmp_path / "wrong.png", metric="val_bpb")
    with pytest.raises(ValueError, match="floor"):
        plot_scaling(records, fits, tmp_path / "wrong.png", floor=-1.0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plot_scaling(records, fits, tmp_path / "missing" / "plot.png")


def _table_cells(markdown):
    for line in markdown.splitlines():
        if line.startswith("|") and not set(line) <= set("|-"):
            yield from (cell.strip() for cell in line.strip("|").split("|"))


def test_write_report_writes_every_artefact_without_placeholders(tmp_path, study_fits):
    records, fits = study_fits
    records = [dict(record) for record in records]
    records[1]["val_bpb"] = None  # a run that did not log bpb
    records.append({**records[0], "tokens": 3e8, "flops": 6 * 1e6 * 3e8, "val_loss": float("nan")})
    floor = 1.6
    paths = write_report(tmp_path / "study", records, fits, floor=floor, corpus_description="synthetic corpus")
    study = tmp_path / "study"
    for name in ("results.csv", "results.json", "fit.json", "scaling.png", "loss_vs_compute.png", "REPORT.md"):
        assert (study / name).is_file() and (study / name).stat().st_size > 0, name
        assert paths[name] == str(study / name)
    _assert_png(study / "scaling.png")
    _assert_png(study / "loss_vs_compute.png")

    report = (study / "REPORT.md").read_text(encoding="utf-8")
    assert "{" not in report and "None" not in report
    cells = list(_table_cells(report))
    assert len(cells) > 100
    for cell in cells:
        assert not re.search(r"\bnan\b|\binf\b|None|\{", cell, flags=re.IGNORECASE), cell
    assert "synthetic corpus" in report
    assert "EXTRAPOLATION" in report
    assert "Kaplan et al. 2020" in report and "Hoffmann et al. 2022" in report
    assert "tiny at D = 3e+08" in report  # the NaN run is listed as excluded, not silently dropped

    # conclusions are computed from the fit: recompute one number independently
    base = fits["data_laws"]["base"]
    before, after = predict_loss(base, 5e7), predict_loss(base, 1e8)
    assert f"lowers val_loss by {100 * (before - after) / before:.2f}%" in report
    joint_e = fits["joint"]["params"]["E"]
    assert f"{joint_e - floor:.3g}" in report  # the floor comparison quotes the fitted gap

    fit_json = json.loads((study / "fit.json").read_text(encoding="utf-8"))
    assert fit_json["joint"]["params"]["beta"] == pytest.approx(fits["joint"]["params"]["beta"])
    assert fit_json["floor"] == floor
    assert all(split["extrapolation"] for split in fit_json["compute_optimal"])

    loaded = load_records(study)
    assert len(loaded) == len(records)
    assert sum(1 for record in loaded if record["val_loss"] is None) == 1  # NaN stored as JSON null
    assert any(record["val_bpb"] is None for record in loaded)
    csv_lines = (study / "results.csv").read_text(encoding="utf-8").splitlines()
    assert csv_lines[0].startswith("model,n_params,n_params_total,tokens,flops")
    assert len(csv_lines) == len(records) + 1 and "nan" not in "".join(csv_lines).lower()


def test_report_for_small_study_states_missing_uncertainty(tmp_path):
    # one model, three data sizes: the report must say the fit is exact instead of printing blanks
    records = [r for r in study_records() if r["model"] == "base"][:3]
    write_report(tmp_path, records, None, bootstrap=20)
    report = (tmp_path / "REPORT.md").read_text(encoding="utf-8")
    assert "exact fit, 0 degrees of freedom" in report
    assert "No joint law" in report
    assert "No entropy floor was given" in report
    for cell in _table_cells(report):
        assert not re.search(r"\bnan\b|None|\{", cell, flags=re.IGNORECASE), cell


def test_load_records_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="results.json"):
        load_records(tmp_path)
    (tmp_path / "results.json").write_text('{"records": [\n{"model": "x",}\n]}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"results.json line 2"):
        load_records(tmp_path)
    (tmp_path / "results.json").write_text('[{"model": "x", "tokens": 10}]', encoding="utf-8")
    with pytest.raises(ValueError, match="n_params"):
        load_records(tmp_path)


def test_rewriting_a_report_never_drops_recorded_cells_silently(tmp_path, study_fits):
    records, fits = study_fits
    write_report(tmp_path, records, fits)
    assert [r["tokens"] for r in load_records(tmp_path)] == [r["tokens"] for r in records]  # order kept
    fewer = records[:-1]
    with pytest.raises(ValueError, match=r"1 cell\(s\) missing .*base at D=1e\+08"):
        write_report(tmp_path, fewer, fits)
    assert len(load_records(tmp_path)) == len(records)  # the refused call left results.json intact
    write_report(tmp_path, fewer, fits, allow_dropping_cells=True)
    assert len(load_records(tmp_path)) == len(fewer)


def test_plot_rejects_a_single_fit_in_place_of_study_fits(tmp_path, study_fits):
    records, fits = study_fits
    with pytest.raises(ValueError, match="fit_study"):
        plot_scaling(records, fits["joint"], tmp_path / "plot.png")
