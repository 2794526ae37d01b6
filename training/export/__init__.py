"""Leaving wenlm: a wenlm model as a stock Llama folder (`llama`) or a llama.cpp GGUF file (`gguf_file`)."""

from wenlm.training.export.gguf_file import GGUF_CARD_MARKER, export_gguf
from wenlm.training.export.llama import (
    LLAMA_CARD_MARKER,
    export_llama,
    llama_config_from_wenlm,
    llama_twin,
    load_wenlm,
)

__all__ = [
    "GGUF_CARD_MARKER",
    "LLAMA_CARD_MARKER",
    "export_gguf",
    "export_llama",
    "llama_config_from_wenlm",
    "llama_twin",
    "load_wenlm",
]
