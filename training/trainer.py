"""The Trainer that trains wenlm: the stock `transformers.Trainer` plus the metrics a language model needs
(perplexity, bits per byte, tokens per second) and the fused chunked loss."""

from __future__ import annotations

import math
import time

from transformers import Trainer

from wenlm.modeling import WenLMConfig


class LanguageModelTrainer(Trainer):
    """The stock Trainer, adding perplexity, bits per byte and tokens/second to what it logs, and training wenlm
    models with the fused chunked loss (``loss_chunk_size`` rows of logits at a time; 0 or None: the stock loss).
    The chunk size is passed per call, so the saved config keeps returning logits for whoever trains it next."""

    def __init__(self, *args, eval_bytes_per_token: float | None = None, loss_chunk_size: int | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_bytes_per_token = eval_bytes_per_token
        self.loss_chunk_size = loss_chunk_size
        self._last_log = (time.perf_counter(), 0)

    def compute_loss(self, model, inputs, *args, **kwargs):
        if self.loss_chunk_size and _is_wenlm(self.accelerator.unwrap_model(model)):
            inputs = {**inputs, "loss_chunk_size": self.loss_chunk_size}
        return super().compute_loss(model, inputs, *args, **kwargs)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "eval_loss" in logs:
            logs["eval_perplexity"] = math.exp(min(logs["eval_loss"], 50.0))
            if self.eval_bytes_per_token:
                logs["eval_bpb"] = logs["eval_loss"] / self.eval_bytes_per_token / math.log(2)
        if "loss" in logs:
            now, tokens = time.perf_counter(), self.state.num_input_tokens_seen
            last_time, last_tokens = self._last_log
            if tokens > last_tokens and now > last_time:
                logs["tokens_per_second"] = round((tokens - last_tokens) / (now - last_time), 1)
            self._last_log = (now, tokens)
        super().log(logs, *args, **kwargs)


def _is_wenlm(model) -> bool:
    # A PEFT wrapper forwards `config` and extra forward kwargs to the wenlm model inside it.
    return getattr(getattr(model, "config", None), "model_type", None) == WenLMConfig.model_type


