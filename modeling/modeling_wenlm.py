"""wenlm decoder-only Transformer for transformers 5.

This file is also shipped next to saved weights as Hub remote code, so it imports only torch, transformers
and its sibling `configuration_wenlm` (relative import: transformers copies sibling modules it finds that way).
"""

import copy
import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    SequenceClassifierOutputWithPast,
)
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_rope_update
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.utils.deprecation import deprecate_kwarg

from .configuration_wenlm import WenLMConfig

# Every Auto entry point, written into each saved config.json: transformers records only the class that did
# the saving, and a folder saved from a causal LM must also load as AutoModel or a classifier.
AUTO_MAP = {
    "AutoConfig": "configuration_wenlm.WenLMConfig",
    "AutoModel": "modeling_wenlm.WenLMModel",
    "AutoModelForCausalLM": "modeling_wenlm.WenLMForCausalLM",
    "AutoModelForSequenceClassification": "modeling_wenlm.WenLMForSequenceClassification",
}


class WenLMRMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        # Normalise in float32 so bf16/fp16 training keeps the statistics exact.
        input_dtype = hidden_states.dtype
        normed = F.rms_norm(hidden_states.float(), (hidden_states.shape[-1],), eps=self.variance_epsilon)
        return self.weight * normed.to(input_dtype)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.variance_epsilon}"


class WenLMRotaryEmbedding(nn.Module):
    def __init__(self, config: WenLMConfig):
        super().__init__()
        self.config = config
        self.max_seq_len_cached = config.max_position_embeddings
        self.original_max_seq_len = config.max_position_embeddings
        self.rope_type = config.rope_parameters.get("rope_type", "default")
        rope_init_fn: Callable = self.compute_default_rope_parameters
        if self.rope_type != "default":
            rope_init_fn = ROPE_INIT_FUNCTIONS[self.rope_type]
        inv_freq, self.attention_scaling = rope_init_fn(config)
        self.inv_freq = nn.Buffer(inv_freq, persistent=False)
        self.original_inv_freq = nn.Buffer(inv_freq.clone(), persistent=False)

    @staticmethod
    def compute_default_rope_parameters(config: WenLMConfig, device=None, **kwargs) -> tuple[torch.Tensor, float]:
        base = config.rope_parameters["rope_theta"]
        dim = config.head_dim
        exponents = torch.arange(0, dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float) / dim
        return 1.0 / (base**exponents), 1.0

    @torch.no_grad()
    @dynamic_rope_update
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * self.attention_scaling
        sin = emb.sin() * self.attention_scaling
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim: int = 1):
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(batch, kv_heads, seq, dim) -> (batch, kv_heads * n_rep, seq, dim) without copying when n_rep == 1."""
    if n_rep == 1:
        return hidden_states
    batch, kv_heads, seq_len, head_dim = hidden_states.shape
    expanded = hidden_states[:, :, None, :, :].expand(batch, kv_heads, n_rep, seq_len, head_dim)
    return expanded.reshape(batch, kv_heads * n_rep, seq_len, head_dim)


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    key_states = repeat_kv(key, module.num_key_value_groups)
    value_states = repeat_kv(value, module.num_key_value_groups)
    scores = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value_states).transpose(1, 2).contiguous()
    return output, weights


class WenLMMLP(nn.Module):
    """SwiGLU feed-forward: down(act(gate(x)) * up(x))."""

    def __init__(self, config: WenLMConfig):
        super().__init__()
        self.hidden_size = config.hidden_size
        self.intermediate_size = config.intermediate_size
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class WenLMAttention(nn.Module):
    """Grouped-query self-attention dispatched through transformers' attention interface."""

    def __init__(self, config: WenLMConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.head_dim
        self.num_key_value_groups = config.num_attention_heads // config.num_key_value_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.is_causal = True
        self.q_proj = nn.Linear(config.hidden_size, config.num_attention_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, config.num_key_value_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.num_key_value_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(config.num_attention_heads * self.head_dim, config.hidden_size, bias=False)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        output_attentions: bool = False,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        cos, sin = position_embeddings
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)

        if cache is not None:
            key_states, value_states = cache.update(key_states, value_states, self.layer_idx)

        # Attention weights exist only in the eager path; the model builds the matching eager mask.
        attention_interface = eager_attention_forward
        if not output_attentions:
            attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
                self.config._attn_implementation, eager_attention_forward
            )
        attn_output, attn_weights = attention_interface(
            self,
            query_states,
            key_states,
            value_states,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        return self.o_proj(attn_output), attn_weights


def _dropout(hidden_states: torch.Tensor, probability: float, training: bool) -> torch.Tensor:
    # A plain function instead of nn.Dropout modules: with dropout off (the default) decoding pays no module calls.
    if probability and training:
        return F.dropout(hidden_states, p=probability, training=True)
    return hidden_states


class WenLMDecoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: WenLMConfig, layer_idx: int):
        super().__init__()
        self.hidden_size = config.hidden_size
        self.self_attn = WenLMAttention(config, layer_idx)
        self.mlp = WenLMMLP(config)
        self.input_layernorm = WenLMRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = WenLMRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.residual_dropout = config.dropout

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: Cache | None = None,
        output_attentions: bool = False,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attn_output, attn_weights = self.self_attn(
            self.input_layernorm(hidden_states),
            position_embeddings=position_embeddings,
            attention_mask=attention_mask,
            cache=cache,
            output_attentions=output_attentions,
            **kwargs,
        )
        hidden_states = hidden_states + _dropout(attn_output, self.residual_dropout, self.training)
        mlp_output = self.mlp(self.post_attention_layernorm(hidden_states))
        hidden_states = hidden_states + _dropout(mlp_output, self.residual_dropout, self.training)
        return hidden_states, attn_weights


class WenLMPreTrainedModel(PreTrainedModel):
    config_class = WenLMConfig
    config: WenLMConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["WenLMDecoderLayer"]
    _skip_keys_device_placement = ["cache"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            # Residual-branch outputs start smaller so the residual stream's variance does not grow with depth.
            if getattr(module, "_wenlm_residual_output", False):
                std = std / math.sqrt(2 * self.config.num_hidden_layers)
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, WenLMRMSNorm):
            init.ones_(module.weight)
        elif isinstance(module, WenLMRotaryEmbedding):
            # Non-persistent buffers are not in the checkpoint; from_pretrained builds on the meta device and
            # leaves them empty unless recomputed here.
            rope_fn = (
                module.compute_default_rope_parameters
                if module.rope_type == "default"
                else ROPE_INIT_FUNCTIONS[module.rope_type]
            )
            inv_freq, _ = rope_fn(module.config)
            init.copy_(module.inv_freq, inv_freq)
            init.copy_(module.original_inv_freq, inv_freq)

    def save_pretrained(self, save_directory, *args, **kwargs):
        self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **AUTO_MAP}
        return super().save_pretrained(save_directory, *args, **kwargs)


def _mark_residual_outputs(layers: nn.ModuleList) -> None:
    for layer in layers:
        layer.self_attn.o_proj._wenlm_residual_output = True
        layer.mlp.down_proj._wenlm_residual_output = True


class WenLMModel(WenLMPreTrainedModel):
    """The decoder stack without a head: embeddings, layers, final norm."""

    def __init__(self, config: WenLMConfig):
        super().__init__(config)
        self.vocab_size = config.vocab_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_dropout = config.dropout
        self.layers = nn.ModuleList(
            [WenLMDecoderLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]
        )
        _mark_residual_outputs(self.layers)
        self.norm = WenLMRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = WenLMRotaryEmbedding(config)
        self.gradient_checkpointing = False
        # torch.compile wrappers of the layers for training (opt-in, built on first use). A plain list keeps
        # them out of state_dict and named_modules, so weight names and saving are unaffected.
        self._compiled_training_layers: list[nn.Module] | None = None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast | tuple:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("WenLMModel: pass exactly one of input_ids or inputs_embeds.")
        output_attentions = bool(output_attentions if output_attentions is not None else self.config.output_attentions)
        output_hidden_states = bool(
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        if self.gradient_checkpointing and self.training:
            use_cache = False  # caching activations defeats the memory saving of checkpointing
        compiled_layers = None
        if self._wants_compiled_layers(cache, output_attentions, output_hidden_states):
            # A cache inside a compiled region would break the graph; training never reads one back.
            use_cache = False
            compiled_layers = self._get_compiled_training_layers()

        if inputs_embeds is None:
            _check_token_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.embed_tokens(input_ids)
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)

        past_seen_tokens = cache.get_seq_length() if cache is not None else 0
        seq_len = inputs_embeds.shape[1]
        if past_seen_tokens + seq_len > self.config.max_position_embeddings:
            raise ValueError(
                f"WenLMModel: the input needs {past_seen_tokens + seq_len} positions ({past_seen_tokens} cached + "
                f"{seq_len} new) but the model supports max_position_embeddings="
                f"{self.config.max_position_embeddings}. Truncate the input (e.g. tokenizer(..., truncation=True, "
                "max_length=...)) or lower max_new_tokens."
            )
        if position_ids is None:
            position_ids = torch.arange(seq_len, device=inputs_embeds.device).unsqueeze(0) + past_seen_tokens

        mask_config = self.config
        if output_attentions and self.config._attn_implementation != "eager":
            mask_config = copy.copy(self.config)
            mask_config._attn_implementation = "eager"
        causal_mask = create_causal_mask(
            config=mask_config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=cache,
            position_ids=position_ids,
        )

        hidden_states = _dropout(inputs_embeds, self.embed_dropout, self.training)
        position_embeddings = self.rotary_emb(hidden_states, position_ids)
        all_hidden_states = [] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        for layer_index, decoder_layer in enumerate(self.layers[: self.config.num_hidden_layers]):
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
            layer_call = decoder_layer if compiled_layers is None else compiled_layers[layer_index]
            try:
                hidden_states, attn_weights = layer_call(
                    hidden_states,
                    attention_mask=causal_mask,
                    position_embeddings=position_embeddings,
                    cache=cache,
                    output_attentions=output_attentions,
                    position_ids=position_ids,
                    **kwargs,
                )
            except Exception as error:  # noqa: BLE001 - only compiler failures are retried, eagerly
                if layer_call is decoder_layer or not _is_compiler_failure(error):
                    raise
                self._disable_compiled_layers(error)
                compiled_layers = None
                hidden_states, attn_weights = decoder_layer(
                    hidden_states,
                    attention_mask=causal_mask,
                    position_embeddings=position_embeddings,
                    cache=cache,
                    output_attentions=output_attentions,
                    position_ids=position_ids,
                    **kwargs,
                )
            if output_attentions:
                all_attentions.append(attn_weights)
        hidden_states = self.norm(hidden_states)
        if output_hidden_states:
            all_hidden_states.append(hidden_states)

        output = BaseModelOutputWithPast(
            last_hidden_state=hidden_states,
            cache=cache if use_cache else None,
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None,
        )
        return output if return_dict else output.to_tuple()

    def _wants_compiled_layers(self, cache, output_attentions: bool, output_hidden_states: bool) -> bool:
        """Compiled layers serve plain training steps only: generation changes shapes every step (endless
        recompiles) and the introspection outputs need the eager path."""
        return (
            bool(getattr(self.config, "compile_decoder_layers", False))
            and self._compiled_training_layers != []
            and self.training
            and torch.is_grad_enabled()
            and not self.gradient_checkpointing
            and cache is None
            and not output_attentions
            and not output_hidden_states
        )

    def _get_compiled_training_layers(self) -> list[nn.Module]:
        if self._compiled_training_layers is None:
            self._compiled_training_layers = [torch.compile(layer) for layer in self.layers]
        return self._compiled_training_layers

    def _disable_compiled_layers(self, error: Exception) -> None:
        warnings.warn(
            f"WenLMModel: torch.compile of the decoder layers failed ({type(error).__name__}: {error}); "
            "continuing without compilation. Install a C++ compiler (e.g. gcc) or set "
            "config.compile_decoder_layers=False to silence this.",
            RuntimeWarning,
            stacklevel=3,
        )
        self._compiled_training_layers = []


def _check_token_ids(input_ids: torch.Tensor, vocab_size: int) -> None:
    """A tokenizer that does not match the model otherwise fails deep inside the embedding lookup. Checked on
    CPU only: on an accelerator reading the maximum back would stall every step."""
    if input_ids.device.type != "cpu" or input_ids.numel() == 0 or torch.compiler.is_compiling():
        return
    smallest, largest = (int(value) for value in torch.aminmax(input_ids))
    if largest >= vocab_size or smallest < 0:
        bad = largest if largest >= vocab_size else smallest
        raise ValueError(
            f"WenLMModel: token id {bad} is outside the model's vocabulary (vocab_size={vocab_size}). The tokenizer "
            "does not match this model: use the tokenizer saved with it, or call "
            "model.resize_token_embeddings(len(tokenizer)) before training."
        )


def _is_compiler_failure(error: Exception) -> bool:
    module = type(error).__module__ or ""
    return module.startswith(("torch._dynamo", "torch._inductor")) or "InductorError" in type(error).__name__


class WenLMForCausalLM(WenLMPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    _tp_plan = {"lm_head": "colwise_gather_output"}
    _pp_plan = {"lm_head": (["hidden_states"], ["logits"])}

    def __init__(self, config: WenLMConfig):
        super().__init__(config)
        self.model = WenLMModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head = new_embeddings

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        loss_chunk_size: int | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast | tuple:
        """`labels` are the input ids themselves (shifted inside); positions labelled -100 are ignored.

        `loss_chunk_size` overrides `config.loss_chunk_size` for this call (0 turns the fused loss off): a trainer
        can use the fused loss without writing it into the config that is saved with the model.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **_model_kwargs(kwargs),
        )
        hidden_states = outputs.last_hidden_state
        chunk_size = getattr(self.config, "loss_chunk_size", None) if loss_chunk_size is None else loss_chunk_size
        if self._uses_fused_loss(labels, logits_to_keep, chunk_size):
            # Training-only fast path (opt-in): the loss and its gradients come chunk by chunk, and the
            # full (batch, seq, vocab) logits are never built, so `logits` is None.
            logits = None
            loss = fused_linear_causal_lm_loss(
                hidden_states, self.lm_head.weight, labels, chunk_size, **_loss_kwargs(kwargs)
            )
        else:
            if isinstance(logits_to_keep, int):
                kept = hidden_states[:, -logits_to_keep:, :] if logits_to_keep > 0 else hidden_states
            else:
                kept = hidden_states[:, logits_to_keep, :]
            logits = self.lm_head(kept)

            loss = None
            if labels is not None:
                loss = self.loss_function(
                    logits=logits, labels=labels, vocab_size=self.config.vocab_size, **_loss_kwargs(kwargs)
                )
        output = CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return output if return_dict else output.to_tuple()


    def _uses_fused_loss(self, labels, logits_to_keep, chunk_size: int | None) -> bool:
        """Only where nobody can need the logits: a gradient-enabled training forward with labels, a plain
        Linear head (no adapters, hooks or bias) and no logits_to_keep selection. Evaluation (model.eval())
        always returns logits, so the Trainer's prediction loop is unaffected."""
        if not chunk_size or labels is None or not self.training or not torch.is_grad_enabled():
            return False
        if not isinstance(logits_to_keep, int) or logits_to_keep != 0:
            return False
        head = self.lm_head
        return (
            type(head) is nn.Linear
            and head.bias is None
            and not head._forward_hooks
            and not head._forward_pre_hooks
        )


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
) -> torch.Tensor:
    """The causal-LM loss of transformers' ForCausalLMLoss (labels shifted inside, `ignore_index` skipped, mean
    over kept tokens or sum / num_items_in_batch) for logits = hidden_states @ weight.T, without materialising
    the logits. `chunk_size` is the number of token rows whose logits exist at once."""
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size <= 0:
        raise ValueError(f"WenLMConfig: loss_chunk_size must be a positive integer (or 0/None to disable), "
                         f"got {chunk_size!r}.")
    targets = F.pad(labels, (0, 1), value=ignore_index)[..., 1:].reshape(-1).to(hidden_states.device)
    kept = (targets != ignore_index).nonzero().squeeze(1)
    # Rows without a target (padding, the last position) cost nothing: they are dropped before the matmuls.
    rows = hidden_states.reshape(-1, hidden_states.shape[-1]).index_select(0, kept)
    loss_sum = _ChunkedLinearCrossEntropy.apply(rows, weight, targets.index_select(0, kept), chunk_size)
    if num_items_in_batch is None:
        return loss_sum / kept.numel()  # nan for zero kept tokens, as cross_entropy's mean gives
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss_sum.device)
    return loss_sum / num_items_in_batch


class WenLMForSequenceClassification(WenLMPreTrainedModel):
    """Classifies a sequence from the hidden state of its last real (non-padding) token, like Llama's head.

    With an attention mask the last position whose mask is 1 is used, so left and right padding both work;
    without one, the rightmost token that is not `pad_token_id`.
    """

    def __init__(self, config: WenLMConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = WenLMModel(config)
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.embed_tokens = value

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutputWithPast | tuple:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **_model_kwargs(kwargs),
        )
        logits = self.score(outputs.last_hidden_state)
        batch_size, seq_len = logits.shape[:2]
        positions = torch.arange(seq_len, device=logits.device)
        if attention_mask is not None and attention_mask.dim() == 2:
            last_index = (positions * attention_mask[:, -seq_len:].to(logits.device)).argmax(-1)
        elif input_ids is not None and self.config.pad_token_id is not None:
            not_pad = (input_ids != self.config.pad_token_id).to(logits.device)
            last_index = (positions * not_pad).argmax(-1)
        else:
            last_index = torch.full((batch_size,), seq_len - 1, device=logits.device)
        pooled_logits = logits[torch.arange(batch_size, device=logits.device), last_index]

        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, pooled_logits=pooled_logits, config=self.config)
        output = SequenceClassifierOutputWithPast(
            loss=loss,
            logits=pooled_logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return output if return_dict else output.to_tuple()


# The Trainer passes `num_items_in_batch` for the loss; the attention kernels must not receive it.
_LOSS_ONLY_KWARGS = ("num_items_in_batch", "ignore_index")


def _model_kwargs(kwargs: dict) -> dict:
    return {key: value for key, value in kwargs.items() if key not in _LOSS_ONLY_KWARGS}


def _loss_kwargs(kwargs: dict) -> dict:
    return {key: value for key, value in kwargs.items() if key in _LOSS_ONLY_KWARGS}


WenLMModel.register_for_auto_class("AutoModel")
WenLMForCausalLM.register_for_auto_class("AutoModelForCausalLM")
WenLMForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")

__all__ = [
    "WenLMPreTrainedModel",
    "WenLMModel",
    "WenLMForCausalLM",
    "WenLMForSequenceClassification",
]
