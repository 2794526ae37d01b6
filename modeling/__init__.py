"""wenlm model classes. Importing this package registers them with transformers' Auto classes, so
`AutoModelForCausalLM.from_pretrained(folder)` works without `trust_remote_code` once wenlm is installed."""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

from .configuration_wenlm import PRESETS, WenLMConfig
from .modeling_wenlm import (
    AUTO_MAP,
    WenLMForCausalLM,
    WenLMForSequenceClassification,
    WenLMModel,
    WenLMPreTrainedModel,
)

AutoConfig.register(WenLMConfig.model_type, WenLMConfig, exist_ok=True)
AutoModel.register(WenLMConfig, WenLMModel, exist_ok=True)
AutoModelForCausalLM.register(WenLMConfig, WenLMForCausalLM, exist_ok=True)
AutoModelForSequenceClassification.register(WenLMConfig, WenLMForSequenceClassification, exist_ok=True)

# The files that make up the Hub remote code; saving a model copies exactly these next to the weights.
REMOTE_CODE_FILES = ("configuration_wenlm.py", "modeling_wenlm.py")

__all__ = [
    "AUTO_MAP",
    "PRESETS",
    "REMOTE_CODE_FILES",
    "WenLMConfig",
    "WenLMForCausalLM",
    "WenLMForSequenceClassification",
    "WenLMModel",
    "WenLMPreTrainedModel",
]
