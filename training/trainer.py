"""The Trainer that trains wenlm: the stock `transformers.Trainer` plus the metrics a language model needs
(perplexity, bits per byte, tokens per second), the fused chunked loss, `--optim muon` (Muon for the decoder's
matrices, AdamW for the rest, as one optimizer) and a warmup_stable_decay schedule that needs no extra kwargs.

The fused loss is a training concern, so it lives here and not in the model: the published model file computes
logits and the stock loss like any transformers causal LM.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import ChainMap

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer, get_scheduler
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.trainer_utils import (
    PREFIX_CHECKPOINT_DIR,
    SchedulerType,
    rotate_checkpoints,
    unwrap_peft_model,
)

from wenlm.modeling import WenLMConfig
from wenlm.training.args.training import (
    DEFAULT_LR_DECAY_FRACTION,
    DEFAULT_MUON_LEARNING_RATE,
    DEFAULT_MUON_WEIGHT_DECAY,
    MUON,
    muon_unavailable_message,
)
from wenlm.training.utils import bits_per_byte, perplexity

# Where checkpoints are written before they are complete (inside the output folder, so the rename never crosses
# file systems).
STAGING_DIR = ".incomplete-checkpoints"


class CompleteCheckpointsTrainer(Trainer):
    """The stock Trainer whose checkpoint-N folders are complete or absent (see `_save_checkpoint`)."""

    def _get_output_dir(self, trial):
        run_dir = super()._get_output_dir(trial)
        return os.path.join(run_dir, STAGING_DIR) if getattr(self, "_staging_checkpoint", False) else run_dir

    def _save_checkpoint(self, model, trial) -> None:
        """The stock checkpoint, written under `STAGING_DIR` and renamed into place once every process has written
        its files: a checkpoint-N folder is complete or absent, whenever the run is killed."""
        run_dir = super()._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staged, final = os.path.join(run_dir, STAGING_DIR, name), os.path.join(run_dir, name)
        if self.args.should_save:
            shutil.rmtree(staged, ignore_errors=True)  # what a killed save left behind
        self.accelerator.wait_for_everyone()
        self._staging_checkpoint = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_checkpoint = False
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            if os.path.isdir(final):  # a rerun of the same step replaces its older copy
                shutil.rmtree(final)
            os.replace(staged, final)
            if self.state.best_model_checkpoint == staged:
                self.state.best_model_checkpoint = final
                self.state.save_to_json(os.path.join(final, "trainer_state.json"))
            shutil.rmtree(os.path.join(run_dir, STAGING_DIR), ignore_errors=True)
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )
        self.accelerator.wait_for_everyone()


class LanguageModelTrainer(CompleteCheckpointsTrainer):
    """The stock Trainer, adding perplexity, bits per byte and tokens/second to what it logs, and training wenlm
    causal LMs with the fused chunked loss (``loss_chunk_size`` token rows of logits at a time; 0 or None: the
    stock loss). Evaluation, adapters on the output head, label smoothing and custom loss functions keep the
    stock loss.

    With ``args.optim == "muon"`` (`WenLMTrainingArguments`) it trains with `MuonWithAdamW`; with
    ``lr_scheduler_type="warmup_stable_decay"`` and no ``num_decay_steps`` in ``lr_scheduler_kwargs``, the last
    ``args.lr_decay_fraction`` of the steps decay. Every log carries ``elapsed_seconds``: wall-clock seconds of
    training so far, summed over resumed sessions."""

    def __init__(
        self, *args, eval_bytes_per_token: float | None = None, loss_chunk_size: int | None = None, **kwargs
    ):
        if loss_chunk_size is not None and not _is_non_negative_int(loss_chunk_size):
            raise ValueError(
                f"loss_chunk_size must be a positive number of token rows, or 0/None for the stock loss; "
                f"got {loss_chunk_size!r}."
            )
        super().__init__(*args, **kwargs)
        self.eval_bytes_per_token = eval_bytes_per_token
        self.loss_chunk_size = loss_chunk_size
        self._last_log = (time.perf_counter(), 0)
        # (perf_counter at train start, seconds logged by earlier sessions of a resumed run: known at the first log)
        self._clock: tuple[float, float | None] | None = None

    def train(self, *args, **kwargs):
        self._clock = (time.perf_counter(), None)
        return super().train(*args, **kwargs)

    def create_optimizer(self, model=None):
        if self.optimizer is not None or str(self.args.optim) != MUON:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        self.optimizer = muon_with_adamw(opt_model, self.args, self.get_decay_parameter_names(opt_model))
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        kwargs = dict(self.args.lr_scheduler_kwargs or {})
        if (
            self.lr_scheduler is not None
            or self.args.lr_scheduler_type != SchedulerType.WARMUP_STABLE_DECAY
            or "num_decay_steps" in kwargs
            or "num_stable_steps" in kwargs
        ):
            return super().create_scheduler(num_training_steps, optimizer)
        # transformers' schedule has no default decay length; a share of the run makes a bare
        # --lr_scheduler_type warmup_stable_decay work at any length.
        fraction = getattr(self.args, "lr_decay_fraction", DEFAULT_LR_DECAY_FRACTION)
        warmup = self.args.get_warmup_steps(num_training_steps)
        kwargs["num_decay_steps"] = max(1, round(fraction * num_training_steps))
        if warmup + kwargs["num_decay_steps"] > num_training_steps:
            raise ValueError(
                f"warmup_stable_decay: {warmup} warmup steps and {kwargs['num_decay_steps']} decay steps "
                f"(--lr_decay_fraction {fraction}) exceed the run's {num_training_steps} steps; lower --warmup_steps "
                "or --lr_decay_fraction."
            )
        self.lr_scheduler = get_scheduler(
            self.args.lr_scheduler_type,
            optimizer=optimizer or self.optimizer,
            num_warmup_steps=warmup,
            num_training_steps=num_training_steps,
            scheduler_specific_kwargs=kwargs,
        )
        self._created_lr_scheduler = True
        return self.lr_scheduler

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        head = self._fused_loss_head(model, inputs)
        if head is None:
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        # The stock loss sees num_items_in_batch exactly when the model accepts loss kwargs; so does this one.
        items = num_items_in_batch if self.model_accepts_loss_kwargs else None
        loss, outputs = fused_training_loss(model, head.weight, inputs, self.loss_chunk_size, items)
        if self.args.average_tokens_across_devices and items is not None:
            # The stock compute_loss rescales a loss normalised over all devices' tokens the same way.
            loss_scale = self.accelerator.num_processes // self.get_tp_size()
            loss = loss * (loss_scale if self.args.n_gpu <= 1 else self.args.n_gpu)
        if return_outputs:
            return loss, CausalLMOutputWithPast(loss=loss, hidden_states=outputs.hidden_states)
        return loss

    def _fused_loss_head(self, model, inputs) -> nn.Linear | None:
        """The output projection the fused loss multiplies by, or None where the stock loss must run: evaluation
        (whoever evaluates may want logits), no labels, label smoothing or a custom loss, sequence parallelism,
        prompt-learning adapters (virtual tokens shift hidden states against labels), a model that is not a
        wenlm causal LM, and any output head that is not a plain bias-free Linear (LoRA on lm_head, hooks)."""
        if not self.loss_chunk_size or "labels" not in inputs or not torch.is_grad_enabled():
            return None
        if (
            self.label_smoother is not None
            or self.compute_loss_func is not None
            or "logits_to_keep" in inputs
        ):
            return None
        parallelism = getattr(self.accelerator, "parallelism_config", None)
        if parallelism is not None and parallelism.sp_enabled:
            return None
        unwrapped = self.accelerator.unwrap_model(model, keep_torch_compile=False)
        inner = unwrap_peft_model(unwrapped)
        if inner is not unwrapped and unwrapped.active_peft_config.is_prompt_learning:
            return None
        if not inner.training or getattr(inner.config, "model_type", None) != WenLMConfig.model_type:
            return None
        head = inner.get_output_embeddings()
        if (
            type(head) is not nn.Linear
            or head.bias is not None
            or head._forward_hooks
            or head._forward_pre_hooks
        ):
            return None
        return head

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "eval_loss" in logs:
            logs["eval_perplexity"] = perplexity(logs["eval_loss"])
            if self.eval_bytes_per_token:
                logs["eval_bpb"] = bits_per_byte(logs["eval_loss"], self.eval_bytes_per_token)
        if "loss" in logs:
            now, tokens = time.perf_counter(), self.state.num_input_tokens_seen
            last_time, last_tokens = self._last_log
            if tokens > last_tokens and now > last_time:
                logs["tokens_per_second"] = round((tokens - last_tokens) / (now - last_time), 1)
            self._last_log = (now, tokens)
        if self._clock is not None:
            started, earlier = self._clock
            if earlier is None:
                # The first log of a session, after a resumed run's log history is restored: continue its clock.
                earlier = max(
                    (entry.get("elapsed_seconds", 0.0) for entry in self.state.log_history), default=0.0
                )
                self._clock = (started, earlier)
            logs["elapsed_seconds"] = round(earlier + time.perf_counter() - started, 3)
        super().log(logs, *args, **kwargs)


class MuonWithAdamW(torch.optim.Optimizer):
    """`torch.optim.Muon` for some 2-D matrices and `torch.optim.AdamW` for every other parameter, as the one
    optimizer the Trainer, accelerate, checkpoints and learning-rate schedulers see.

    ``param_groups`` are the two optimizers' own group dicts, AdamW's first (the learning rate the Trainer logs
    is AdamW's); a scheduler scales each group's lr from that group's initial value, so Muon's and AdamW's
    learning rates keep their ratio. ``state_dict()`` is ``{"adamw": ..., "muon": ...}``, each the inner
    optimizer's own.
    """

    def __init__(
        self,
        muon_params,
        adamw_groups,
        *,
        muon_lr: float = DEFAULT_MUON_LEARNING_RATE,
        muon_weight_decay: float = DEFAULT_MUON_WEIGHT_DECAY,
        muon_adjust_lr_fn: str | None = None,
        muon_momentum: float = 0.95,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        if message := muon_unavailable_message():
            raise ValueError(message)
        self.adamw = torch.optim.AdamW(adamw_groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.muon = torch.optim.Muon(
            muon_params,
            lr=muon_lr,
            weight_decay=muon_weight_decay,
            momentum=muon_momentum,
            adjust_lr_fn=muon_adjust_lr_fn,
        )
        # The base class keeps the very group dicts it is given (hooks, zero_grad and repr work on them).
        super().__init__(self.adamw.param_groups + self.muon.param_groups, defaults={})
        self._share_inner_groups()

    def _share_inner_groups(self) -> None:
        """Point param_groups and state at the inner optimizers' own, which loading a state replaces."""
        self.param_groups = self.adamw.param_groups + self.muon.param_groups
        self.state = ChainMap(self.adamw.state, self.muon.state)

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.adamw.step()
        self.muon.step()
        return loss

    def state_dict(self) -> dict:
        return {"adamw": self.adamw.state_dict(), "muon": self.muon.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        if not isinstance(state_dict, dict) or set(state_dict) != {"adamw", "muon"}:
            raise ValueError(
                "This optimizer state was not saved by --optim muon (Muon + AdamW): the checkpoint comes from a run "
                "with another --optim. Resume with the --optim the run was started with."
            )
        self.adamw.load_state_dict(state_dict["adamw"])
        self.muon.load_state_dict(state_dict["muon"])
        self._share_inner_groups()


def decoder_matrix_names(model: nn.Module) -> set[str]:
    """Names of the 2-D parameters inside the model's decoder layers (every ModuleList called ``layers``): the
    matrices Muon orthogonalises. Embeddings, the output head and norms lie outside them."""
    names = set()
    for module_name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and module_name.rsplit(".", 1)[-1] == "layers":
            names.update(
                f"{module_name}.{name}"
                for name, parameter in module.named_parameters()
                if parameter.ndim == 2
            )
    return names


def muon_with_adamw(model: nn.Module, args, decay_names) -> MuonWithAdamW:
    """The `--optim muon` optimizer of `model`: Muon with args.muon_learning_rate / muon_weight_decay on the
    decoder-layer matrices, AdamW with the Trainer's settings (and its weight-decay exemptions) on the rest."""
    matrices = decoder_matrix_names(model)
    trainable = [(name, parameter) for name, parameter in model.named_parameters() if parameter.requires_grad]
    muon = [parameter for name, parameter in trainable if name in matrices]
    if not muon:
        raise ValueError(
            "--optim muon found no trainable 2-D weight matrix inside the model's decoder layers (a ModuleList named "
            "'layers'); train this model with --optim adamw_torch."
        )
    rest = [(name, parameter) for name, parameter in trainable if name not in matrices]
    groups = [
        {"params": [p for name, p in rest if name in decay_names], "weight_decay": args.weight_decay},
        {"params": [p for name, p in rest if name not in decay_names], "weight_decay": 0.0},
    ]
    return MuonWithAdamW(
        muon,
        groups,
        muon_lr=getattr(args, "muon_learning_rate", DEFAULT_MUON_LEARNING_RATE),
        muon_weight_decay=getattr(args, "muon_weight_decay", DEFAULT_MUON_WEIGHT_DECAY),
        muon_adjust_lr_fn=getattr(args, "muon_adjust_lr_fn", None),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        weight_decay=args.weight_decay,
    )


def fused_training_loss(
    model,
    head_weight: torch.Tensor,
    inputs: dict,
    chunk_size: int,
    num_items_in_batch: torch.Tensor | int | None = None,
):
    """(loss, outputs) of a causal LM on `inputs` (with `labels`, optionally `shift_labels`), the loss computed
    by `fused_linear_causal_lm_loss` against `head_weight`. `model` is called as given, through any wrapper (DDP
    synchronises gradients only for forwards it sees, torch.compile runs its graph, PEFT its adapters), for the
    final hidden states and logits at no position."""
    model_inputs = {key: value for key, value in inputs.items() if key not in ("labels", "shift_labels")}
    model_inputs.setdefault("use_cache", False)
    no_positions = torch.empty(0, dtype=torch.long, device=inputs["labels"].device)
    outputs = model(**model_inputs, output_hidden_states=-1, logits_to_keep=no_positions)
    loss = fused_linear_causal_lm_loss(
        outputs.hidden_states[-1],
        head_weight,
        inputs["labels"],
        chunk_size,
        num_items_in_batch=num_items_in_batch,
        shift_labels=inputs.get("shift_labels"),
    )
    return loss, outputs


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """sum over rows of cross_entropy(hidden @ weight.T, targets), with both gradients computed during the
    forward pass, one block of rows at a time.

    The loss is a scalar, so d(loss)/d(logits) = softmax - one_hot is known as soon as a block's logits are;
    using it at once means a (rows, vocab) block is all that ever exists, instead of full logits plus their
    log-softmax and gradient. Matmuls run in the input dtype and the softmax in float32, as in the stock loss.
    """

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_size: int):
        need_hidden_grad, need_weight_grad = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        loss_sum = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if need_hidden_grad else None
        grad_weight = (
            torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_weight_grad else None
        )
        for start in range(0, hidden.shape[0], chunk_size):
            block = hidden[start : start + chunk_size]
            block_targets = targets[start : start + chunk_size]
            # One fused log_softmax pass, then exp_ in place for the gradient: logsumexp plus a subtraction and an
            # exponential made three more passes over the (rows, vocab) block, which dominates at small widths.
            log_probs = torch.log_softmax((block @ weight.t()).float(), dim=-1)
            target_log_probs = log_probs.gather(1, block_targets[:, None])
            loss_sum -= target_log_probs.sum()
            if need_hidden_grad or need_weight_grad:
                # softmax - one_hot, computed in place over the block's float32 log-probabilities.
                grad_logits = log_probs.exp_()
                grad_logits.scatter_add_(1, block_targets[:, None], torch.full_like(target_log_probs, -1.0))
                if need_hidden_grad:
                    grad_hidden[start : start + chunk_size] = grad_logits.to(hidden.dtype) @ weight
                if need_weight_grad:
                    grad_weight.addmm_(grad_logits.t(), block.float())
        if grad_weight is not None:
            grad_weight = grad_weight.to(weight.dtype)
        ctx.save_for_backward(grad_hidden, grad_weight)
        return loss_sum

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        grad_hidden = grad_hidden * grad_output.to(grad_hidden.dtype) if grad_hidden is not None else None
        grad_weight = grad_weight * grad_output.to(grad_weight.dtype) if grad_weight is not None else None
        return grad_hidden, grad_weight, None, None


def fused_linear_causal_lm_loss(
    hidden_states: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    chunk_size: int,
    num_items_in_batch: torch.Tensor | int | None = None,
    ignore_index: int = -100,
    shift_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """The causal-LM loss of transformers' ForCausalLMLoss (labels shifted inside unless `shift_labels` is given,
    `ignore_index` skipped, mean over kept tokens or sum / num_items_in_batch) for logits = hidden_states @
    weight.T, without materialising the logits. `chunk_size` is the number of token rows whose logits exist at
    once."""
    if not _is_non_negative_int(chunk_size) or chunk_size == 0:
        raise ValueError(f"loss_chunk_size must be a positive number of token rows, got {chunk_size!r}.")
    if shift_labels is None:
        shift_labels = F.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    targets = shift_labels.reshape(-1).to(hidden_states.device)
    kept = (targets != ignore_index).nonzero().squeeze(1)
    # Rows without a target (padding, the last position) cost nothing: they are dropped before the matmuls.
    rows = hidden_states.reshape(-1, hidden_states.shape[-1]).index_select(0, kept)
    loss_sum = _ChunkedLinearCrossEntropy.apply(rows, weight, targets.index_select(0, kept), chunk_size)
    if num_items_in_batch is None:
        return loss_sum / kept.numel()  # nan for zero kept tokens, as cross_entropy's mean gives
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss_sum.device)
    return loss_sum / num_items_in_batch


def _is_non_negative_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
