"""`--optim muon` (Muon for the decoder's matrices, AdamW for the rest, one optimizer), a bare
warmup_stable_decay schedule, and `--precision`: the parameter split, the learning-rate ratio under schedulers,
checkpoint resume, gradient accumulation, and the errors."""

import math

import pytest
import torch
from helpers import tiny_config_fields
from torch.utils.data import Dataset

from wenlm.modeling import WenLMConfig, WenLMForCausalLM
from wenlm.training.args.training import (
    CPU_BF16_FLAGS,
    DEFAULT_MUON_LEARNING_RATE,
    QUICKSTART_DEFAULTS,
    WenLMTrainingArguments,
    cpu_bf16_flags,
    native_bf16,
)
from wenlm.training.commands.pretrain import parse_args as parse_pretrain_args
from wenlm.training.report import precision_section
from wenlm.training.trainer import LanguageModelTrainer, MuonWithAdamW, decoder_matrix_names

VOCAB = 97


def tiny_model(seed: int = 0) -> WenLMForCausalLM:
    torch.manual_seed(seed)
    return WenLMForCausalLM(WenLMConfig(**tiny_config_fields(VOCAB, max_position_embeddings=32)))


class Rows(Dataset):
    """Fixed random token rows: the same data in every run."""

    def __init__(self, count: int = 48, length: int = 16):
        generator = torch.Generator().manual_seed(1)
        self.ids = torch.randint(3, VOCAB, (count, length), generator=generator)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        return {"input_ids": self.ids[index], "labels": self.ids[index]}


def arguments(output_dir, **overrides) -> WenLMTrainingArguments:
    settings = dict(
        use_cpu=True,
        report_to=[],
        optim="muon",
        learning_rate=3e-3,
        muon_learning_rate=0.02,
        per_device_train_batch_size=4,
        max_steps=6,
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
        data_seed=0,
        weight_decay=0.1,
    )
    return WenLMTrainingArguments(str(output_dir), **{**settings, **overrides})


def trainer_for(model, args) -> LanguageModelTrainer:
    return LanguageModelTrainer(model=model, args=args, train_dataset=Rows(), loss_chunk_size=8)


def test_muon_takes_the_decoder_matrices_and_adamw_the_rest(tmp_path):
    model = tiny_model()
    optimizer = trainer_for(model, arguments(tmp_path)).create_optimizer()
    assert isinstance(optimizer, MuonWithAdamW)
    in_muon = {id(p) for group in optimizer.muon.param_groups for p in group["params"]}
    in_adamw = {id(p) for group in optimizer.adamw.param_groups for p in group["params"]}
    names = {id(p): name for name, p in model.named_parameters()}
    assert {names[i] for i in in_muon} == {
        name for name, p in model.named_parameters() if name.startswith("model.layers.") and p.ndim == 2
    }
    assert {names[i] for i in in_adamw} == set(names.values()) - {names[i] for i in in_muon}
    assert model.lm_head.weight is model.model.embed_tokens.weight and id(model.lm_head.weight) in in_adamw
    assert all(p.ndim == 1 for name, p in model.named_parameters() if "norm" in name)
    assert decoder_matrix_names(model) == {names[i] for i in in_muon}
    # AdamW's groups come first, so the learning rate the Trainer logs is AdamW's.
    assert [group["lr"] for group in optimizer.param_groups] == [3e-3, 3e-3, 0.02]
    decays = {group["weight_decay"] for group in optimizer.adamw.param_groups}
    assert decays == {0.1, 0.0} and optimizer.muon.param_groups[0]["weight_decay"] == 0.01


@pytest.mark.parametrize("schedule", ["cosine", "warmup_stable_decay", "linear"])
def test_schedules_keep_the_ratio_of_muon_and_adamw_learning_rates(tmp_path, schedule):
    trainer = trainer_for(tiny_model(), arguments(tmp_path, lr_scheduler_type=schedule, warmup_steps=3))
    trainer.create_optimizer_and_scheduler(num_training_steps=20)
    for _ in range(18):  # into every schedule's decay
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        adamw, _, muon = (group["lr"] for group in trainer.optimizer.param_groups)
        assert muon == pytest.approx(adamw * 0.02 / 3e-3, rel=1e-9)
    assert 0 < adamw < 3e-3


def test_bare_warmup_stable_decay_decays_over_the_last_fraction(tmp_path):
    args = arguments(
        tmp_path,
        optim="adamw_torch",
        lr_scheduler_type="warmup_stable_decay",
        warmup_steps=10,
        lr_decay_fraction=0.25,
    )
    trainer = trainer_for(tiny_model(), args)
    trainer.create_optimizer_and_scheduler(num_training_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    assert lrs[5] < 3e-3 and lrs[10] == lrs[74] == pytest.approx(3e-3)
    assert lrs[76] < 3e-3 and lrs[99] < 1e-4
    too_long = trainer_for(
        tiny_model(),
        arguments(tmp_path, lr_scheduler_type="warmup_stable_decay", warmup_steps=0.9, lr_decay_fraction=0.5),
    )
    too_long.create_optimizer()
    with pytest.raises(ValueError, match="lower --warmup_steps or --lr_decay_fraction"):
        too_long.create_scheduler(num_training_steps=10)


def train(args, resume_from=None):
    model = tiny_model(
        seed=5 if resume_from else 0
    )  # a resumed run must take every weight from the checkpoint
    trainer = trainer_for(model, args)
    trainer.train(resume_from_checkpoint=resume_from)
    losses = {entry["step"]: entry["loss"] for entry in trainer.state.log_history if "loss" in entry}
    return model, losses


@pytest.mark.slow
def test_resumed_muon_run_is_the_uninterrupted_run(tmp_path):
    # A checkpoint is what a run killed with kill -9 leaves (tests/test_pretrain.py kills one): resuming from
    # the middle one must give the same weights and losses as the run that went on.
    settings = dict(
        save_strategy="steps", save_steps=3, lr_scheduler_type="warmup_stable_decay", warmup_steps=2
    )
    straight, straight_losses = train(arguments(tmp_path / "straight", **settings))
    resumed, resumed_losses = train(
        arguments(tmp_path / "resumed", **settings), resume_from=str(tmp_path / "straight" / "checkpoint-3")
    )
    # Steps 1-3 come back with the checkpoint's log history, steps 4-6 are trained again.
    assert sorted(resumed_losses) == [1, 2, 3, 4, 5, 6] and resumed_losses == straight_losses
    for (name, want), got in zip(straight.named_parameters(), resumed.parameters()):
        assert torch.equal(want, got), name


@pytest.mark.slow
def test_gradient_accumulation_with_muon_steps_like_one_large_batch(tmp_path):
    weights = []
    for batch, accumulation in ((4, 1), (2, 2)):
        model, _ = train(
            arguments(
                tmp_path / f"b{batch}",
                per_device_train_batch_size=batch,
                gradient_accumulation_steps=accumulation,
                max_steps=3,
            )
        )
        weights.append(dict(model.named_parameters()))
    start = dict(tiny_model().named_parameters())
    for name, one_batch in weights[0].items():
        moved = (one_batch - start[name]).abs().max()
        # Muon orthogonalises in bf16: rounding flips can differ, far below the size of a step.
        assert (weights[1][name] - one_batch).abs().max() <= 0.05 * moved + 1e-6, name


def test_a_checkpoint_of_another_optimizer_is_refused_by_name(tmp_path):
    model = tiny_model()
    optimizer = trainer_for(model, arguments(tmp_path)).create_optimizer()
    adamw_state = torch.optim.AdamW(model.parameters()).state_dict()
    with pytest.raises(ValueError, match="Resume with the --optim the run was started with"):
        optimizer.load_state_dict(adamw_state)


def test_muon_needs_torch_2_9_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delattr(torch.optim, "Muon")
    with pytest.raises(ValueError, match=r"--optim muon needs torch.optim.Muon, which torch has since 2.9"):
        arguments(tmp_path)
    assert arguments(tmp_path, optim="adamw_torch").optim == "adamw_torch"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"muon_learning_rate": 0.0}, "--muon_learning_rate must be positive"),
        ({"muon_weight_decay": -1.0}, "--muon_weight_decay must be >= 0"),
        ({"muon_adjust_lr_fn": "spectral"}, "--muon_adjust_lr_fn must be one of"),
        ({"lr_decay_fraction": 1.5}, "--lr_decay_fraction must be a share"),
        ({"precision": "fp8"}, "--precision must be one of"),
        ({"precision": "fp32", "bf16": True}, "--precision fp32 and --bf16 true disagree"),
    ],
)
def test_bad_options_are_refused_by_name(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        arguments(tmp_path, **change)


def test_precision_option_sets_bf16_and_the_report_says_why(tmp_path):
    assert (
        arguments(tmp_path).optim == "muon"
        and arguments(tmp_path).muon_learning_rate == DEFAULT_MUON_LEARNING_RATE
    )
    chosen = arguments(tmp_path, precision="bf16")
    assert chosen.bf16 and precision_section(chosen)["reason"] == "--precision bf16"
    assert not arguments(tmp_path, precision="fp32").bf16
    native, evidence = native_bf16("cpu")
    auto = arguments(tmp_path, precision="auto")
    assert auto.bf16 is native
    section = precision_section(auto)
    assert section["used"] == ("bf16" if native else "fp32") and section["native_bf16"] is native
    assert section["reason"].startswith("--precision auto on cpu") and evidence in section["reason"]
    assert precision_section(arguments(tmp_path))["reason"] == "default: no --precision, --bf16 or --fp16"
    # auto is the pretraining default: an explicit --bf16 true wins over it and is what the report names.
    flagged = arguments(tmp_path, precision="auto", bf16=True)
    assert flagged.bf16 and precision_section(flagged)["reason"] == "--bf16 true"


def test_pretrain_and_quickstart_default_to_auto_precision(tmp_path):
    _, _, pretrain_args, _ = parse_pretrain_args(
        ["--train_files", "builtin:10", "--output_dir", str(tmp_path / "p")]
    )
    assert pretrain_args.precision == "auto" and pretrain_args.bf16 is native_bf16("cpu")[0]
    explicit = parse_pretrain_args(
        ["--train_files", "builtin:10", "--output_dir", str(tmp_path / "q"), "--precision", "fp32"]
    )[2]
    assert not explicit.bf16 and QUICKSTART_DEFAULTS["precision"] == "auto"


def test_cpu_bf16_detection_agrees_with_the_kernel_flags(monkeypatch):
    probed = cpu_bf16_flags()
    assert set(probed) <= set(CPU_BF16_FLAGS)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    from_cpuinfo = cpu_bf16_flags()
    try:
        flags = open("/proc/cpuinfo", encoding="utf-8").read().split()
    except OSError:
        flags = []
    assert from_cpuinfo == [flag for flag in CPU_BF16_FLAGS if flag in flags]
    if flags:  # Linux: the kernel and torch's probes see the same CPU
        assert from_cpuinfo == probed


def test_bf16_autocast_on_cpu_trains_with_finite_loss_and_float32_weights(tmp_path):
    model, losses = train(arguments(tmp_path, optim="adamw_torch", precision="bf16", max_steps=3))
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses.values())
    assert {p.dtype for p in model.parameters()} == {torch.float32}
