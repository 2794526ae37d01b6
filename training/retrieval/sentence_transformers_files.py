"""The files that make a wenlm model folder a sentence-transformers model: ``SentenceTransformer(folder,
trust_remote_code=True).encode(texts)`` then gives the vectors of `embed_texts` with the same pooling.

The files use the layout sentence-transformers has read since version 2 and still reads in 6.x (class paths under
``sentence_transformers.models``, ``1_Pooling/config.json`` with ``pooling_mode_*`` flags), so one folder serves
every version from 3.0 on. The model itself stays where it is (``modules.json`` points module 0 at the folder's
root); ``trust_remote_code=True`` is still needed, as for `AutoModel`, because the model code is the folder's own.
"""

from __future__ import annotations

import json
from pathlib import Path

from wenlm.training.args.retrieval import POOLINGS
from wenlm.training.model_folder import check_model_folder
from wenlm.training.utils import write_json

MODULES_FILE = "modules.json"
TRANSFORMER_CONFIG_FILE = "sentence_bert_config.json"
MODEL_CONFIG_FILE = "config_sentence_transformers.json"
POOLING_DIR, NORMALIZE_DIR = "1_Pooling", "2_Normalize"
# sentence-transformers' pooling flag for each of `embed_texts`' poolings.
POOLING_FLAGS = {"mean": "pooling_mode_mean_tokens", "last": "pooling_mode_lasttoken"}
ALL_POOLING_FLAGS = (
    "pooling_mode_cls_token",
    "pooling_mode_mean_tokens",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)


def read_json_object(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}); is {path.parent} a complete model folder?"
        ) from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} holds a JSON {type(value).__name__}, not an object.")
    return value


def sentence_transformers_files(
    folder: str | Path, pooling: str = "mean", normalize: bool = True, max_length: int | None = None
) -> dict:
    """The files to write (path relative to `folder` -> JSON content) for a model folder holding config.json;
    texts are cut to `max_length` tokens (default: the model's context length), as `embed_texts` cuts them."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r} is unknown; choose {' or '.join(POOLINGS)}.")
    folder = Path(folder)
    config = check_model_folder(str(folder))
    if config is None:
        raise FileNotFoundError(
            f"{folder}: no such folder; give a local model folder (`wenlm pretrain`/`finetune`)."
        )
    missing = [
        name for name in ("hidden_size", "max_position_embeddings") if not isinstance(config.get(name), int)
    ]
    if missing:
        raise ValueError(f"{folder}/config.json lacks {', '.join(missing)}; is it a wenlm model folder?")
    tokenizer_config = folder / "tokenizer_config.json"
    if tokenizer_config.is_file() and read_json_object(tokenizer_config).get("padding_side") == "left":
        # sentence-transformers passes no position ids, so left padding would shift every padded text's positions.
        raise ValueError(
            f"{tokenizer_config} pads on the left; sentence-transformers would then embed padded texts at shifted "
            "positions. Save the tokenizer with padding_side='right' first."
        )
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": POOLING_DIR, "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append(
            {"idx": 2, "name": "2", "path": NORMALIZE_DIR, "type": "sentence_transformers.models.Normalize"}
        )
    return {
        MODULES_FILE: modules,
        TRANSFORMER_CONFIG_FILE: {
            "max_seq_length": min(filter(None, (max_length, config["max_position_embeddings"]))),
            "do_lower_case": False,
        },
        f"{POOLING_DIR}/config.json": {
            "word_embedding_dimension": config["hidden_size"],
            **{flag: flag == POOLING_FLAGS[pooling] for flag in ALL_POOLING_FLAGS},
            "include_prompt": True,
        },
        **({f"{NORMALIZE_DIR}/config.json": {}} if normalize else {}),
        MODEL_CONFIG_FILE: {
            "model_type": "SentenceTransformer",
            "prompts": {},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


def write_sentence_transformers_config(
    folder: str | Path,
    pooling: str = "mean",
    normalize: bool = True,
    overwrite: bool = False,
    max_length: int | None = None,
) -> list[Path]:
    """Write the sentence-transformers files into the model folder `folder` and return their paths.

    Files that already hold the same content are left as they are; one that differs (another pooling, or a
    sentence-transformers setup made elsewhere) raises FileExistsError unless `overwrite`.
    """
    folder = Path(folder)
    files = sentence_transformers_files(folder, pooling, normalize, max_length)
    different = [
        name
        for name, content in files.items()
        if (folder / name).exists() and not same_json(folder / name, content)
    ]
    if different and not overwrite:
        raise FileExistsError(
            f"{folder} already holds sentence-transformers files that differ from these ({', '.join(different)}); "
            "pass --overwrite true to replace them, or keep them."
        )
    written = []
    # modules.json last: until it is there, the folder is not a sentence-transformers model at all.
    for name in sorted(files, key=lambda name: name == MODULES_FILE):
        written.append(write_json(folder / name, files[name]))
    return written


def same_json(path: Path, content) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")) == content
    except (OSError, ValueError):
        return False


__all__ = [
    "MODULES_FILE",
    "POOLING_FLAGS",
    "sentence_transformers_files",
    "write_sentence_transformers_config",
]
