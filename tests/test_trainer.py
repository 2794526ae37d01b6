"""LanguageModelTrainer: the fused chunked loss gives the stock loss and gradients (pinned to transformers'
Llama), honours gradient accumulation like the stock loss, steps aside wherever it cannot apply, and works with
`--torch_compile true`."""

import json
import shutil

import pytest
import torch
from helpers import tiny_config_fields
from peft import LoraConfig, get_peft_model
from torch.utils.data import Dataset
from transformers import Trainer, TrainingArguments

from wenlm.modeling import WenLMConfig, WenLMForCausalLM
from wenlm.training import trainer as trainer_module
from wenlm.training.cli import main as cli_main
from wenlm.training.export import llama_twin
from wenlm.training.run_folder import last_complete_checkpoint
from wenlm.training.trainer import STAGING_DIR, LanguageModelTrainer, fused_linear_causal_lm_loss

VOCAB = 211


def wenlm_model(seed: int = 0, **overrides) -> WenLMForCausalLM:
    fields = tiny_config_fields(VOCAB, width=48, initializer_range=0.2)
    torch.manual_seed(seed)
    return WenLMForCausalLM(WenLMConfig(**{**fields, **overrides}))


def make_trainer(model, tmp_path, loss_chunk_size, **arguments) -> LanguageModelTrainer:
    args = TrainingArguments(str(tmp_path / "trainer"), use_cpu=True, report_to=[], **arguments)
    return LanguageModelTrainer(model=model, args=args, loss_chunk_size=loss_chunk_size)


def batch(seed: int = 3) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (3, 20), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, :7] = 0  # left padding
    mask[2, 15:] = 0  # right padding
    return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}


def assert_same_gradients(model, reference, skip_pad_row: bool = False) -> None:
    expected = dict(reference.named_parameters())
    for name, parameter in model.named_parameters():
        got, want = parameter.grad, expected[name].grad
        if skip_pad_row and name == "model.embed_tokens.weight":
            # Llama's embedding has padding_idx, which zeroes that row's input gradient.
            keep = torch.arange(VOCAB) != model.config.pad_token_id
            got, want = got[keep], want[keep]
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-4), name


@pytest.mark.parametrize("tied", [True, False])
def test_fused_loss_matches_llama_loss_and_gradients(tmp_path, tied):
    model = wenlm_model(tie_word_embeddings=tied).train()
    llama = llama_twin(model).train()
    inputs = batch(seed=7)
    reference = llama(**inputs).loss
    trainer = make_trainer(model, tmp_path, loss_chunk_size=16)
    loss, outputs = trainer.compute_loss(model, inputs, return_outputs=True)
    assert outputs.logits is None, "the fused loss must not build full-vocabulary logits"
    assert abs(loss.item() - reference.item()) <= 1e-5
    reference.backward()
    loss.backward()
    assert_same_gradients(model, llama, skip_pad_row=True)


def test_fused_loss_honours_num_items_in_batch_and_shift_labels(tmp_path):
    model = wenlm_model().train()
    inputs = batch(seed=9)
    inputs["shift_labels"] = torch.roll(inputs["labels"], shifts=2, dims=1)
    fused, stock = make_trainer(model, tmp_path, 7), make_trainer(model, tmp_path, 0)
    for extra in ({}, {"num_items_in_batch": torch.tensor(40)}):
        for subset in (("input_ids", "attention_mask", "labels"), tuple(inputs)):
            chosen = {key: inputs[key] for key in subset}
            expected = stock.compute_loss(model, chosen, **extra)
            assert torch.allclose(fused.compute_loss(model, chosen, **extra), expected, atol=1e-5), (
                extra,
                subset,
            )


@pytest.mark.slow
def test_gradient_accumulation_steps_like_the_stock_loss(tmp_path):
    class Rows(Dataset):
        # Micro-batches with different numbers of real tokens: a per-micro-batch mean weighs them differently.
        def __init__(self):
            self.rows = [batch(seed=seed) for seed in range(3)]

        def __len__(self):
            return 8

        def __getitem__(self, index):
            return {key: value[index % 3] for key, value in self.rows[index // 3].items()}

    weights = []
    for chunk_size in (0, 5):
        model = wenlm_model()
        trainer = make_trainer(
            model,
            tmp_path,
            chunk_size,
            per_device_train_batch_size=2,
            gradient_accumulation_steps=2,
            max_steps=2,
            learning_rate=0.5,
            lr_scheduler_type="constant",
            optim="sgd",
            save_strategy="no",
            seed=0,
            data_seed=0,
        )
        trainer.train_dataset = Rows()
        trainer.train()
        weights.append({name: p.detach().clone() for name, p in model.named_parameters()})
    for name, stock in weights[0].items():
        assert torch.allclose(weights[1][name], stock, atol=1e-5), name


def test_stock_loss_where_the_fused_loss_cannot_apply(tmp_path):
    model = wenlm_model()
    inputs = batch()
    trainer = make_trainer(model, tmp_path, loss_chunk_size=8)
    model.eval()
    assert trainer.compute_loss(model, inputs, return_outputs=True)[1].logits is not None, "evaluation"
    model.train()
    with torch.no_grad():
        assert trainer._fused_loss_head(model, inputs) is None
    assert trainer._fused_loss_head(model, {"input_ids": inputs["input_ids"]}) is None
    assert trainer._fused_loss_head(model, {**inputs, "logits_to_keep": 1}) is None
    assert make_trainer(model, tmp_path, 0)._fused_loss_head(model, inputs) is None
    assert trainer._fused_loss_head(model, inputs) is model.lm_head


def test_lora_adapters_elsewhere_keep_the_fused_loss_but_not_on_the_head(tmp_path):
    inputs = batch(seed=5)
    on_attention = get_peft_model(wenlm_model(), LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).train()
    trainer = make_trainer(on_attention, tmp_path, loss_chunk_size=8)
    assert trainer._fused_loss_head(on_attention, inputs) is not None
    fused = trainer.compute_loss(on_attention, inputs)
    fused.backward()
    fused_grads = {n: p.grad.clone() for n, p in on_attention.named_parameters() if p.requires_grad}
    on_attention.zero_grad()
    stock = make_trainer(on_attention, tmp_path, 0).compute_loss(on_attention, inputs)
    stock.backward()
    assert abs(fused.item() - stock.item()) <= 1e-5
    for name, parameter in on_attention.named_parameters():
        if parameter.requires_grad:
            assert torch.allclose(fused_grads[name], parameter.grad, atol=1e-6), name

    on_head = get_peft_model(
        wenlm_model(tie_word_embeddings=False), LoraConfig(r=4, target_modules=["lm_head"])
    )
    assert make_trainer(on_head, tmp_path, 8)._fused_loss_head(on_head.train(), inputs) is None


def test_bad_chunk_sizes_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="loss_chunk_size must be a positive number"):
        make_trainer(wenlm_model(), tmp_path, loss_chunk_size=-3)
    with pytest.raises(ValueError, match="loss_chunk_size must be a positive number"):
        fused_linear_causal_lm_loss(
            torch.zeros(1, 2, 4), torch.zeros(5, 4), torch.zeros(1, 2, dtype=torch.long), 0
        )


@pytest.mark.slow
def test_pretrain_with_torch_compile_uses_the_fused_loss(tmp_path, monkeypatch):
    if shutil.which("g++") is None:
        pytest.skip("torch.compile needs a C++ compiler (g++) on CPU")
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[3])
        return fused_linear_causal_lm_loss(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "fused_linear_causal_lm_loss", counted)
    output_dir = tmp_path / "model"
    code = cli_main(
        [
            "pretrain",
            "--train_files",
            "builtin:200",
            "--output_dir",
            str(output_dir),
            "--preset",
            "nano",
            "--config_overrides",
            "hidden_size=32,intermediate_size=64,num_hidden_layers=1,num_attention_heads=2",
            "--vocab_size",
            "300",
            "--block_size",
            "32",
            "--per_device_train_batch_size",
            "4",
            "--max_steps",
            "3",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--logging_steps",
            "1",
            "--disable_tqdm",
            "true",
            "--loss_chunk_size",
            "16",
            "--torch_compile",
            "true",
            "--cache_dir",
            str(tmp_path / "cache"),
        ]
    )
    assert code in (0, None)
    assert calls == [16, 16, 16], "every training step runs the fused loss"
    report = json.loads((output_dir / "training_report.json").read_text())
    assert report["training"]["steps"] == 3
    losses = [
        entry["loss"]
        for entry in json.loads((output_dir / "log_history.json").read_text())
        if "loss" in entry
    ]
    assert len(losses) == 3 and all(loss == loss and loss > 0 for loss in losses)
    assert "loss_chunk_size" not in json.loads((output_dir / "config.json").read_text())


def test_checkpoints_appear_complete_or_not_at_all(tmp_path, monkeypatch):
    # A save interrupted part-way (here: the RNG state fails at step 4) leaves no checkpoint-4 for `last` to
    # pick; the next run resumes from checkpoint-2, and save_total_limit still rotates the finished folders.
    rows = [{k: v[0] for k, v in batch(seed).items() if k != "attention_mask"} for seed in range(16)]
    arguments = dict(
        max_steps=4,
        save_steps=2,
        save_total_limit=1,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        disable_tqdm=True,
    )

    def trainer():
        result = make_trainer(wenlm_model(), tmp_path, 0, **arguments)
        result.train_dataset = rows
        return result

    save_rng_state = Trainer._save_rng_state

    def interrupted_at_step_4(self, output_dir):
        if self.state.global_step == 4:
            raise RuntimeError("killed while saving")
        save_rng_state(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", interrupted_at_step_4)
    with pytest.raises(RuntimeError, match="killed while saving"):
        trainer().train()
    output_dir = tmp_path / "trainer"
    assert sorted(path.name for path in output_dir.glob("checkpoint-*")) == ["checkpoint-2"]
    assert (output_dir / STAGING_DIR / "checkpoint-4" / "model.safetensors").is_file()  # the half-written one
    assert last_complete_checkpoint(output_dir) == str(output_dir / "checkpoint-2")

    monkeypatch.setattr(Trainer, "_save_rng_state", save_rng_state)
    trainer().train(resume_from_checkpoint=last_complete_checkpoint(output_dir))
    assert sorted(path.name for path in output_dir.glob("checkpoint-*")) == ["checkpoint-4"]
    assert not (output_dir / STAGING_DIR).exists()
    assert (output_dir / "checkpoint-4" / "rng_state.pth").is_file()
