"""`wenlm pretrain` end to end on tiny settings: outputs, metrics, errors, resume after kill -9, torchrun, the
loss curve's series, and Muon / bf16 / warmup_stable_decay through the command."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open
from transformers import pipeline

from wenlm.training.args import DEFAULT_LOSS_CHUNK_SIZE
from wenlm.training.cli import main as cli_main
from wenlm.training.commands.pretrain import main as pretrain_main
from wenlm.training.commands.quickstart import main as quickstart_main
from wenlm.training.commands.quickstart import parse_args as parse_quickstart_args
from wenlm.training.corpus.grammar import exact_entropy_bits_per_byte, generate_documents
from wenlm.training.report import loss_curve_series
from wenlm.training.run_folder import LOCK_NAME, last_complete_checkpoint

TINY_MODEL = (
    "hidden_size=32,intermediate_size=64,num_hidden_layers=2,num_attention_heads=2,num_key_value_heads=1"
)


def tiny_args(output_dir, *extra, docs=400, steps=20):
    return [
        "--train_files",
        f"builtin:{docs}",
        "--output_dir",
        str(output_dir),
        "--preset",
        "nano",
        "--config_overrides",
        TINY_MODEL,
        "--vocab_size",
        "400",
        "--block_size",
        "64",
        "--per_device_train_batch_size",
        "8",
        "--max_steps",
        str(steps),
        "--eval_steps",
        "10",
        "--save_steps",
        "10",
        "--logging_steps",
        "5",
        "--disable_tqdm",
        "true",
        "--cache_dir",
        str(Path(output_dir).parent / "data-cache"),
        *extra,
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("pretrain") / "model"
    report = pretrain_main(tiny_args(output_dir))
    return output_dir, report


@pytest.mark.slow
def test_output_folder_holds_everything_a_hub_model_needs(trained):
    output_dir, _ = trained
    names = {path.name for path in output_dir.iterdir()}
    expected = {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "configuration_wenlm.py",
        "modeling_wenlm.py",
        "training_report.json",
        "loss_curve.png",
        "README.md",
        "log_history.json",
    }
    assert expected <= names, expected - names
    assert (output_dir / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    generator = pipeline("text-generation", model=str(output_dir), trust_remote_code=True)
    text = generator("小明", max_new_tokens=5, do_sample=False)[0]["generated_text"]
    assert text.startswith("小明") and len(text) > len("小明")


def test_report_numbers_are_consistent(trained):
    output_dir, report = trained
    on_disk = json.loads((output_dir / "training_report.json").read_text())
    assert on_disk == report
    training, results, data = report["training"], report["results"], report["data"]
    assert training["steps"] == 20
    assert training["tokens_seen"] == 20 * 8 * 64
    assert (
        training["flops_estimate"]
        == 6 * report["model"]["non_embedding_parameters"] * training["tokens_seen"]
    )
    assert report["entropy_floor_bpb"] == pytest.approx(exact_entropy_bits_per_byte()["bits_per_byte"])
    # A barely trained model is far above the entropy floor, never below it.
    assert results["eval_bpb"] > report["entropy_floor_bpb"]
    assert results["eval_perplexity"] == pytest.approx(2.718281828 ** results["eval_loss"], rel=1e-6)
    assert data["documents"]["train"] + data["documents"]["validation"] == 400
    assert data["cleaning"]["dedup"]["documents_in"] == 400
    assert set(report["tokenizer"]["stats_by_language"]) == {"zh", "en"}
    logged_bpb = [
        entry["eval_bpb"]
        for entry in json.loads((output_dir / "log_history.json").read_text())
        if "eval_bpb" in entry
    ]
    assert len(logged_bpb) >= 2 and logged_bpb[-1] == pytest.approx(results["eval_bpb"])


def test_refuses_to_overwrite_an_existing_model(trained, capsys):
    output_dir, _ = trained
    before = (output_dir / "model.safetensors").read_bytes()
    assert cli_main(["pretrain", *tiny_args(output_dir)]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert (output_dir / "model.safetensors").read_bytes() == before


def test_last_checkpoint_of_a_real_run_is_its_highest_and_a_finished_run_is_not_resumed(trained, capsys):
    output_dir, _ = trained
    assert sorted(path.name for path in output_dir.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-20"]
    assert last_complete_checkpoint(output_dir) == str(output_dir / "checkpoint-20")
    assert not (output_dir / LOCK_NAME).exists()  # released and removed: never part of the model folder
    before = (output_dir / "model.safetensors").read_bytes()
    assert cli_main(["pretrain", *tiny_args(output_dir, "--resume_from_checkpoint", "last")]) == 2
    assert "finished model" in capsys.readouterr().err
    assert (output_dir / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize(
    "change, message",
    [
        (["--train_files", "/no/such/corpus.txt"], "does not exist"),
        (["--preset", "giant"], "Valid presets"),
        (["--config_overrides", "num_hidden_layers"], "not of the form name=value"),
        (["--config_overrides", "hidden_sise=64"], "unknown config fields"),
        (["--block_size", "100000"], "block_size"),
    ],
)
def test_bad_arguments_fail_before_training_with_a_clear_message(tmp_path, capsys, change, message):
    args = tiny_args(tmp_path / "out")
    for flag, value in zip(change[::2], change[1::2]):
        args[args.index(flag) + 1] = value
    assert cli_main(["pretrain", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_negative_loss_chunk_size_is_refused_by_name(tmp_path, capsys):
    assert cli_main(["pretrain", *tiny_args(tmp_path / "out"), "--loss_chunk_size", "-5"]) == 2
    assert "--loss_chunk_size must be a positive number" in capsys.readouterr().err


def test_arguments_from_a_yaml_file(tmp_path):
    args = tiny_args(tmp_path / "out", steps=4)
    options = {flag[2:]: value for flag, value in zip(args[::2], args[1::2])}
    options["train_files"] = [options["train_files"]]
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(options))
    report = pretrain_main([str(config_file)])
    assert report["training"]["steps"] == 4


def run_cli(args, **kwargs):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "wenlm.training.cli", "pretrain", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


@pytest.mark.slow
def test_resume_after_kill_9_finishes_like_an_uninterrupted_run(tmp_path):
    # Long enough that the run is still going when checkpoint-20 appears (checkpoints appear only once complete,
    # and 40 tiny steps can finish within one poll).
    steps = 80
    reference = tmp_path / "reference"
    process = run_cli(tiny_args(reference, "--seed", "7", steps=steps))
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]

    interrupted = tmp_path / "interrupted"
    process = run_cli(tiny_args(interrupted, "--seed", "7", steps=steps))
    deadline = time.time() + 600
    while not (interrupted / "checkpoint-20").is_dir() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be killed; " + process.stdout.read()[-2000:]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (interrupted / "training_report.json").exists()
    # A kill while a checkpoint is being written leaves a half one; make sure there is one past the last complete
    # checkpoint (weights cut short, no trainer_state.json): `last` must skip it, not resume from it.
    complete = last_complete_checkpoint(interrupted)
    assert complete is not None
    half = interrupted / f"checkpoint-{int(complete.rsplit('-', 1)[1]) + 10}"
    if not half.exists():
        half.mkdir()
        weights = (Path(complete) / "model.safetensors").read_bytes()
        (half / "model.safetensors").write_bytes(weights[: len(weights) // 3])
    assert (interrupted / LOCK_NAME).exists()  # the killed run's lock file: stale, cleared by the next run

    process = run_cli(tiny_args(interrupted, "--seed", "7", "--resume_from_checkpoint", "last", steps=steps))
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    assert f"Skipping incomplete checkpoint {half}" in output
    resumed = json.loads((interrupted / "training_report.json").read_text())
    uninterrupted = json.loads((reference / "training_report.json").read_text())
    assert resumed["training"]["steps"] == uninterrupted["training"]["steps"] == steps
    assert resumed["results"]["eval_loss"] == pytest.approx(uninterrupted["results"]["eval_loss"], rel=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("optim", ["adamw_torch", "muon"])
def test_torchrun_with_two_processes_trains_and_saves_one_model(tmp_path, optim):
    torchrun = Path(sys.executable).with_name("torchrun")
    output_dir = tmp_path / "ddp"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "wenlm.training.cli",
            "pretrain",
            *tiny_args(output_dir, "--optim", optim, steps=6),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    report = json.loads((output_dir / "training_report.json").read_text())
    assert report["training"]["world_size"] == 2
    assert report["training"]["hyperparameters"]["optim"] == optim
    assert math.isfinite(report["results"]["eval_loss"])
    # Each optimizer step consumed one batch per process.
    assert report["training"]["tokens_seen"] == 6 * 2 * 8 * 64
    assert len(list(output_dir.glob("*.safetensors"))) == 1


def test_tokenizer_larger_than_the_model_vocabulary_is_refused(trained, tmp_path, capsys):
    tokenizer_dir, _ = trained
    args = tiny_args(tmp_path / "out", "--tokenizer", str(tokenizer_dir))
    del args[args.index("--vocab_size") : args.index("--vocab_size") + 2]  # refused next to --tokenizer
    args[args.index("--config_overrides") + 1] += ",vocab_size=100"
    assert cli_main(["pretrain", *args]) == 2
    error = capsys.readouterr().err
    assert "The tokenizer has" in error and "vocab_size is 100" in error


@pytest.mark.slow
def test_streaming_run_trains_from_an_iterable_dataset(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(doc["text"] for doc in generate_documents(300, seed=9)), encoding="utf-8")
    args = tiny_args(
        tmp_path / "out",
        "--streaming",
        "true",
        "--tokenizer_sample_docs",
        "200",
        "--max_validation_docs",
        "30",
        "--validation_split",
        "0.1",
        steps=4,
    )
    args[args.index("--train_files") + 1] = str(corpus)
    report = pretrain_main(args)
    assert report["training"]["steps"] == 4
    assert report["data"]["streaming"] is True
    assert report["results"]["eval_bpb"] > 0
    assert report["entropy_floor_bpb"] is None


def test_streaming_without_max_steps_is_refused(tmp_path, capsys):
    args = tiny_args(tmp_path / "out", "--streaming", "true")
    args[args.index("--max_steps") + 1] = "-1"
    assert cli_main(["pretrain", *args]) == 2
    assert "--streaming needs --max_steps" in capsys.readouterr().err


def test_pretrain_uses_the_fused_loss_by_default_and_saves_no_training_keys(trained):
    # tests/test_trainer.py checks that `wenlm pretrain` runs the fused loss every step and that it equals the
    # stock loss; here: it is on by default, and the published config carries no training-only keys.
    output_dir, _ = trained
    assert DEFAULT_LOSS_CHUNK_SIZE > 0
    saved = json.loads((output_dir / "config.json").read_text())
    assert "loss_chunk_size" not in saved and "compile_decoder_layers" not in saved


@pytest.mark.slow
def test_pretrain_with_jieba_segmentation(tmp_path):
    # The jieba step is a Python pre-tokenizer that tokenizer.json cannot hold; the data cache keys once
    # failed on it, so run the whole command.
    pytest.importorskip("jieba")
    output_dir = tmp_path / "model"
    report = pretrain_main(tiny_args(output_dir, "--use_jieba", "true", docs=300, steps=10))
    assert report["training"]["steps"] == 10
    config = json.loads((output_dir / "tokenizer_config.json").read_text())
    assert "WenLMJiebaTokenizerFast" in json.dumps(config)


def test_quickstart_defaults_and_pretrain_options_pass_through(tmp_path):
    quick, model_args, data_args, training_args = parse_quickstart_args(
        ["--num-docs", "600", "--preset", "nano"]
    )
    assert quick.num_docs == 600 and data_args.train_files == ["builtin:600"]
    assert model_args.preset == "nano" and model_args.vocab_size == 4096
    assert training_args.output_dir == "wenlm-quickstart" and training_args.learning_rate == 3e-3
    assert parse_quickstart_args(["--train_files", "corpus.txt"])[2].train_files == ["corpus.txt"]
    # An existing tokenizer keeps its own vocabulary: the quickstart's size must not count as an explicit one.
    assert parse_quickstart_args(["--tokenizer", "some-tokenizer"])[1].vocab_size is None
    assert parse_quickstart_args(["--vocab_size", "2048"])[1].vocab_size == 2048


def test_quickstart_trains_and_prints_samples(tmp_path, capsys):
    args = tiny_args(tmp_path / "qs", steps=4)
    del args[args.index("--train_files") : args.index("--train_files") + 2]
    report = quickstart_main(["--num_docs", "300", *args])
    assert report["training"]["steps"] == 4
    assert report["data"]["sources"][0]["spec"] == "builtin:300"
    printed = capsys.readouterr().out
    assert "Samples from pipeline('text-generation')" in printed and "validation bits per byte" in printed
    assert (tmp_path / "qs" / "model.safetensors").is_file()


def test_loss_curve_plots_train_and_validation_in_bits_per_byte(trained):
    output_dir, report = trained
    log = json.loads((output_dir / "log_history.json").read_text())
    bytes_per_token = report["data"]["validation_bytes_per_token"]
    curves = loss_curve_series(log, bytes_per_token)
    assert curves["unit"] == "bits per byte" and curves["x"] == "tokens seen"
    train = [entry for entry in log if "loss" in entry]
    assert curves["train"]["values"] == pytest.approx(
        [e["loss"] / math.log(2) / bytes_per_token for e in train]
    )
    assert curves["train"]["tokens"] == [e["num_input_tokens_seen"] for e in train]
    # The validation series is what the Trainer logged as eval_bpb: the same unit as the training series.
    assert curves["validation"]["values"] == pytest.approx([e["eval_bpb"] for e in log if "eval_bpb" in e])
    seconds = curves["train"]["seconds"] + curves["validation"]["seconds"]
    assert all(value is not None and value >= 0 for value in seconds)
    assert curves["train"]["seconds"] == sorted(curves["train"]["seconds"])
    assert loss_curve_series(log)["unit"] == "nats per token"  # fine-tuning: no bytes per token


def test_muon_bf16_and_warmup_stable_decay_through_the_command(tmp_path):
    args = tiny_args(
        tmp_path / "out",
        "--optim",
        "muon",
        "--precision",
        "bf16",
        "--lr_scheduler_type",
        "warmup_stable_decay",
        "--muon_learning_rate",
        "0.03",
        steps=20,
    )
    del args[args.index("--eval_steps") : args.index("--eval_steps") + 2]  # the default: a tenth of the run
    report = pretrain_main(args)
    hyperparameters = report["training"]["hyperparameters"]
    assert hyperparameters["optim"] == "muon" and hyperparameters["muon_learning_rate"] == 0.03
    assert hyperparameters["lr_scheduler_type"] == "warmup_stable_decay" and hyperparameters["bf16"] is True
    assert report["training"]["precision"]["used"] == "bf16"
    assert report["training"]["precision"]["reason"] == "--precision bf16"
    log = json.loads((tmp_path / "out" / "log_history.json").read_text())
    # Every 2 of the 20 steps, then the final evaluation.
    assert [entry["step"] for entry in log if "eval_loss" in entry] == [*range(2, 21, 2), 20]
    assert all(math.isfinite(entry["loss"]) for entry in log if "loss" in entry)
    learning_rates = [entry["learning_rate"] for entry in log if "learning_rate" in entry]
    assert max(learning_rates) == pytest.approx(2e-3) and learning_rates[-1] < 2e-3  # stable, then decayed
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(name).dtype for name in weights.keys()} == {torch.float32}
