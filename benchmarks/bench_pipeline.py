"""Data pipeline speed: wenlm's load → clean → split → tokenize → pack (`prepare_datasets`) against the raw speed
of the tokenizer's own `encode_batch` on the same documents (the limit for this stage), on 1 and 2 cores, plus
tokenizer training time on 10 MB and 100 MB of text.

Each core count runs in a child process pinned to that many cores (`sched_setaffinity`, `RAYON_NUM_THREADS`),
so the Rust tokenizer's thread pool and wenlm's worker thread see the same machine as the raw reference. Every
pipeline run uses a fresh cache folder, so nothing is served from an earlier run's cache. The reference is timed
twice: `encode_batch` (what the issue names) and `encode_batch_fast` (no character offsets, what wenlm calls).

    python benchmarks/bench_pipeline.py        # TinyStories sample, Tang poems, CMRC2018 contexts from ../shared
    python benchmarks/bench_pipeline.py --data my.txt --separator "<|endoftext|>" --train_sizes_mb ""
    python benchmarks/bench_pipeline.py --compare_gzip    # also the same corpora read from .txt.gz copies

With --compare_gzip every corpus is also run from a gzip'd copy (level 6, written once per worker outside the
timing), interleaved with the plain runs: the cost of decompressing inside the pipeline.
"""

import argparse
import gzip
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import datasets
from common import machine_info, median, write_json

from wenlm.tokenization import train_tokenizer
from wenlm.training.args import DataArguments
from wenlm.training.data.pipeline import prepare_datasets
from wenlm.training.data.sources import read_txt_documents

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
# (file, txt_document_mode, separator): one English file of long documents, two Chinese files of short ones.
DEFAULT_CORPORA = [
    (SHARED / "tinystories" / "tinystories_sample.txt", "block", "<|endoftext|>"),
    (SHARED / "chinese_poetry" / "tang.txt", "line", None),
    (SHARED / "chinese_prose" / "cmrc2018_wiki_contexts.txt", "line", None),
]


def corpus_documents(path: Path, mode: str, separator: str | None) -> list[str]:
    return [d for d in read_txt_documents(str(path), mode=mode, separator=separator) if d.strip()]


def raw_encode_seconds(tokenizer, documents: list[str], method: str, batch_size: int = 10_000) -> float:
    encode = getattr(tokenizer.backend_tokenizer, method)
    started = time.perf_counter()
    for start in range(0, len(documents), batch_size):
        encode(documents[start : start + batch_size], add_special_tokens=False)
    return time.perf_counter() - started


def pipeline_seconds(path: Path, mode: str, separator: str | None, tokenizer, block_size: int) -> float:
    with tempfile.TemporaryDirectory(prefix="wenlm-bench-cache-") as cache:
        args = DataArguments(
            train_files=[str(path)],
            block_size=block_size,
            cache_dir=cache,
            validation_split=0.05,
            txt_document_mode=mode,
            txt_document_separator=separator,
        )
        started = time.perf_counter()
        prepare_datasets(args, tokenizer=tokenizer)
        return time.perf_counter() - started


def gzip_copy(path: Path, folder: str) -> Path:
    """A .gz copy of the corpus in ``folder`` (same name plus .gz, so the pipeline reads it as the same format)."""
    target = Path(folder) / f"{path.name}.gz"
    with open(path, "rb") as source, gzip.open(target, "wb", compresslevel=6) as out:
        while chunk := source.read(8 << 20):
            out.write(chunk)
    return target


def worker(options: argparse.Namespace) -> None:
    """One core count: time the raw encoders and the pipeline on every corpus, print one JSON line."""
    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory(prefix="wenlm-bench-gzip-") as gzip_folder:
        print(
            json.dumps(
                [
                    corpus_row(path, mode, separator, options, gzip_folder)
                    for path, mode, separator in options.corpora
                ]
            )
        )


def corpus_row(
    path: Path, mode: str, separator: str | None, options: argparse.Namespace, gzip_folder: str
) -> dict:
    """Timings of one corpus: raw encoders, the pipeline, and with --compare_gzip the pipeline on a .gz copy."""
    documents = corpus_documents(path, mode, separator)
    megabytes = sum(len(d.encode("utf-8")) for d in documents) / 1e6
    tokenizer = train_tokenizer(documents[:50_000], vocab_size=options.vocab_size)
    raw_encode_seconds(tokenizer, documents[:2000], "encode_batch")  # warm-up: thread pool, allocator
    # Interleaved repeats, so a busy moment on the shared machine hits the reference and the pipeline alike.
    times: dict[str, list[float]] = {"encode_batch": [], "encode_batch_fast": [], "pipeline": []}
    compressed = gzip_copy(path, gzip_folder) if options.compare_gzip else None
    if compressed is not None:
        times["pipeline_gzip"] = []
    for _ in range(options.repeats):
        for method in ("encode_batch", "encode_batch_fast"):
            times[method].append(raw_encode_seconds(tokenizer, documents, method))
        times["pipeline"].append(pipeline_seconds(path, mode, separator, tokenizer, options.block_size))
        if compressed is not None:
            times["pipeline_gzip"].append(
                pipeline_seconds(compressed, mode, separator, tokenizer, options.block_size)
            )
    raw = {method: median(times[method]) for method in ("encode_batch", "encode_batch_fast")}
    full = median(times["pipeline"])
    row = {
        "corpus": path.name,
        "documents": len(documents),
        "megabytes": round(megabytes, 3),
        "raw_encode_batch_mb_per_s": round(megabytes / raw["encode_batch"], 3),
        "raw_encode_batch_fast_mb_per_s": round(megabytes / raw["encode_batch_fast"], 3),
        "pipeline_mb_per_s": round(megabytes / full, 3),
        "share_of_encode_batch": round(raw["encode_batch"] / full, 3),
        "share_of_encode_batch_fast": round(raw["encode_batch_fast"] / full, 3),
        "seconds": times,
    }
    if compressed is not None:
        row.update(
            gzip_megabytes=round(compressed.stat().st_size / 1e6, 3),
            pipeline_gzip_mb_per_s=round(megabytes / median(times["pipeline_gzip"]), 3),
            gzip_time_ratio=round(median(times["pipeline_gzip"]) / full, 3),
        )
    return row


def run_pinned(cores: int, options: argparse.Namespace) -> list[dict]:
    env = {**os.environ, "RAYON_NUM_THREADS": str(cores), "TOKENIZERS_PARALLELISM": "true"}
    corpora = [[str(path), mode, separator] for path, mode, separator in options.corpora]
    command = [
        sys.executable,
        __file__,
        "--worker",
        "--corpora-json",
        json.dumps(corpora),
        "--repeats",
        str(options.repeats),
        "--vocab_size",
        str(options.vocab_size),
        "--block_size",
        str(options.block_size),
    ] + (["--compare_gzip"] if options.compare_gzip else [])
    allowed = sorted(os.sched_getaffinity(0))[:cores]
    child = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=lambda: os.sched_setaffinity(0, allowed),
    )
    if child.returncode != 0:
        raise SystemExit(f"worker on {cores} core(s) failed:\n{child.stderr[-4000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="one .txt corpus instead of the three defaults"
    )
    parser.add_argument(
        "--mode", default="block", choices=["block", "line"], help="txt_document_mode for --data"
    )
    parser.add_argument("--separator", default=None, help="txt_document_separator for --data")
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument("--block_size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cores", default="1,2")
    parser.add_argument("--train_sizes_mb", default="10,100")
    parser.add_argument("--output", default="pipeline.json")
    parser.add_argument(
        "--compare_gzip",
        action="store_true",
        help="also time the pipeline on a gzip'd copy of each corpus (pipeline_gzip_mb_per_s)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--corpora-json", default=None, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.corpora_json:
        options.corpora = [(Path(p), m, s) for p, m, s in json.loads(options.corpora_json)]
    elif options.data is not None:
        options.corpora = [(options.data, options.mode, options.separator)]
    else:
        options.corpora = DEFAULT_CORPORA
    missing = [str(path) for path, _, _ in options.corpora if not path.is_file()]
    if missing:
        raise SystemExit(
            f"not found: {', '.join(missing)}; pass --data with a text file (e.g. from ../shared/data/)"
        )
    if options.worker:
        worker(options)
        return

    info = machine_info()
    results = []
    for cores in (int(c) for c in options.cores.split(",")):
        for row in run_pinned(cores, options):
            results.append({"cores": cores, **row})
            print(
                f"{cores} core(s) {row['corpus']:32} {row['megabytes']:6.1f} MB: pipeline "
                f"{row['pipeline_mb_per_s']:5.2f} MB/s; raw encode_batch {row['raw_encode_batch_mb_per_s']:5.2f} "
                f"({row['share_of_encode_batch']:.0%}), encode_batch_fast {row['raw_encode_batch_fast_mb_per_s']:5.2f} "
                f"({row['share_of_encode_batch_fast']:.0%})"
            )
            if "pipeline_gzip_mb_per_s" in row:
                print(
                    f"{'':12}{'from ' + row['corpus'] + '.gz':32} {row['gzip_megabytes']:6.1f} MB: pipeline "
                    f"{row['pipeline_gzip_mb_per_s']:5.2f} MB/s of text ({row['gzip_time_ratio']:.2f}x the time)"
                )

    training = []
    documents = corpus_documents(*options.corpora[0])
    for size in (int(s) for s in options.train_sizes_mb.split(",") if s):
        texts = text_of_size(documents, size)
        started = time.perf_counter()
        train_tokenizer(texts, vocab_size=options.vocab_size)
        seconds = time.perf_counter() - started
        training.append(
            {"megabytes": size, "corpus": options.corpora[0][0].name, "seconds": round(seconds, 2)}
        )
        print(f"tokenizer training on {size} MB: {seconds:.1f} s")

    path = write_json(
        options.output,
        {
            "machine": info,
            "pipeline": results,
            "tokenizer_training": training,
            "note": "share = raw encoder time / pipeline time on the same documents and cores; the raw encoders do no "
            "loading, cleaning, splitting or packing",
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
