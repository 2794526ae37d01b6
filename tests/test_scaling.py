"""`wenlm scaling`: nested data subsets, resume, the end-to-end study outputs, --report_only, bad grids."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from wenlm.training.args import DataArguments, parse_data_sizes
from wenlm.training.cli import main as cli_main
from wenlm.training.corpus.grammar import exact_entropy_bits_per_byte
from wenlm.training.data.pipeline import prepare_datasets
from wenlm.training.scaling import study as scaling
from wenlm.training.scaling.grid import parse_model_specs
from wenlm.training.scaling.study_data import cell_dataset, prepare_study_data

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
        "--validation_docs", "20",
        "--per_device_train_batch_size", "8",
        "--bootstrap", "20",
        "--cache_dir", str(cache_dir),
        "--torch_threads", "1",
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

    def fake(spec, data_size, data, options):
        calls.append((spec.label, data_size))
        if not real:
            raise AssertionError(f"train_cell called for {spec.label} D={data_size}")
        return original(spec, data_size, data, options)

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
        scaling.parse_args(["--output_dir", "unused", "--data_sizes", sizes])


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
        scaling.parse_args(["--output_dir", "unused", "--presets", presets])


def test_report_only_spellings_are_accepted(tmp_path):
    for flags in (["--report-only"], ["--report_only"], ["--report_only", "true"], ["--report-only=true"]):
        options = scaling.parse_args(["--output_dir", str(tmp_path), *flags])
        assert options.report_only, flags
    assert not scaling.parse_args(["--output_dir", str(tmp_path), "--report_only", "false"]).report_only


def test_training_options_take_trainingarguments_names(tmp_path):
    options = scaling.parse_args(
        ["--output_dir", str(tmp_path), "--per_device_train_batch_size", "4", "--num_train_epochs", "2",
         "--warmup_steps", "0.1", "--learning_rate", "1e-3", "--weight_decay", "0.01", "--discussion", "false"]
    )  # fmt: skip
    assert (options.per_device_train_batch_size, options.num_train_epochs, options.warmup_steps) == (4, 2.0, 0.1)
    assert (options.learning_rate, options.weight_decay, options.discussion) == (1e-3, 0.01, False)
    with pytest.raises(ValueError, match="--warmup_steps must be a fraction"):
        scaling.parse_args(["--output_dir", str(tmp_path), "--warmup_steps", "100"])
    with pytest.raises(ValueError, match="--per_device_train_batch_size must be positive"):
        scaling.parse_args(["--output_dir", str(tmp_path), "--per_device_train_batch_size", "0"])


def test_old_option_spellings_still_work_and_warn(tmp_path):
    old = ["--output_dir", str(tmp_path), "--batch_size", "4", "--epochs", "2", "--warmup_ratio", "0.1",
           "--no_discussion"]  # fmt: skip
    with pytest.warns(FutureWarning) as warned:
        options = scaling.parse_args(old)
    assert (options.per_device_train_batch_size, options.num_train_epochs, options.warmup_steps) == (4, 2.0, 0.1)
    assert options.discussion is False
    messages = " ".join(str(warning.message) for warning in warned)
    for new in ("--per_device_train_batch_size", "--num_train_epochs", "--warmup_steps", "--discussion false"):
        assert new in messages


# ------------------------------------------------------------------------------------------ data


@pytest.mark.slow
def test_cells_train_on_nested_prefixes_of_one_shuffled_stream(study, cache_dir):
    options = scaling.parse_args(study_argv(study, cache_dir))
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
    assert len(unshuffled.train) == len(data.train)
    assert unshuffled.train["input_ids"][:4] != data.train["input_ids"][:4]
    # Validation is identical for every cell: the same held-out documents, packed the same way.
    assert unshuffled.validation["input_ids"] == data.validation["input_ids"]


def test_a_resumed_study_rebuilds_the_same_stream(study, cache_dir, tmp_path):
    options = scaling.parse_args(study_argv(study, cache_dir))
    first = prepare_study_data(options, study)
    # A fresh cache forces re-tokenizing with the tokenizer saved in the study folder.
    rebuilt = prepare_study_data(
        scaling.parse_args(study_argv(study, tmp_path / "other_cache")), study
    )
    assert rebuilt.train["input_ids"] == first.train["input_ids"]
    assert rebuilt.validation_bytes == first.validation_bytes


def test_a_grid_larger_than_the_corpus_fails_before_training(tmp_path, cache_dir, monkeypatch):
    calls: list = []
    counting_train_cell(monkeypatch, calls, real=False)
    argv = study_argv(tmp_path / "study", cache_dir)
    argv[argv.index("--data_sizes") + 1] = "2000,10000000"
    with pytest.raises(ValueError, match=r"only [\d,]+ training tokens.*up to 10,000,000"):
        scaling.main(argv)
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

    records = json.loads((study / "results.json").read_text())["records"]
    assert len(records) == len(DATA_SIZES) * 2
    assert {record["model"] for record in records} == {"nano", "nano:num_hidden_layers=2"}
    study_info = json.loads((study / "study.json").read_text())
    bytes_per_token = study_info["validation_bytes_per_token"]
    for record in records:
        assert record["tokens"] == math.ceil(record["data_size"] / BLOCK) * BLOCK
        assert record["tokens_seen"] == record["tokens"]
        assert record["flops"] == pytest.approx(6 * record["n_params"] * record["tokens"])
        assert record["n_params_total"] > record["n_params"] > 0
        assert record["val_bpb"] == pytest.approx(record["val_loss"] / bytes_per_token / math.log(2))
        assert record["steps"] == math.ceil(record["blocks"] / 8)
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
    report = (study / "REPORT.md").read_text()
    assert "## Fitted irreducible loss vs the entropy floor of the built-in corpus" in report
    assert "## Discussion" in report and "## Reproduce" in report
    assert "--presets nano,nano:num_hidden_layers=2" in report
    # The reproduce command names non-default settings by today's option names, not study.json's keys.
    assert "--per_device_train_batch_size 8" in report and "--batch_size" not in report
    with open(study / "results.csv", encoding="utf-8") as handle:
        assert len(handle.read().strip().splitlines()) == len(records) + 1


def test_rerun_skips_finished_cells_and_retrains_a_deleted_one(study, cache_dir, tmp_path, monkeypatch):
    resumed = copy_study(study, tmp_path)
    calls: list = []
    counting_train_cell(monkeypatch, calls, real=True)
    scaling.main(study_argv(resumed, cache_dir))
    assert calls == []

    deleted = resumed / "cells" / "nano-num_hidden_layers-2_4000.json"
    kept = json.loads((resumed / "cells" / "nano_8000.json").read_text())
    deleted.unlink()
    scaling.main(study_argv(resumed, cache_dir))
    assert calls == [("nano:num_hidden_layers=2", 4000)]
    assert deleted.is_file()
    assert json.loads((resumed / "cells" / "nano_8000.json").read_text()) == kept
    assert len(json.loads((resumed / "results.json").read_text())["records"]) == len(DATA_SIZES) * 2


def test_report_only_renders_without_training(study, cache_dir, tmp_path, monkeypatch):
    rendered = copy_study(study, tmp_path)
    calls: list = []
    counting_train_cell(monkeypatch, calls, real=False)

    def no_data(*args, **kwargs):
        raise AssertionError("--report_only must not prepare data")

    monkeypatch.setattr(scaling, "prepare_study_data", no_data)
    for name in ("REPORT.md", "scaling.png", "fit.json"):
        (rendered / name).unlink()
    scaling.main(["--output_dir", str(rendered), "--report_only", "true", "--metric", "val_loss", "--bootstrap", "0"])
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
        scaling.main(["--output_dir", str(tmp_path / "nothing"), "--report_only"])


def test_rerun_with_other_settings_is_refused(study, cache_dir):
    argv = study_argv(study, cache_dir)
    argv[argv.index("--block_size") + 1] = "16"
    with pytest.raises(ValueError, match="block_size: study has 32, this run asks 16"):
        scaling.main(argv)


def test_a_folder_with_other_files_is_not_used(tmp_path, cache_dir):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="no study.json"):
        scaling.main(study_argv(occupied, cache_dir))
    assert (occupied / "notes.txt").read_text() == "mine"
