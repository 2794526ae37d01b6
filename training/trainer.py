"""The Trainer that trains wenlm: the stock `transformers.Trainer` plus the metrics a language model needs
(perplexity, bits per byte, tokens per second) and the fused chunked loss.

The fused loss is a training concern, so it lives here and not in the model: the published model file computes
logits and the stock loss like any transformers causal LM.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.trainer_utils import unwrap_peft_model

from wenlm.modeling import WenLMConfig
from wenlm.training.utils import bits_per_byte, perplexity


class LanguageModelTrainer(Trainer):
    """The stock Trainer, adding perplexity, bits per byte and tokens/second to what it logs, and training wenlm
    causal LMs with the fused chunked loss (``loss_chunk_size`` token rows of logits at a time; 0 or None: the
    stock loss). Evaluation, adapters on the output head, label smoothing and custom loss functions keep the
    stock loss."""

    def __init__(self, *args, eval_bytes_per_token: float | None = None, loss_chunk_size: int | None = None,
                 **kwargs):
        if loss_chunk_size is not None and not _is_non_negative_int(loss_chunk_size):
            raise ValueError(
                f"loss_chunk_size must be a positive number of token rows, or 0/None for the stock loss; "
                f"got {loss_chunk_size!r}."
            )
        super().__init__(*args, **kwargs)
        self.eval_bytes_per_token = eval_bytes_per_token
        self.loss_chunk_size = loss_chunk_size
        self._last_log = (time.perf_counter(), 0)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        head = self._fused_loss_head(model, inputs)
        if head is None:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
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
        if self.label_smoother is not None or self.compute_loss_func is not None or "logits_to_keep" in inputs:
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
        if type(head) is not nn.Linear or head.bias is not None or head._forward_hooks or head._forward_pre_hooks:
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
        super().log(logs, *args, **kwargs)


def fused_training_loss(model, head_weight: torch.Tensor, inputs: dict, chunk_size: int,
                        num_items_in_batch: torch.Tensor | int | None = None):
    """(loss, outputs) of a causal LM on `inputs` (with `labels`, optionally `shift_labels`), the loss computed
    by `fused_linear_causal_lm_loss` against `head_weight`. `model` is called as given, through any wrapper (DDP
    synchronises gradients only for forwards it sees, torch.compile runs its graph, PEFT its adapters), for the
    final hidden states and logits at no position."""
    model_inputs = {key: value for key, value in inputs.items() if key not in ("labels", "shift_labels")}
    model_inputs.setdefault("use_cache", False)
    no_positions = torch.empty(0, dtype=torch.long, device=inputs["labels"].device)
    outputs = model(**model_inputs, output_hidden_states=-1, logits_to_keep=no_positions)
    loss = fused_linear_causal_lm_loss(outputs.hidden_states[-1], head_weight, inputs["labels"], chunk_size,
                                       num_items_in_batch=num_items_in_batch, shift_labels=inputs.get("shift_labels"))
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
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_weight_grad else None
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
