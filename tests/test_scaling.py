"""`wenlm scaling`: nested data subsets, the cells' regimes and rules, the repetition sub-study, workers, the time
budget, resume, the end-to-end study outputs, --report_only, bad grids."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, TrainerControl, TrainerState

from wenlm.training.args import DataArguments, parse_data_sizes
from wenlm.training.cli import main as cli_main
from wenlm.training.commands import scaling as scaling_cli
from wenlm.training.corpus.grammar import exact_entropy_bits_per_byte
from wenlm.training.data.packing import count_bytes, document_rows, token_byte_lengths
from wenlm.training.data.pipeline import prepare_datasets
from wenlm.training.scaling import study as scaling
from wenlm.training.scaling.fit.study_fit import fit_study
from wenlm.training.scaling.report.markdown import write_report
from wenlm.training.scaling.run.cells import KeepBestWeights, cell_plan
from wenlm.training.scaling.run.grid import parse_model_specs
from wenlm.training.scaling.run.planning import (
    assign_to_workers,
    estimate_seconds,
    plan_cells,
    trim_to_budget,
)
from wenlm.training.scaling.run.study_data import cell_dataset, prepare_study_data
from wenlm.training.scaling.run.study_folder import STUDY_FILE, check_study_folder

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BLOCK = 32
DATA_SIZES = (2000, 4000, 8000)
# Two tiny model sizes: a one-layer 32-wide model, and the same with two layers (the per-model override wins).
PRESETS = "nano,nano:num_hidden_layers=2"
THREADS_AT_IMPORT = torch.get_num_threads()


def study_argv(output_dir: Path, cache_dir: Path, *extra: str) -> list[str]:
    return [
        "--train_files", "builtin:300",
        "--data_sizes", ",".join(str(size) for size in DATA_SIZES),
        "--presets", PRESETS,
        "--config_overrides", "hidden_size=32,intermediate_size=64,num_hidden_layers=1",
        "--block_size", str(BLOCK),
        "--vocab_size", "300",
        "--max_validation_docs", "20",
        "--per_device_train_batch_size", "8",
        "--bootstrap", "20",
        "--cache_dir", str(cache_dir),
        "--torch_threads", "1",
        "--workers", "1",
        "--num_train_epochs", "3",
        "--converged_min_steps", "60",  # a few passes per cell: the rule, not the default's 4000 steps, is tested
        "--early_stopping_tokens", "256",
        "--epochs", "1,2,4",
        "--repetition_tokens", "1000",
        "--output_dir", str(output_dir),
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("scaling_cache")


@pytest.fixture(scope="module")
def study(tmp_path_factory, cache_dir) -> Path:
    """One tiny study run through the real CLI; tests that modify it work on a copy."""
    output_dir = tmp_path_factory.mktemp("scaling") / "study"
    assert cli_main(["scaling", *study_argv(output_dir, cache_dir)]) == 0
    return output_dir


def copy_study(study: Path, tmp_path: Path) -> Path:
    target = tmp_path / "study"
    shutil.copytree(study, target)
    return target


def counting_train_cell(monkeypatch, calls: list, real: bool):
    """Count the runner's calls of train_cell (the name study.py calls it by)."""
    original = scaling.train_cell

    def fake(spec, data_size, data, options, epochs=None, rule_tokens=None):
        calls.append((spec.label, data_size, epochs))
        if not real:
            raise AssertionError(f"train_cell called for {spec.label} D={data_size}")
        return original(spec, data_size, data, options, epochs=epochs, rule_tokens=rule_tokens)

    monkeypatch.setattr(scaling, "train_cell", fake)


# ------------------------------------------------------------------------------------------ parsing


def test_parse_data_sizes_sorts():
    assert parse_data_sizes("1e6, 1e5,3e5") == [100_000, 300_000, 1_000_000]


@pytest.mark.parametrize(
    "sizes, message", [("1e5,lots", "not a number"), ("1e5,100000", "twice"), ("0.5", "whole number")]
)
def test_bad_data_sizes_are_refused_while_parsing(sizes, message):
    with pytest.raises(ValueError, match=message):
        parse_data_sizes(sizes)
    # The command refuses a bad grid while parsing, before any data is prepared.
    with pytest.raises(ValueError, match=message):
        scaling_cli.parse_args(["--output_dir", "unused", "--data_sizes", sizes])


def test_parse_model_specs_reads_per_model_overrides():
    specs = parse_model_specs("nano,micro:num_hidden_layers=3:hidden_size=96")
    assert [spec.preset for spec in specs] == ["nano", "micro"]
    assert specs[1].overrides == {"num_hidden_layers": 3, "hidden_size": 96}
    assert specs[1].slug == "micro-num_hidden_layers-3-hidden_size-96"


@pytest.mark.parametrize("presets, message", [("nano,giant", "not a preset"), ("nano:layers", "field=value")])
def test_bad_presets_are_refused_while_parsing(presets, message):
    with pytest.raises(ValueError, match=message):
        parse_model_specs(presets)
    with pytest.raises(ValueError, match=message):
        scaling_cli.parse_args(["--output_dir", "unused", "--presets", presets])


def test_report_only_spellings_are_accepted(tmp_path):
    for flags in (["--report-only"], ["--report_only"], ["--report_only", "true"], ["--report-only=true"]):
        options = scaling_cli.parse_args(["--output_dir", str(tmp_path), *flags])
        assert options.report_only, flags
    assert not scaling_cli.parse_args(["--output_dir", str(tmp_path), "--report_only", "false"]).report_only


def test_training_options_take_trainingarguments_names(tmp_path):
    options = scaling_cli.parse_args(
        ["--output_dir", str(tmp_path), "--per_device_train_batch_size", "4", "--num_train_epochs", "2",
         "--warmup_steps", "0.1", "--learning_rate", "1e-3", "--weight_decay", "0.01", "--discussion", "false"]
    )  # fmt: skip
    assert (options.per_device_train_batch_size, options.num_train_epochs, options.warmup_steps) == (
        4,
        2.0,
        0.1,
    )
    assert (options.learning_rate, options.weight_decay, options.discussion) == (1e-3, 0.01, False)
    with pytest.raises(ValueError, match="--warmup_steps must be a fraction"):
        scaling_cli.parse_args(["--output_dir", str(tmp_path), "--warmup_steps", "100"])
    with pytest.raises(ValueError, match="--per_device_train_batch_size must be positive"):
        scaling_cli.parse_args(["--output_dir", str(tmp_path), "--per_device_train_batch_size", "0"])


def test_old_option_spellings_still_work_and_warn(tmp_path):
    old = ["--output_dir", str(tmp_path), "--batch_size", "4", "--warmup_ratio", "0.1", "--no_discussion"]
    with pytest.warns(FutureWarning) as warned:
        options = scaling_cli.parse_args(old)
    assert (options.per_device_train_batch_size, options.warmup_steps) == (4, 0.1)
    assert options.discussion is False
    messages = " ".join(str(warning.message) for warning in warned)
    for new in ("--per_device_train_batch_size", "--warmup_steps", "--discussion false"):
        assert new in messages


# ------------------------------------------------------------------------------------------ data


@pytest.mark.slow
def test_cells_train_on_nested_prefixes_of_one_shuffled_stream(study, cache_dir):
    options = scaling_cli.parse_args(study_argv(study, cache_dir))
    data = prepare_study_data(options, study)
    small = cell_dataset(data.train, 2000, BLOCK)
    large = cell_dataset(data.train, 8000, BLOCK)
    assert len(small) == math.ceil(2000 / BLOCK) and len(large) == math.ceil(8000 / BLOCK)
    assert small["input_ids"] == large["input_ids"][: len(small)]
    assert all(len(row) == BLOCK for row in large["input_ids"])

    # The stream is the training documents in a seeded random order, not in corpus order.
    unshuffled = prepare_datasets(
        DataArguments(
            train_files=["builtin:300"], validation_split=20, block_size=BLOCK, cache_dir=str(cache_dir)
        ),
        tokenizer=data.tokenizer,
    )
    # The stream's tail is set aside for early stopping: never trained on by any cell, never the validation set.
    assert len(unshuffled.train) == len(data.train) + len(data.early_stopping)
    assert data.early_stopping.num_rows == math.ceil(256 / BLOCK)
    assert unshuffled.train["input_ids"][:4] != data.train["input_ids"][:4]
    # Validation is identical for every cell: the same held-out documents, each scored from its own start.
    texts = [example["text"] for example in unshuffled.validation_text]
    assert document_rows(texts, data.tokenizer, BLOCK)[0]["input_ids"] == data.validation["input_ids"]


def test_a_resumed_study_rebuilds_the_same_stream(study, cache_dir, tmp_path):
    options = scaling_cli.parse_args(study_argv(study, cache_dir))
    first = prepare_study_data(options, study)
    # A fresh cache forces re-tokenizing with the tokenizer saved in the study folder.
    rebuilt = prepare_study_data(scaling_cli.parse_args(study_argv(study, tmp_path / "other_cache")), study)
    assert rebuilt.train["input_ids"] == first.train["input_ids"]
    assert rebuilt.validation_bytes == first.validation_bytes


def test_a_grid_larger_than_the_corpus_fails_before_training(tmp_path, cache_dir, monkeypatch):
    calls: list = []
    counting_train_cell(monkeypatch, calls, real=False)
    argv = study_argv(tmp_path / "study", cache_dir)
    argv[argv.index("--data_sizes") + 1] = "2000,10000000"
    with pytest.raises(ValueError, match=r"only [\d,]+ training tokens.*up to 10,000,000"):
        scaling_cli.main(argv)
    assert calls == []
    assert not (tmp_path / "study" / "cells").exists()


# ------------------------------------------------------------------------------------------ outputs


def test_the_study_writes_every_output(study):
    for name in ("results.csv", "results.json", "fit.json", "REPORT.md", "study.json"):
        assert (study / name).is_file(), name
    for name in ("scaling.png", "loss_vs_compute.png"):
        assert (study / name).read_bytes().startswith(PNG_MAGIC)
    assert (study / "tokenizer" / "tokenizer.json").is_file()
    # --torch_threads 1 applied only while training: the process gets its thread count back.
    assert torch.get_num_threads() == THREADS_AT_IMPORT
    # No model weights end up in the study folder.
    assert not list(study.rglob("*.safetensors")) and not list(study.rglob("*.bin"))

    everything = json.loads((study / "results.json").read_text())["records"]
    records = [record for record in everything if not record.get("substudy")]
    repeated = [record for record in everything if record.get("substudy") == "repetition"]
    assert len(records) == len(DATA_SIZES) * 2
    # The sub-study: U = 1000 tokens seen 1, 2 and 4 times, and single passes over 2U and 4U fresh tokens.
    assert sorted((r["data_size"], r["epochs_requested"]) for r in repeated) == [
        (1000, 1), (1000, 2), (1000, 4), (2000, 1), (4000, 1)
    ]  # fmt: skip
    assert {r["model"] for r in repeated} == {"nano"}
    assert len({r["batch_size"] for r in repeated}) == 1  # equal steps for equal tokens seen
    assert {r["regime"] for r in records} == {"converged"}
    assert {r["regime"] for r in repeated} == {"fixed_epochs"}
    assert {record["model"] for record in records} == {"nano", "nano:num_hidden_layers=2"}
    study_info = json.loads((study / "study.json").read_text())
    bytes_per_token = study_info["validation_bytes_per_token"]
    for record in records:
        assert record["tokens"] == math.ceil(record["data_size"] / BLOCK) * BLOCK
        # Converged cells pass over their data several times, stop on the held-out tail, keep the best weights.
        assert record["tokens_seen"] == pytest.approx(record["tokens"] * record["epochs_trained"], rel=0.01)
        assert 0 < record["best_epoch"] <= record["epochs_trained"] <= record["max_epochs"]
        # Only the stopping evaluations (one per pass) are recorded, not the final validation score.
        steps = [step for step, _ in record["evaluations"]]
        assert len(steps) == len(set(steps)) == math.ceil(record["epochs_trained"] - 1e-9)
        assert record["early_stopping_loss"] == min(loss for _, loss in record["evaluations"])
        assert record["flops"] == pytest.approx(6 * record["n_params"] * record["tokens_seen"])
        assert record["n_params_total"] > record["n_params"] > 0
        assert record["val_bpb"] == pytest.approx(record["val_loss"] / bytes_per_token / math.log(2))
        assert math.isfinite(record["train_loss"])
    by_model: dict = {}
    for record in records:
        by_model.setdefault(record["model"], []).append(record)
    one_layer, two_layers = (sorted(cells, key=lambda r: r["tokens"]) for cells in by_model.values())
    assert two_layers[0]["n_params"] > one_layer[0]["n_params"]
    for cells in (one_layer, two_layers):
        assert cells[-1]["val_loss"] < cells[0]["val_loss"]  # 4x the data (and steps) must help

    fit = json.loads((study / "fit.json").read_text())
    assert fit["metric"] == "val_bpb"
    assert fit["floor"] == pytest.approx(exact_entropy_bits_per_byte()["bits_per_byte"])
    assert set(fit["data_laws"]) == {"nano", "nano:num_hidden_layers=2"}
    assert {"joint", "joint_constrained", "holdout", "repetition"} <= set(fit)
    assert fit["repetition"]["unique_tokens"] == 1024 and "R_star" in fit["repetition"]
    assert "bootstrap_draws" not in json.dumps(fit)
    report = (study / "REPORT.md").read_text()
    # The answer first, then its validation, then the tables.
    order = [report.index(title) for title in ("## How much data", "## Validation", "## Repeating data",
                                               "## Fitted scaling laws", "## Measured cells")]  # fmt: skip
    assert order == sorted(order)
    assert "## Discussion" in report and "## Reproduce" in report
    assert "--presets nano,nano:num_hidden_layers=2" in report
    # The reproduce command names non-default settings by today's option names, not study.json's keys.
    assert "--per_device_train_batch_size 8" in report and "--batch_size" not in report
    with open(study / "results.csv", encoding="utf-8") as handle:
        assert len(handle.read().strip().splitlines()) == len(everything) + 1


def test_rerun_skips_finished_cells_and_retrains_a_deleted_one(study, cache_dir, tmp_path, monkeypatch):
    resumed = copy_study(study, tmp_path)
    calls: list = []
    counting_train_cell(monkeypatch, calls, real=True)
    scaling_cli.main(study_argv(resumed, cache_dir))
    assert calls == []

    deleted = resumed / "cells" / "nano-num_hidden_layers-2_4000.json"
    kept = json.loads((resumed / "cells" / "nano_8000.json").read_text())
    deleted.unlink()
    scaling_cli.main(study_argv(resumed, cache_dir))
    assert calls == [("nano:num_hidden_layers=2", 4000, None)]
    assert deleted.is_file()
    assert json.loads((resumed / "cells" / "nano_8000.json").read_text()) == kept
    assert len(json.loads((resumed / "results.json").read_text())["records"]) == len(DATA_SIZES) * 2 + 5


def test_report_only_renders_without_training(study, cache_dir, tmp_path, monkeypatch):
    rendered = copy_study(study, tmp_path)
    calls: list = []
    counting_train_cell(monkeypatch, calls, real=False)

    def no_data(*args, **kwargs):
        raise AssertionError("--report_only must not prepare data")

    monkeypatch.setattr(scaling, "prepare_study_data", no_data)
    for name in ("REPORT.md", "scaling.png", "fit.json"):
        (rendered / name).unlink()
    scaling_cli.main(
        ["--output_dir", str(rendered), "--report_only", "true", "--metric", "val_loss", "--bootstrap", "0"]
    )
    assert calls == []
    fit = json.loads((rendered / "fit.json").read_text())
    assert fit["metric"] == "val_loss"
    # On val_loss the built-in floor is converted to nats/token at the validation set's bytes per token.
    bytes_per_token = json.loads((rendered / "study.json").read_text())["validation_bytes_per_token"]
    expected = exact_entropy_bits_per_byte()["bits_per_byte"] * bytes_per_token * math.log(2)
    assert fit["floor"] == pytest.approx(expected)
    assert (rendered / "scaling.png").read_bytes().startswith(PNG_MAGIC)
    assert "nats/token" in (rendered / "REPORT.md").read_text()


def test_report_only_without_a_study_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the study first"):
        scaling_cli.main(["--output_dir", str(tmp_path / "nothing"), "--report_only"])


def test_rerun_with_other_settings_is_refused(study, cache_dir):
    argv = study_argv(study, cache_dir)
    argv[argv.index("--block_size") + 1] = "16"
    with pytest.raises(ValueError, match="block_size: study has 32, this run asks 16"):
        scaling_cli.main(argv)


def test_a_folder_with_other_files_is_not_used(tmp_path, cache_dir):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="no study.json"):
        scaling_cli.main(study_argv(occupied, cache_dir))
    assert (occupied / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------------ cells and plans


def test_the_batch_rule_gives_small_cells_steps_and_scales_the_learning_rate(tmp_path):
    options = scaling_cli.parse_args(["--output_dir", str(tmp_path), "--regime", "single_epoch"])
    assert (options.min_steps, options.num_train_epochs) == (300, 1.0)
    big = cell_plan(options, blocks=100_000, hidden_size=64)
    small = cell_plan(options, blocks=1200, hidden_size=64)
    tiny = cell_plan(options, blocks=100, hidden_size=64)
    assert big["batch_size"] == options.per_device_train_batch_size
    assert big["learning_rate"] == pytest.approx(options.learning_rate)
    # 1200 blocks at the study's batch of 16 would be 75 steps; batch 4 gives the 300 the rule asks for.
    assert small["batch_size"] == 4 and small["max_steps"] == 300
    assert small["learning_rate"] == pytest.approx(options.learning_rate * math.sqrt(4 / 16))
    assert tiny["batch_size"] == 1
    # Wider models get the 1/width learning rate of muP.
    assert cell_plan(options, 100_000, hidden_size=128)["learning_rate"] == pytest.approx(
        options.learning_rate / 2
    )
    assert not big["early_stopping"]
    converged = scaling_cli.parse_args(["--output_dir", str(tmp_path)])
    assert (converged.regime, converged.min_steps, converged.num_train_epochs) == ("converged", 100, 16.0)
    plan = cell_plan(converged, blocks=5000, hidden_size=64)
    assert plan["early_stopping"] and plan["eval_steps"] == plan["steps_per_epoch"]
    # A repetition cell passes a fixed number of times, without early stopping, whatever the regime.
    fixed = cell_plan(converged, blocks=5000, hidden_size=64, epochs=4)
    assert not fixed["early_stopping"] and fixed["max_epochs"] == 4


def test_early_stopping_keeps_the_best_weights_and_stops_after_patience():
    keeper = KeepBestWeights(patience=2)
    model = torch.nn.Linear(2, 1)
    control = TrainerControl()
    for step, loss in enumerate([3.0, 2.0, 2.5, 1.9, 2.2, 2.3], start=1):
        with torch.no_grad():
            model.weight.fill_(float(step))
        state = TrainerState(global_step=step, epoch=float(step))
        keeper.on_evaluate(None, state, control, metrics={"eval_loss": loss}, model=model)
        if control.should_training_stop:
            break
    assert step == 6 and control.should_training_stop
    assert (keeper.best_step, keeper.best_loss) == (4, 1.9)
    assert torch.all(keeper.best_state["weight"] == 4.0)


def test_plan_budget_and_worker_shares(tmp_path):
    options = scaling_cli.parse_args(
        ["--output_dir", str(tmp_path), "--presets", "nano,nano:num_hidden_layers=2", "--data_sizes", "1e4,2e4,4e4",
         "--epochs", "1,2,4", "--repetition_tokens", "5000"]
    )  # fmt: skip
    specs = parse_model_specs(options.presets)
    cells = plan_cells(specs, options)
    grid = [cell for cell in cells if not cell.substudy]
    repeated = [cell for cell in cells if cell.substudy]
    assert len(grid) == 6
    # Each repeated cell (U seen R times) has a single-pass partner of R x U fresh tokens.
    assert sorted((cell.data_size, cell.epochs) for cell in repeated) == [
        (5000, 1), (5000, 2), (5000, 4), (10000, 1), (20000, 1)
    ]  # fmt: skip
    assert len({cell.file_name for cell in cells}) == len(cells)
    rates = {spec.label: 10_000.0 for spec in specs}
    kept, dropped, total = trim_to_budget(cells, options, [], rates)
    assert dropped == [] and kept == cells
    substudy_cost = sum(estimate_seconds(cell, options, [], rates) for cell in repeated)
    options.budget_minutes = (total - substudy_cost / 2) / 60
    kept, dropped, estimate = trim_to_budget(cells, options, [], rates)
    # The sub-study gives way first, its most expensive cell first; the grid stays whole.
    assert dropped and all(cell.substudy for cell in dropped) and estimate <= options.budget_minutes * 60
    assert all(cell in kept for cell in grid)
    options.budget_minutes = (total - substudy_cost) / 2 / 60
    kept, dropped, estimate = trim_to_budget(cells, options, [], rates)
    assert not any(cell.substudy for cell in kept) and estimate <= options.budget_minutes * 60
    # Then the grid loses its most expensive cells: the largest D of the larger model first.
    assert dropped[len(repeated)].data_size == 40000
    shares = assign_to_workers(grid, 2, options, [], rates)
    assert sorted(cell.file_name for share in shares for cell in share) == sorted(c.file_name for c in grid)
    loads = [sum(estimate_seconds(cell, options, [], rates) for cell in share) for share in shares]
    assert max(loads) - min(loads) <= max(estimate_seconds(cell, options, [], rates) for cell in grid)


def test_document_rows_predict_every_token_once_from_the_document_start(study):
    tokenizer = AutoTokenizer.from_pretrained(str(study / "tokenizer"))
    texts = ["Tom and Ann went to the park.", "短的。", "A longer document " * 12]
    rows, stats = document_rows(texts, tokenizer, block_size=16)
    eos = tokenizer.eos_token_id
    lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 2 for text in texts]
    assert lengths[-1] > 16 and lengths[1] <= 16
    assert stats["documents"] == 3 and stats["documents_split"] == sum(length > 16 for length in lengths)
    assert stats["rows"] == len(rows) > 3
    predicted = [token for row in rows["input_ids"] for token in row[1:]]
    expected = []
    for text in texts:
        expected += tokenizer(text, add_special_tokens=False)["input_ids"] + [eos]
    assert predicted == expected
    assert rows["input_ids"][0][0] == eos and all(len(row) <= 16 for row in rows["input_ids"])
    byte_lengths = token_byte_lengths(tokenizer)
    assert count_bytes(rows, byte_lengths) == sum(len(text.encode("utf-8")) for text in texts)


def test_the_study_runs_single_epoch_cells_and_workers_in_processes(tmp_path, cache_dir):
    argv = study_argv(
        tmp_path / "study", cache_dir, "--regime", "single_epoch", "--workers", "2", "--epochs", ""
    )
    argv[argv.index("--num_train_epochs") + 1] = "1"
    argv[argv.index("--presets") + 1] = "nano"
    assert cli_main(["scaling", *argv]) == 0
    records = json.loads((tmp_path / "study" / "results.json").read_text())["records"]
    assert len(records) == len(DATA_SIZES)
    for record in records:
        assert record["regime"] == "single_epoch" and record["tokens_seen"] == record["tokens"]
        assert record["epochs_trained"] == pytest.approx(1.0)
    # Two worker processes shared the cells, each with one thread.
    workers = sorted((tmp_path / "study" / ".workers").glob("worker_*.json"))
    assert len(workers) == 2
    assert all(json.loads(path.read_text())["torch_threads"] == 1 for path in workers)
    assert "## Validation" in (tmp_path / "study" / "REPORT.md").read_text()


# ------------------------------------------------------------------------------------------ report from known laws


def synthetic_records(noise: float = 0.001, seed: int = 0) -> list[dict]:
    """Cells that follow L = 0.3 + 20/N^0.4 + 30/D^0.35 with small multiplicative noise."""
    rng = np.random.default_rng(seed)
    records = []
    for n_params in (1e5, 1e6, 1e7, 1e8):
        for tokens in (1e5, 1e6, 1e7, 1e8, 1e9):
            loss = (0.3 + 20 / n_params**0.4 + 30 / tokens**0.35) * math.exp(rng.normal(0, noise))
            records.append(
                {"model": f"m{int(n_params)}", "n_params": n_params, "tokens": tokens, "val_bpb": loss}
            )
    return records


def test_a_report_on_cells_that_follow_a_law_answers_with_validated_numbers(tmp_path):
    records = synthetic_records()
    fits = fit_study(records, metric="val_bpb", bootstrap=200, seed=0, floor=0.3, constrain_floor=True)
    write_report(tmp_path, records, fit_results=fits, floor=0.3, floor_label="known floor", control=True)
    report = (tmp_path / "REPORT.md").read_text()
    answer = report[report.index("## How much data") : report.index("## Validation")]
    assert "tokens needed" in answer and "validated error" in answer and "No answer" not in answer
    validation = report[report.index("## Validation") : report.index("## Fitted scaling laws")]
    assert "Control target ≤ 3%: **met**" in validation
    assert "target ≤ 5%: **met**" in validation
    # Every extrapolated loss the report prints stays at or above the floor.
    extrapolations = report[report.index("## Extrapolations") :]
    assert "EXTRAPOLATION" in extrapolations
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert fit["holdout"]["largest_tokens"]["max_abs_rel_error"] < 0.03
    for split in fit["compute_optimal"]:
        assert split["loss"] >= 0.3
    assert (tmp_path / "scaling.png").read_bytes().startswith(PNG_MAGIC)


def test_a_report_on_cells_that_do_not_identify_the_law_gives_no_extrapolation(tmp_path):
    # Losses that fall along a straight line in log-log space leave E unidentified (it goes to its bound).
    records = [
        {"model": f"m{int(n)}", "n_params": n, "tokens": d, "val_bpb": 5.0 * d**-0.3 * (1 + 1e5 / n) ** 0.01}
        for n in (5e4, 1e5, 2e5)
        for d in (3e4, 6e4, 1.2e5, 2.4e5, 4.8e5)
    ]
    fits = fit_study(records, metric="val_bpb", bootstrap=100, seed=0, floor=0.05)
    write_report(tmp_path, records, fit_results=fits, floor=0.05, floor_label="known floor", control=True)
    report = (tmp_path / "REPORT.md").read_text()
    assert "**No answer from these cells: the joint law is not identified by them.**" in report
    extrapolations = report[report.index("## Extrapolations") :]
    assert "None:" in extrapolations and "EXTRAPOLATION" not in extrapolations
    assert json.loads((tmp_path / "fit.json").read_text())["compute_optimal"] == []


def test_a_study_stored_before_the_optimizer_was_recorded_resumes_at_its_defaults(tmp_path):
    study_dir = tmp_path / "study"
    options = scaling_cli.parse_args(["--output_dir", str(study_dir)])
    check_study_folder(study_dir, options)
    stored = json.loads((study_dir / STUDY_FILE).read_text())
    for key in ("optim", "muon_learning_rate", "muon_weight_decay", "precision"):
        del stored["settings"][key]  # as study.json files written before these settings existed
    (study_dir / STUDY_FILE).write_text(json.dumps(stored))
    check_study_folder(study_dir, options)  # same defaults: the study continues
    with pytest.raises(ValueError, match="optim: study has 'adamw_torch[a-z_]*', this run asks 'muon'"):
        check_study_folder(
            study_dir, scaling_cli.parse_args(["--output_dir", str(study_dir), "--optim", "muon"])
        )
