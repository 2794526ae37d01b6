"""Scaling-law fits, extrapolations, plots and the study report (wenlm.training.scaling: laws, fit, plots,
report)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from wenlm.training.scaling.fit.holdout import holdout_validation
from wenlm.training.scaling.fit.laws import compute_optimal_split, predict_loss, tokens_for_target_loss
from wenlm.training.scaling.fit.repetition import PUBLISHED_R_STAR, effective_tokens, fit_repetition
from wenlm.training.scaling.fit.study_fit import (
    fit_data_law,
    fit_joint_law,
    fit_study,
    predict_interval,
    strip_private,
)
from wenlm.training.scaling.report.markdown import load_records, write_report
from wenlm.training.scaling.report.plots import plot_loss_vs_compute, plot_scaling

TRUE_DATA = {"E": 1.7, "B": 400.0, "beta": 0.3}
TRUE_JOINT = {"E": 1.7, "A": 400.0, "alpha": 0.34, "B": 400.0, "beta": 0.3}
# A study-like truth whose floor is well below the losses (as on a corpus with a low entropy)
TRUE_LOW_FLOOR = {"E": 0.3, "A": 400.0, "alpha": 0.35, "B": 600.0, "beta": 0.4}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def data_law_points(noise=0.01, seed=0, n_points=8):
    tokens = np.geomspace(1e4, 1e7, n_points)
    clean = TRUE_DATA["E"] + TRUE_DATA["B"] / tokens ** TRUE_DATA["beta"]
    rng = np.random.default_rng(seed)
    return tokens, clean * np.exp(noise * rng.standard_normal(n_points))


def joint_points(noise=0.01, seed=0, model_sizes=(1e6, 1e7, 1e8), token_counts=None, truth=TRUE_JOINT):
    token_counts = np.geomspace(1e5, 1e8, 5) if token_counts is None else np.asarray(token_counts)
    n_params = np.repeat(np.asarray(model_sizes, dtype=float), len(token_counts))
    tokens = np.tile(token_counts, len(model_sizes))
    p = truth
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
    squares = fit_data_law(
        tokens, corrupted, bootstrap=0, huber_delta=10.0
    )  # delta this large = least squares
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


def test_joint_law_recovers_known_parameters_including_E():
    # 3 N x 5 D, 0.5 % multiplicative noise: E is recovered, not only the exponents
    n_params, tokens, losses = joint_points(noise=0.005, seed=1, truth=TRUE_LOW_FLOOR)
    fit = fit_joint_law(n_params, tokens, losses, bootstrap=0)
    params = fit["params"]
    assert params["E"] == pytest.approx(0.3, rel=0.15)
    assert params["alpha"] == pytest.approx(0.35, abs=0.03)
    assert params["beta"] == pytest.approx(0.4, abs=0.03)
    assert params["A"] == pytest.approx(400.0, rel=0.4)
    assert params["B"] == pytest.approx(600.0, rel=0.4)
    assert fit["identified"] is True and fit["identification"] == {"reason": None, "fix": None}
    assert fit["huber_delta"] == 1e-3 and fit["floor"] is None and fit["constrained"] is False


def test_bootstrap_intervals_cover_the_truth_at_about_their_nominal_rate():
    # 30 synthetic data laws (8 data sizes, 0.5 % noise), 100 cell resamples each to keep the test short.
    # Measured: E covered in 30/30 and beta in 30/30 draws here; with the joint law (3 N x 5 D, 20 draws,
    # 100 resamples) 20/20 for E and 18/20 for beta. Percentile intervals of this near-L1 fit run slightly
    # conservative; the lower limit guards against intervals that are too narrow.
    draws, covered = 30, {"E": 0, "beta": 0}
    for seed in range(draws):
        tokens = np.geomspace(1e4, 1e8, 8)
        rng = np.random.default_rng(100 + seed)
        truth = TRUE_LOW_FLOOR["E"] + TRUE_LOW_FLOOR["B"] / tokens ** TRUE_LOW_FLOOR["beta"]
        fit = fit_data_law(tokens, truth * np.exp(0.005 * rng.standard_normal(8)), bootstrap=100, seed=seed)
        assert fit["bootstrap"]["succeeded"] >= 90
        for name in covered:
            low, high = fit["ci95"][name]
            covered[name] += low <= TRUE_LOW_FLOOR[name] <= high
    for name, hits in covered.items():
        assert 0.75 <= hits / draws <= 1.0, (name, hits)


def test_predict_interval_from_the_bootstrap_draws_and_strip_private():
    n_params, tokens, losses = joint_points(noise=0.005, seed=2, truth=TRUE_LOW_FLOOR)
    fit = fit_joint_law(n_params, tokens, losses, bootstrap=60, seed=0)
    draws = fit["bootstrap_draws"]
    assert isinstance(draws, np.ndarray) and draws.shape == (fit["bootstrap"]["succeeded"], 5)
    low, high = predict_interval(fit, 1e9, n_params=1e8)
    assert low < predict_loss(fit, 1e9, n_params=1e8) < high
    narrow = predict_interval(fit, 1e9, n_params=1e8, level=0.5)
    assert low < narrow[0] < narrow[1] < high
    with pytest.raises(ValueError, match="needs n_params"):
        predict_interval(fit, 1e9)
    plain = strip_private({"joint": fit, "holdout": {"x": {"fit": fit}}, "list": [fit]})
    json.dumps(plain)  # no numpy arrays left anywhere
    assert "bootstrap_draws" in fit  # the argument is not changed
    with pytest.raises(ValueError, match="no bootstrap draws"):
        predict_interval(plain["joint"], 1e9, n_params=1e8)
    with pytest.raises(ValueError, match="no bootstrap draws"):
        predict_interval(fit_joint_law(n_params, tokens, losses, bootstrap=0), 1e9, n_params=1e8)


def test_free_fit_below_a_known_floor_is_flagged_and_the_constrained_fit_respects_it():
    # the losses come from E = 0.3, but the "known" floor says 0.6: like under-trained cells on a corpus
    # whose entropy is known, the free fit lands below the floor with its whole interval
    n_params, tokens, losses = joint_points(noise=0.005, seed=3, truth=TRUE_LOW_FLOOR)
    free = fit_joint_law(n_params, tokens, losses, bootstrap=60, floor=0.6)
    assert free["constrained"] is False and free["floor"] == 0.6
    assert free["ci95"]["E"][1] < 0.6
    assert free["identified"] is False
    assert "floor-violating" in free["identification"]["reason"]
    assert "convergence" in free["identification"]["fix"]
    constrained = fit_joint_law(n_params, tokens, losses, bootstrap=60, floor=0.6, constrain_floor=True)
    assert constrained["constrained"] is True
    assert constrained["params"]["E"] >= 0.6 * (1 - 1e-9)
    assert constrained["ci95"]["E"][0] >= 0.6 * (1 - 1e-9)
    assert "floor-violating" not in (constrained["identification"]["reason"] or "")
    with pytest.raises(ValueError, match="constrain_floor=True needs floor"):
        fit_joint_law(n_params, tokens, losses, bootstrap=0, constrain_floor=True)
    with pytest.raises(ValueError, match="floor must be a positive number"):
        fit_data_law([1e5, 1e6, 1e7, 1e8], [3.0, 2.5, 2.2, 2.1], floor=-1.0)
    with pytest.raises(ValueError, match="huber_delta"):
        fit_data_law([1e5, 1e6, 1e7, 1e8], [3.0, 2.5, 2.2, 2.1], huber_delta=0.0)


def test_E_at_its_lower_bound_is_flagged_not_identified():
    # a pure power law has no floor: the free fit drives E to its bound, which must not pass as a floor
    tokens = np.geomspace(1e4, 1e8, 8)
    losses = 600.0 / tokens**0.4 * np.exp(0.003 * np.random.default_rng(4).standard_normal(8))
    fit = fit_data_law(tokens, losses, bootstrap=0)
    assert "E" in fit["at_bounds"] and fit["params"]["E"] < 1e-5
    assert fit["identified"] is False
    assert "E sits at its lower bound" in fit["identification"]["reason"]
    assert "beyond the largest D (1e+08 tokens)" in fit["identification"]["fix"]


# ---------------------------------------------------------------------------------------------------------
# Held-out validation
# ---------------------------------------------------------------------------------------------------------


def low_floor_records(seed=5):
    n_params, tokens, losses = joint_points(noise=0.005, seed=seed, truth=TRUE_LOW_FLOOR)
    names = {1e6: "tiny", 1e7: "small", 1e8: "base"}
    return [
        {"model": names[n], "n_params": float(n), "tokens": float(d), "val_loss": float(loss)}
        for n, d, loss in zip(n_params, tokens, losses, strict=True)
    ]


def test_holdout_predicts_cells_the_fit_never_saw():
    records = low_floor_records()
    largest = max(record["tokens"] for record in records)
    result = holdout_validation(records, "val_loss", hold_out="tokens", bootstrap=30, seed=0)
    assert result["held_out"] == "largest D" and result["value"] == largest
    assert result["fit_cells"] == 12 and len(result["cells"]) == 3
    assert max(result["fit"]["inputs"]["tokens"]) < largest
    assert result["fit"]["n_points"] == 12
    for cell in result["cells"]:
        assert cell["tokens"] == largest
        assert cell["rel_error"] == pytest.approx((cell["predicted"] - cell["observed"]) / cell["observed"])
        assert cell["low"] <= cell["predicted"] <= cell["high"]
        assert abs(cell["rel_error"]) < 0.03  # the law is true here, so one step of extrapolation works
    assert result["max_abs_rel_error"] == pytest.approx(max(abs(c["rel_error"]) for c in result["cells"]))

    # corrupt the held-out cells wildly: the predictions must not move, only the errors
    corrupted = [
        {**record, "val_loss": record["val_loss"] * 7.0} if record["tokens"] == largest else record
        for record in records
    ]
    again = holdout_validation(corrupted, "val_loss", hold_out="tokens", bootstrap=30, seed=0)
    assert [c["predicted"] for c in again["cells"]] == [c["predicted"] for c in result["cells"]]
    assert [c["observed"] for c in again["cells"]] == pytest.approx(
        [7 * c["observed"] for c in result["cells"]]
    )
    assert again["fit"]["params"] == result["fit"]["params"]


def test_holdout_of_the_largest_model_needs_three_model_sizes_left():
    records = low_floor_records()
    assert holdout_validation(records, "val_loss", hold_out="n_params", bootstrap=0) is None
    extra = [
        {"model": "huge", "n_params": 1e9, "tokens": record["tokens"], "val_loss": record["val_loss"] * 0.97}
        for record in records
        if record["model"] == "base"
    ]
    result = holdout_validation(records + extra, "val_loss", hold_out="n_params", bootstrap=0)
    assert result["held_out"] == "largest N" and result["value"] == 1e9
    assert {cell["model"] for cell in result["cells"]} == {"huge"}
    assert max(result["fit"]["inputs"]["n_params"]) == 1e8
    assert all(cell["low"] is None for cell in result["cells"])  # bootstrap=0: no interval, no invention
    with pytest.raises(ValueError, match="hold_out"):
        holdout_validation(records, "val_loss", hold_out="flops")


def test_fit_study_keys_floor_fits_holdout_and_ignores_the_repetition_substudy():
    records = low_floor_records()
    repeated = [{**records[0], "substudy": "repetition", "epochs": 4, "val_loss": 0.01}]
    fits = fit_study(records + repeated, bootstrap=0, floor=0.2, constrain_floor=True)
    assert fits["joint"]["n_points"] == 15 and 0.01 not in fits["joint"]["inputs"]["loss"]
    assert fits["joint"]["constrained"] is False and fits["joint"]["floor"] == 0.2
    assert fits["joint_constrained"]["constrained"] is True
    assert fits["joint_constrained"]["params"]["E"] >= 0.2 * (1 - 1e-9)
    assert all(fit["constrained"] for fit in fits["data_laws"].values())
    assert fits["holdout"]["largest_tokens"]["fit_cells"] == 12
    assert fits["holdout"]["largest_n_params"] is None
    assert "model" in fits["skipped"]["holdout_largest_n_params"]
    free_only = fit_study(records, bootstrap=0, floor=0.2)
    assert free_only["joint_constrained"] is None
    with pytest.raises(ValueError, match="constrain_floor=True needs floor"):
        fit_study(records, bootstrap=0, constrain_floor=True)


# ---------------------------------------------------------------------------------------------------------
# Repeated data
# ---------------------------------------------------------------------------------------------------------


def test_effective_tokens_follow_the_published_form():
    assert effective_tokens(1e6, 1, 15.4) == 1e6
    assert effective_tokens(1e6, 2, 15.4) == pytest.approx(1e6 + 1e6 * 15.4 * (1 - math.exp(-1 / 15.4)))
    assert effective_tokens(1e6, 1e6, 15.4) == pytest.approx(1e6 * 16.4)  # saturates at U (1 + R*)


def repetition_losses(epochs, r_star, seed, noise=0.003):
    law = TRUE_LOW_FLOOR
    tokens = effective_tokens(1e6, epochs, r_star) if r_star is not None else 1e6 * np.asarray(epochs)
    rng = np.random.default_rng(seed)
    return (law["E"] + law["B"] / tokens ** law["beta"]) * np.exp(noise * rng.standard_normal(len(epochs)))


def test_repetition_recovers_a_known_R_star():
    epochs = np.array([1, 2, 4, 8, 16, 32, 1, 2, 4, 8, 16, 32], dtype=float)
    losses = repetition_losses(epochs, 5.0, seed=6)
    law = TRUE_LOW_FLOOR
    result = fit_repetition(1e6, epochs, losses, law["E"], law["B"], law["beta"], bootstrap=200, seed=0)
    assert result["R_star"] == pytest.approx(5.0, rel=0.15)
    assert result["ci95"][0] <= 5.0 <= result["ci95"][1]
    assert result["identified"] is True and result["published_R_star"] == PUBLISHED_R_STAR == 15.4
    assert len(result["cells"]) == 12 and result["unique_tokens"] == 1e6
    cell = result["cells"][3]
    assert cell["effective_tokens"] == pytest.approx(effective_tokens(1e6, 8, result["R_star"]))


def test_repetition_that_never_saturates_is_flagged_at_its_bound():
    epochs = np.array([1, 2, 4, 8, 16], dtype=float)
    losses = repetition_losses(epochs, None, seed=7)  # every epoch worth a full set of fresh tokens
    law = TRUE_LOW_FLOOR
    result = fit_repetition(1e6, epochs, losses, law["E"], law["B"], law["beta"], bootstrap=50)
    assert result["identified"] is False
    assert "never stopped helping" in result["identification"]["reason"]
    assert "more epochs than 16" in result["identification"]["fix"]
    with pytest.raises(ValueError, match="more than 1 epoch"):
        fit_repetition(1e6, [1, 1], [3.0, 3.0], 0.3, 600.0, 0.4)


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
    large, small = (
        tokens_for_target_loss(fit, 3.0, n_params=1e9),
        tokens_for_target_loss(fit, 3.0, n_params=1e8),
    )
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

    numeric = minimize_scalar(
        loss_at, bounds=(0.0, math.log(budget / 6)), method="bounded", options={"xatol": 1e-10}
    )
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
    paths = write_report(
        tmp_path / "study", records, fits, floor=floor, corpus_description="synthetic corpus"
    )
    study = tmp_path / "study"
    for name in (
        "results.csv",
        "results.json",
        "fit.json",
        "scaling.png",
        "loss_vs_compute.png",
        "REPORT.md",
    ):
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
