"""wenlm decoder-only Transformer for transformers 5, laid out like transformers' modeling_llama.py.

What wenlm adds to Llama's computation: RMSNorm through torch's fused kernel, optional embedding/residual
dropout, depth-scaled initialisation of the residual-branch outputs, clear errors for token ids outside the
vocabulary and positions beyond the trained context, eager attention whenever attention weights are requested,
and classification pooling that follows the attention mask.

This file is also shipped next to saved weights as Hub remote code, so it imports only torch, transformers
and its sibling `configuration_wenlm` (relative import: transformers copies sibling modules it finds that way).
"""

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GenericForSequenceClassification, GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    SequenceClassifierOutputWithPast,
)
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_rope_update
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel, slice_logits_to_keep
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple, is_tracing, logging
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .configuration_wenlm import WenLMConfig

logger = logging.get_logger(__name__)

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
        self.max_seq_len_cached = config.max_position_embeddings
        self.original_max_seq_len = config.max_position_embeddings
        self.config = config
        self.rope_type = config.rope_parameters.get("rope_type", "default")
        rope_init_fn: Callable = self.compute_default_rope_parameters
        if self.rope_type != "default":
            rope_init_fn = ROPE_INIT_FUNCTIONS[self.rope_type]
        inv_freq, self.attention_scaling = rope_init_fn(config)
        self.inv_freq = nn.Buffer(inv_freq, persistent=False)
        self.original_inv_freq = nn.Buffer(inv_freq.clone(), persistent=False)

    @staticmethod
    def compute_default_rope_parameters(
        config: WenLMConfig, device=None, **kwargs
    ) -> tuple[torch.Tensor, float]:
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


class WenLMMLP(nn.Module):
    """SwiGLU feed-forward: down(act(gate(x)) * up(x))."""

    def __init__(self, config: WenLMConfig):
        super().__init__()
        self.hidden_size = config.hidden_size
        self.intermediate_size = config.intermediate_size
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.down_proj._is_residual_output = True
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


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
        self.o_proj._is_residual_output = True

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        cos, sin = position_embeddings
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)

        if cache is not None:
            key_states, value_states = cache.update(key_states, value_states, self.layer_idx, kwargs=kwargs)

        # Attention weights exist only in the eager kernel; WenLMModel builds the matching eager mask.
        attention_interface: Callable = eager_attention_forward
        if not kwargs.get("output_attentions"):
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

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = False,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        attn_output, _ = self.self_attn(
            self.input_layernorm(hidden_states),
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            position_embeddings=position_embeddings,
            **kwargs,
        )
        hidden_states = hidden_states + _dropout(attn_output, self.residual_dropout, self.training)
        mlp_output = self.mlp(self.post_attention_layernorm(hidden_states))
        return hidden_states + _dropout(mlp_output, self.residual_dropout, self.training)


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
    _can_compile_fullgraph = True
    _supports_attention_backend = True
    _can_record_outputs = {
        "hidden_states": WenLMDecoderLayer,
        "attentions": WenLMAttention,
    }

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if getattr(module, "_is_residual_output", False):
            # Residual-branch outputs start smaller so the residual stream's variance does not grow with depth.
            std = self.config.initializer_range / math.sqrt(2 * self.config.num_hidden_layers)
            init.normal_(module.weight, mean=0.0, std=std)
        else:
            super()._init_weights(module)

    def save_pretrained(self, save_directory, *args, **kwargs):
        self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **AUTO_MAP}
        return super().save_pretrained(save_directory, *args, **kwargs)


class WenLMModel(WenLMPreTrainedModel):
    """The decoder stack without a head: embeddings, layers, final norm."""

    def __init__(self, config: WenLMConfig):
        super().__init__(config)
        self.vocab_size = config.vocab_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(
            [WenLMDecoderLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]
        )
        self.norm = WenLMRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = WenLMRotaryEmbedding(config)
        self.gradient_checkpointing = False
        self.post_init()

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("WenLMModel: pass exactly one of input_ids or inputs_embeds.")

        if inputs_embeds is None:
            _check_token_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.embed_tokens(input_ids)

        fresh_cache = use_cache and cache is None
        if fresh_cache:
            cache = DynamicCache(config=self.config)

        if position_ids is None:
            past_seen_tokens = cache.get_seq_length() if cache is not None else 0
            position_ids = (
                torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + past_seen_tokens
            )
            position_ids = position_ids.unsqueeze(0)
        _check_positions(position_ids, self.rotary_emb.rope_type, self.config.max_position_embeddings)

        mask_config = self.config
        if kwargs.get("output_attentions", self.config.output_attentions):
            kwargs["output_attentions"] = True
            if self.config._attn_implementation != "eager":
                mask_config = copy.copy(self.config)
                mask_config._attn_implementation = "eager"
        # A cache created by this call is empty, so the mask is the same without it, and only without a cache
        # does create_causal_mask recognise packed sequences (position_ids restarting within a row).
        causal_mask = create_causal_mask(
            config=mask_config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=None if fresh_cache else cache,
            position_ids=position_ids,
        )

        hidden_states = _dropout(inputs_embeds, self.config.dropout, self.training)
        position_embeddings = self.rotary_emb(hidden_states, position_ids=position_ids)

        for decoder_layer in self.layers[: self.config.num_hidden_layers]:
            hidden_states = decoder_layer(
                hidden_states,
                attention_mask=causal_mask,
                position_embeddings=position_embeddings,
                position_ids=position_ids,
                cache=cache,
                use_cache=use_cache,
                **kwargs,
            )

        hidden_states = self.norm(hidden_states)
        return BaseModelOutputWithPast(last_hidden_state=hidden_states, cache=cache)


def _check_token_ids(input_ids: torch.Tensor, vocab_size: int) -> None:
    """A tokenizer that does not match the model otherwise fails deep inside the embedding lookup. Checked on
    CPU only and never while tracing: on an accelerator reading the range back would stall every step."""
    if input_ids.device.type != "cpu" or input_ids.numel() == 0 or is_tracing(input_ids):
        return
    smallest, largest = (int(value) for value in torch.aminmax(input_ids))
    if largest >= vocab_size or smallest < 0:
        bad = largest if largest >= vocab_size else smallest
        raise ValueError(
            f"WenLMModel: token id {bad} is outside the model's vocabulary (vocab_size={vocab_size}). The tokenizer "
            "does not match this model: use the tokenizer saved with it, or call "
            "model.resize_token_embeddings(len(tokenizer)) before training."
        )


def _check_positions(position_ids: torch.Tensor, rope_type: str, max_positions: int) -> None:
    """Positions past the trained context silently degrade plain RoPE. Like Llama, the model still computes them
    (RoPE extrapolates, and serving engines and transformers' own tests probe long inputs), but says so once; the
    wenlm commands refuse such inputs before generating. RoPE scaling (linear, dynamic, yarn...) exists to go beyond
    the context, so only rope_type "default" is checked. Positions, not row lengths, count: a packed row may hold
    many sequences. CPU only and never while tracing, like the token-id check."""
    if rope_type != "default" or position_ids.device.type != "cpu" or is_tracing(position_ids):
        return
    if position_ids.numel() and int(position_ids.max()) >= max_positions:
        # One message per context size (warning_once keys on the text), not one per input length.
        logger.warning_once(
            f"WenLMModel: an input reaches past the trained context, max_position_embeddings={max_positions} "
            f"(positions 0..{max_positions - 1}); the model's outputs there are "
            "unreliable. Truncate the input (e.g. tokenizer(..., truncation=True, max_length=...)), lower "
            "max_new_tokens, or set rope_parameters with a scaling rope_type such as 'linear' or 'dynamic'."
        )


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

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Unpack[TransformersKwargs],
    ) -> CausalLMOutputWithPast:
        """`labels` are the input ids themselves (shifted inside; or pass `shift_labels`); -100 is ignored."""
        outputs: BaseModelOutputWithPast = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)
        logits = self.lm_head(hidden_states)

        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs
            )

        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


class WenLMForSequenceClassification(GenericForSequenceClassification, WenLMPreTrainedModel):
    """transformers' generic classification head with two differences, both overrides:

    - the base model is built directly: the generic head calls AutoModel.from_config, and in the Hub remote-code
      path the downloaded config class is registered only with the Auto class being loaded, so that call would
      ask for trust_remote_code a second time;
    - the pooled position is the last one whose attention mask is 1 (the generic head takes the rightmost token
      that is not `pad_token_id`, which picks the wrong token when the pad id is also a real token, such as a
      tokenizer padding with its end-of-text token, and ignores the mask for `inputs_embeds`). Without a mask
      the generic rule applies, except that a model without `pad_token_id` pools the last position.
    """

    def __init__(self, config: WenLMConfig):
        WenLMPreTrainedModel.__init__(self, config)
        self.num_labels = config.num_labels
        self.model = WenLMModel(config)
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutputWithPast:
        # `cache`/`use_cache` (and the deprecated `past_key_values`) travel in kwargs to WenLMModel.
        outputs: BaseModelOutputWithPast = self.model(
            input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        logits = self.score(outputs.last_hidden_state)
        batch_size, seq_len = logits.shape[:2]
        positions = torch.arange(seq_len, device=logits.device)
        if attention_mask is not None and attention_mask.dim() == 2:
            last_index = (positions * attention_mask[:, -seq_len:].to(logits.device)).argmax(-1)
        elif input_ids is not None and self.config.pad_token_id is not None:
            last_index = (positions * (input_ids != self.config.pad_token_id).to(logits.device)).argmax(-1)
        else:
            last_index = torch.full((batch_size,), seq_len - 1, device=logits.device)
        pooled_logits = logits[torch.arange(batch_size, device=logits.device), last_index]

        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, pooled_logits=pooled_logits, config=self.config
            )

        return SequenceClassifierOutputWithPast(
            loss=loss,
            logits=pooled_logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


WenLMModel.register_for_auto_class("AutoModel")
WenLMForCausalLM.register_for_auto_class("AutoModelForCausalLM")
WenLMForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")

__all__ = [
    "WenLMPreTrainedModel",
    "WenLMModel",
    "WenLMForCausalLM",
    "WenLMForSequenceClassification",
]
