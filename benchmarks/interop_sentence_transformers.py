"""sentence-transformers loads a wenlm folder: the files `write_sentence_transformers_config` writes make
`SentenceTransformer(folder, trust_remote_code=True).encode(texts)` give the vectors of `embed_texts`.

For each pooling, a copy of the model folder (its top-level files; checkpoints are left out, the folder itself is
never changed) gets the files, sentence-transformers encodes ~200 texts of the built-in retrieval set (stories and
questions, Chinese and English), and the script prints the largest absolute difference from `embed_texts` and the
seconds each took (one run each, on whatever else the machine is doing). Needs `pip install 'wenlm[sentence-transformers]'`.

    python benchmarks/interop_sentence_transformers.py --model wenlm-quickstart [--texts 200]
"""

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import sentence_transformers
from common import machine_info, write_json
from transformers import AutoModel, AutoTokenizer

from wenlm.training.corpus.grammar import make_task_rows
from wenlm.training.retrieval import embed_texts, write_sentence_transformers_config

BATCH_SIZE = 32


def copy_model_folder(model: Path, scratch: Path) -> Path:
    target = scratch / model.name
    target.mkdir()
    for path in model.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)
    return target


def compare(folder: Path, texts: list[str], pooling: str) -> dict:
    write_sentence_transformers_config(folder, pooling, overwrite=True)
    started = time.perf_counter()
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    expected = embed_texts(model, AutoTokenizer.from_pretrained(folder), texts, pooling, BATCH_SIZE)
    wenlm_seconds = time.perf_counter() - started
    started = time.perf_counter()
    encoder = sentence_transformers.SentenceTransformer(str(folder), trust_remote_code=True, device="cpu")
    vectors = encoder.encode(texts, batch_size=BATCH_SIZE)
    st_seconds = time.perf_counter() - started
    return {
        "pooling": pooling,
        "texts": len(texts),
        "dimensions": int(vectors.shape[1]),
        "max_abs_difference": float(np.abs(vectors - expected).max()),
        "seconds_embed_texts": round(wenlm_seconds, 3),
        "seconds_sentence_transformers": round(st_seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="wenlm-quickstart", help="a wenlm model folder (it is copied, not changed)"
    )
    parser.add_argument("--texts", type=int, default=200)
    options = parser.parse_args()
    model = Path(options.model)
    if not (model / "config.json").is_file():
        raise SystemExit(f"--model {model}: not a model folder (no config.json).")
    rows = make_task_rows("retrieval", (options.texts + 1) // 2, seed=0)
    texts = [row["text"] for row in rows][: options.texts]
    report = {
        "model": str(model),
        "sentence_transformers": sentence_transformers.__version__,
        **machine_info(),
    }
    with tempfile.TemporaryDirectory() as scratch:
        folder = copy_model_folder(model, Path(scratch))
        report["runs"] = [compare(folder, texts, pooling) for pooling in ("mean", "last")]
    for run in report["runs"]:
        print(json.dumps(run))
    print(f"wrote {write_json('interop_sentence_transformers.json', report)}")


if __name__ == "__main__":
    main()
