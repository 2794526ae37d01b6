"""Data pipeline speed: wenlm's load → clean → tokenize → pack (`prepare_datasets`) against the raw speed of the
tokenizer's own `encode_batch` on the same documents (the limit for this stage), with 1 and 2 processes, plus
tokenizer training time on 10 MB and 100 MB of text.

Every pipeline run uses a fresh cache folder, so nothing is served from an earlier run's cache.

    python benchmarks/bench_pipeline.py --data ../shared/data/tinystories/tinystories_sample.txt
"""

import argparse
import itertools
import tempfile
import time
from pathlib import Path

from common import machine_info, median, write_json

from wenlm.tokenization import train_tokenizer
from wenlm.training.data import DataArguments, prepare_datasets, read_txt_documents


def raw_encode_seconds(tokenizer, documents: list[str], batch_size: int = 1000) -> float:
    backend = tokenizer.backend_tokenizer
    started = time.perf_counter()
    for start in range(0, len(documents), batch_size):
        backend.encode_batch(documents[start : start + batch_size], add_special_tokens=False)
    return time.perf_counter() - started


def pipeline_seconds(data: Path, tokenizer, num_proc: int, block_size: int) -> float:
    with tempfile.TemporaryDirectory(prefix="wenlm-bench-cache-") as cache:
        args = DataArguments(train_files=[str(data)], block_size=block_size, num_proc=num_proc, cache_dir=cache,
                             validation_split=0.05, txt_document_separator="<|endoftext|>")
        started = time.perf_counter()
        prepare_datasets(args, tokenizer=tokenizer)
        return time.perf_counter() - started


def text_of_size(documents: list[str], megabytes: int) -> list[str]:
    """Repeat the documents until the text reaches the size (tokenizer training time grows with the text)."""
    target, out, size = megabytes * 1_000_000, [], 0
    for document in itertools.cycle(documents):
        out.append(document)
        size += len(document.encode("utf-8"))
        if size >= target:
            return out
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/tinystories/tinystories_sample.txt"))
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument("--block_size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train_sizes_mb", default="10,100")
    parser.add_argument("--output", default="pipeline.json")
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"{args.data} not found: pass --data with a text file (e.g. from ../shared/data/).")

    documents = [d for d in read_txt_documents(str(args.data), mode="block", separator="<|endoftext|>") if d.strip()]
    megabytes = sum(len(d.encode("utf-8")) for d in documents) / 1e6
    tokenizer = train_tokenizer(documents, vocab_size=args.vocab_size)
    rows = []
    for num_proc in (1, 2):
        raw = median([raw_encode_seconds(tokenizer, documents) for _ in range(args.repeats)])
        full = median([pipeline_seconds(args.data, tokenizer, num_proc, args.block_size) for _ in range(args.repeats)])
        rows.append({"num_proc": num_proc, "megabytes": round(megabytes, 3),
                     "raw_encode_mb_per_s": round(megabytes / raw, 3), "pipeline_mb_per_s": round(megabytes / full, 3),
                     "fraction_of_raw": round(raw / full, 3)})
        print(f"num_proc={num_proc}: pipeline {megabytes / full:.2f} MB/s, raw encode_batch {megabytes / raw:.2f} MB/s "
              f"(single process), pipeline = {raw / full:.0%} of raw")

    training = []
    for size in (int(s) for s in args.train_sizes_mb.split(",")):
        texts = text_of_size(documents, size)
        started = time.perf_counter()
        train_tokenizer(texts, vocab_size=args.vocab_size)
        seconds = time.perf_counter() - started
        training.append({"megabytes": size, "seconds": round(seconds, 2)})
        print(f"tokenizer training on {size} MB: {seconds:.1f} s")

    path = write_json(args.output, {"machine": machine_info(), "data": str(args.data), "pipeline": rows,
                                    "tokenizer_training": training,
                                    "note": "raw = backend encode_batch in one process, no cleaning or packing"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
