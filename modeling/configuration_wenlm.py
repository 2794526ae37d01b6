"""Configuration of wenlm models.

This file is also shipped next to saved weights as Hub remote code, so it may import only torch and
transformers.
"""

from transformers.activations import ACT2FN
from transformers.configuration_utils import PreTrainedConfig

# Shapes of the named model sizes. Parameter counts depend on the vocabulary; `WenLMConfig.num_parameters`
# computes them and README.md lists them for the default and a 32k vocabulary.
PRESETS: dict[str, dict[str, int]] = {
    "nano": dict(
        hidden_size=64,
        intermediate_size=192,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    ),
    "micro": dict(
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
    ),
    "small": dict(
        hidden_size=512,
        intermediate_size=1408,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=2048,
    ),
    "base": dict(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        num_key_value_heads=4,
        max_position_embeddings=2048,
    ),
}

# Keys that training options wrote into config.json in earlier wenlm versions; folders saved then still load, and
# saving them again drops the keys.
_TRAINING_ONLY_KEYS = ("loss_chunk_size", "compile_decoder_layers")

_POSITIVE_INT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
    "head_dim",
)


class WenLMConfig(PreTrainedConfig):
    """Decoder-only Transformer: pre-norm RMSNorm, rotary positions, grouped-query attention, SwiGLU MLP,
    no biases, tied input/output embeddings by default.

    Field names follow transformers' Llama/Qwen2 configs so tools that introspect configs work unchanged.
    `rope_theta` may be passed as a keyword; it is stored in `rope_parameters` like every transformers 5 model.
    """

    model_type = "wenlm"
    keys_to_ignore_at_inference = ["cache"]
    base_model_tp_plan = {
        "layers.*.self_attn.q_proj": "colwise",
        "layers.*.self_attn.k_proj": "colwise",
        "layers.*.self_attn.v_proj": "colwise",
        "layers.*.self_attn.o_proj": "rowwise",
        "layers.*.mlp.gate_proj": "colwise",
        "layers.*.mlp.up_proj": "colwise",
        "layers.*.mlp.down_proj": "rowwise",
    }
    base_model_pp_plan = {
        "embed_tokens": (["input_ids"], ["inputs_embeds"]),
        "layers": (["hidden_states", "attention_mask"], ["hidden_states"]),
        "norm": (["hidden_states"], ["hidden_states"]),
    }

    vocab_size: int = 8192
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 4
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    hidden_act: str = "silu"
    max_position_embeddings: int = 1024
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-6
    use_cache: bool = True
    tie_word_embeddings: bool = True
    rope_parameters: dict | None = None
    attention_dropout: float = 0.0
    dropout: float = 0.0
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2

    def __post_init__(self, **kwargs):
        for key in _TRAINING_ONLY_KEYS:
            kwargs.pop(key, None)
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None and _is_positive_int(self.num_attention_heads):
            if _is_positive_int(self.hidden_size) and self.hidden_size % self.num_attention_heads != 0:
                raise ValueError(
                    f"WenLMConfig: hidden_size={self.hidden_size} is not divisible by num_attention_heads="
                    f"{self.num_attention_heads}. Choose num_attention_heads from "
                    f"{_divisors(self.hidden_size)} or set head_dim explicitly."
                )
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.rope_parameters is None and "rope_theta" not in kwargs and "rope_scaling" not in kwargs:
            self.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
        super().__post_init__(**kwargs)
        self.validate_architecture()

    def validate(self) -> None:
        # transformers runs its own validators before saving; a field changed after construction is checked too.
        super().validate()
        self.validate_architecture()

    def validate_architecture(self) -> None:
        """Raise ValueError naming the offending parameter and its valid choices (transformers' validator hook,
        called at construction so the error is a plain ValueError rather than a wrapped strict-dataclass one)."""
        for name in _POSITIVE_INT_FIELDS:
            value = getattr(self, name)
            if not _is_positive_int(value):
                raise ValueError(f"WenLMConfig: {name} must be a positive integer, got {value!r}.")
        if self.num_attention_heads % self.num_key_value_heads != 0:
            raise ValueError(
                f"WenLMConfig: num_attention_heads={self.num_attention_heads} is not divisible by "
                f"num_key_value_heads={self.num_key_value_heads}. Valid num_key_value_heads: "
                f"{_divisors(self.num_attention_heads)}."
            )
        if self.head_dim % 2 != 0:
            raise ValueError(
                f"WenLMConfig: head_dim={self.head_dim} must be even for rotary embeddings; "
                "change hidden_size or num_attention_heads."
            )
        if self.hidden_act not in ACT2FN:
            raise ValueError(
                f"WenLMConfig: hidden_act={self.hidden_act!r} is unknown. Valid choices include "
                "'silu' (SwiGLU, the default), 'gelu', 'gelu_pytorch_tanh', 'relu'."
            )
        for name in ("attention_dropout", "dropout"):
            value = getattr(self, name)
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"WenLMConfig: {name} must be in [0, 1), got {value!r}.")
        if not float(self.rms_norm_eps) > 0:
            raise ValueError(f"WenLMConfig: rms_norm_eps must be positive, got {self.rms_norm_eps!r}.")
        if not float(self.rope_parameters.get("rope_theta", 0)) > 0:
            raise ValueError(
                f"WenLMConfig: rope_theta must be positive, got {self.rope_parameters.get('rope_theta')!r}."
            )
        for name in ("pad_token_id", "bos_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(
                    f"WenLMConfig: {name}={value} is outside the vocabulary [0, {self.vocab_size - 1}]."
                )

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "WenLMConfig":
        """A config for one of the named sizes in `PRESETS`; keyword arguments override any field."""
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}. Valid presets: {', '.join(PRESETS)}.")
        return cls(**{**PRESETS[name], **overrides})

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Parameter count computed from the shapes alone (no model needed); tied embeddings count once."""
        attention = (
            self.hidden_size * self.head_dim * (2 * self.num_attention_heads + 2 * self.num_key_value_heads)
        )
        mlp = 3 * self.hidden_size * self.intermediate_size
        norms = 2 * self.hidden_size
        body = self.num_hidden_layers * (attention + mlp + norms) + self.hidden_size
        if exclude_embeddings:
            return body
        embeddings = self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)
        return body + embeddings


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _divisors(n: int) -> list[int]:
    if not _is_positive_int(n):
        return []
    return [d for d in range(1, n + 1) if n % d == 0]


WenLMConfig.register_for_auto_class()

__all__ = ["WenLMConfig", "PRESETS"]
