"""llama.cpp runs a wenlm model exported to GGUF exactly as transformers runs it.

Needs `pip install llama-cpp-python` (compiles llama.cpp: ~15 minutes on 2 cores; kept out of CI, whose test of
the GGUF contents is tests/test_export_gguf.py). For a wenlm model folder (default: the quickstart model) it
exports f32, f16 and q8_0 GGUF files and compares, against transformers on the wenlm folder:

- tokenization of several thousand varied strings (corpus lines in Chinese, English, classical Chinese; random
  strings over scripts, emoji, combining marks, digits, odd whitespace and special-token text), both with special
  tokens parsed (`tokenizer.encode` / `special=True`) and as plain text (`split_special_tokens=True` / `special=False`);
- the next-token logits of every prompt position (largest difference);
- greedy continuations of Chinese, English and mixed prompts (identical tokens, or where they first differ).

    python benchmarks/interop_llamacpp.py [--model wenlm-quickstart] [--data ../shared/data] [--strings 3000]
"""

import argparse
import datetime
import json
import platform
import random
import tempfile
import time
from pathlib import Path

import llama_cpp
import numpy as np
import torch
from transformers import AutoTokenizer

from wenlm.modeling import WenLMForCausalLM
from wenlm.training.export import export_gguf

RESULTS = Path(__file__).resolve().parent / "results" / "interop_llamacpp"
CORPUS_FILES = [
    "chinese_prose/cmrc2018_wiki_contexts.txt",
    "tinystories/tinystories_sample.txt",
    "tiny_shakespeare/input.txt",
    "chinese_poetry/tang_simplified.txt",
    "wikitext2/raw/wiki.valid.raw",
]
PROMPTS = {
    "zh": ["从前有一个", "小明在公园里", "今天天气很好，"],
    "en": ["Once upon a time", "The little dog", "She said that"],
    "mixed": ["小明说 hello，然后", "The cat 在花园里", "用户：你好<|end|>\n<|assistant|>\n"],
}
# Characters random strings are drawn from: every script class the split rules treat differently.
ALPHABET = (
    "abcXYZ éüñ ß Ωπ Привет مرحبا שלום नमस्ते ไทย 中文汉字繁體 かなカナ 한국어 0123456789 ٣٤ "
    ".,;:!?'\"-()[]{}<>/\\@#$%^&*_+=~` 。，、；：？！「」『』（）《》— … "
    "\t\r\n\u3000\u00a0\u200b\u2028 e\u0301 \U0001f600\U0001f44d\U0001f1e8\U0001f1f3 \U00020000𠀀 "
    "'s 're 'll n't <|end|> <|eos|> <|user|> <|email|>"
)


def varied_strings(data: Path, count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    strings = []
    for relative in CORPUS_FILES:
        path = data / relative
        if path.exists():
            lines = [
                line for line in path.read_text(encoding="utf-8").splitlines(keepends=True) if line.strip()
            ]
            strings += rng.sample(lines, min(len(lines), count // (2 * len(CORPUS_FILES))))
    pieces = ALPHABET.split(" ") + list(ALPHABET)
    while len(strings) < count:
        strings.append(
            "".join(rng.choice(pieces) + rng.choice(["", " ", "  ", "\n"]) for _ in range(rng.randint(1, 30)))
        )
    return strings


def compare_tokenization(tokenizer, llm, strings: list[str]) -> dict:
    results = {}
    for label, parse_special in (("special tokens parsed", True), ("special-token text as text", False)):
        mismatches = []
        for text in strings:
            expected = tokenizer.encode(
                text, add_special_tokens=False, split_special_tokens=not parse_special
            )
            got = llm.tokenize(text.encode("utf-8"), add_bos=False, special=parse_special)
            if expected != got:
                mismatches.append({"text": text, "transformers": expected, "llama.cpp": got})
        results[label] = {
            "strings": len(strings),
            "identical": len(strings) - len(mismatches),
            "first_mismatches": mismatches[:5],
        }
    return results


def transformers_greedy(model, ids: list[int], new_tokens: int) -> list[int]:
    with torch.no_grad():
        output = model.generate(
            torch.tensor([ids]), max_new_tokens=new_tokens, do_sample=False, eos_token_id=None, pad_token_id=0
        )  # no early stop: compare every position
    return output[0, len(ids) :].tolist()


def llama_cpp_greedy(llm, ids: list[int], new_tokens: int) -> list[int]:
    llm.reset()
    tokens = []
    for token in llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
        tokens.append(int(token))
        if len(tokens) == new_tokens:
            break
    return tokens


def largest_logit_difference(model, llm, ids: list[int]) -> float:
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits[0].float().numpy()
    llm.reset()
    llm.eval(ids)
    got = np.asarray(llm.scores[: len(ids)], dtype=np.float32)
    return float(np.abs(got - expected).max())


def compare_generation(model, tokenizer, llm, new_tokens: int) -> dict:
    rows = []
    for language, prompts in PROMPTS.items():
        for prompt in prompts:
            ids = tokenizer.encode(prompt, add_special_tokens=False)
            expected = transformers_greedy(model, ids, new_tokens)
            got = llama_cpp_greedy(llm, ids, new_tokens)
            first_difference = next(
                (index for index, (a, b) in enumerate(zip(expected, got)) if a != b), None
            )
            rows.append(
                {
                    "language": language,
                    "prompt": prompt,
                    "identical": expected == got,
                    "first_difference_at": first_difference,
                    "largest_logit_difference": largest_logit_difference(model, llm, ids + expected[:-1]),
                    "transformers": tokenizer.decode(expected),
                    "llama.cpp": tokenizer.decode(got),
                }
            )
    return {
        "new_tokens": new_tokens,
        "prompts": len(rows),
        "identical": sum(row["identical"] for row in rows),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="wenlm-quickstart")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--strings", type=int, default=3000)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--outtypes", nargs="+", default=["f32", "f16", "q8_0"])
    options = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(options.model)
    model = WenLMForCausalLM.from_pretrained(options.model, dtype=torch.float32).eval()
    strings = varied_strings(options.data, options.strings)
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": platform.processor() or platform.machine(),
        "llama_cpp_python": llama_cpp.__version__,
        "model": str(options.model),
        "files": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        for outtype in options.outtypes:
            folder = export_gguf(options.model, Path(scratch) / outtype, outtype=outtype)
            path = folder / f"model-{outtype}.gguf"
            llm = llama_cpp.Llama(
                str(path),
                n_ctx=model.config.max_position_embeddings,
                n_threads=1,
                logits_all=True,
                # llama.cpp keeps its KV cache in f16 unless told otherwise; f32 isolates the weights' own type.
                type_k=llama_cpp.GGML_TYPE_F32,
                type_v=llama_cpp.GGML_TYPE_F32,
                verbose=False,
            )
            start = time.perf_counter()
            entry = {
                "bytes": path.stat().st_size,
                "generation": compare_generation(model, tokenizer, llm, options.new_tokens),
            }
            if outtype == options.outtypes[0]:  # the vocabulary is the same in every file
                entry["tokenization"] = compare_tokenization(tokenizer, llm, strings)
            entry["seconds"] = round(time.perf_counter() - start, 1)
            report["files"][outtype] = entry
            print(
                json.dumps(
                    {
                        outtype: {key: value for key, value in entry.items() if key != "generation"}
                        | {
                            "greedy identical": f"{entry['generation']['identical']}/{entry['generation']['prompts']}",
                            "largest logit difference": max(
                                row["largest_logit_difference"] for row in entry["generation"]["rows"]
                            ),
                        }
                    },
                    ensure_ascii=False,
                    default=str,
                )[:2000],
                flush=True,
            )
            del llm
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "interop_llamacpp.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
