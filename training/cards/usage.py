"""The model card's "How to use" section: runnable Python for the folder's task, and the sentence before it."""

from __future__ import annotations

import json


def _example_prompt(report: dict, languages: list[str]) -> str:
    chinese = bool(languages) and languages[0] == "zh"
    if report.get("example_prompt"):
        return str(report["example_prompt"])
    if report.get("task") == "classification":
        return "今天下雨，街上很湿。" if chinese else "It rained all day and the streets were wet."
    if report.get("task") == "sft":
        return "请讲一个关于小猫的故事。" if chinese else "Tell me a story about a cat."
    return "从前，" if chinese else "Once upon a time,"


def usage_code(report: dict, model_id: str, languages: list[str]) -> str:
    """Python that loads the model from `model_id` and runs it; it works as written (tested)."""
    prompt = json.dumps(_example_prompt(report, languages), ensure_ascii=False)
    task = report.get("task")
    if task == "embedding":
        return embedding_usage_code(model_id, prompt)
    auto_class = "AutoModelForSequenceClassification" if task == "classification" else "AutoModelForCausalLM"
    lines = [
        f"from transformers import {auto_class}, AutoTokenizer" + ("" if task == "sft" else ", pipeline"),
        "",
        f"model_id = {json.dumps(model_id, ensure_ascii=False)}",
        "tokenizer = AutoTokenizer.from_pretrained(model_id, trust_remote_code=True)",
        f"model = {auto_class}.from_pretrained(model_id, trust_remote_code=True)",
    ]
    if task == "classification":
        lines += [
            'classifier = pipeline("text-classification", model=model, tokenizer=tokenizer)',
            f"print(classifier({prompt}))",
        ]
    elif task == "sft":
        lines += [
            f'messages = [{{"role": "user", "content": {prompt}}}]',
            "inputs = tokenizer.apply_chat_template(",
            '    messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"',
            ")",
            "# A reply ends with <|end|> (end of turn); <|eos|> ends the whole text.",
            'stop_ids = [tokenizer.convert_tokens_to_ids("<|end|>"), tokenizer.eos_token_id]',
            "output = model.generate(**inputs, max_new_tokens=64, do_sample=True, top_p=0.9, eos_token_id=stop_ids)",
            'reply = output[0, inputs["input_ids"].shape[1]:]',
            "print(tokenizer.decode(reply, skip_special_tokens=True))",
        ]
    else:
        lines += [
            'generator = pipeline("text-generation", model=model, tokenizer=tokenizer)',
            f'print(generator({prompt}, max_new_tokens=40, do_sample=True, top_p=0.9)[0]["generated_text"])',
        ]
    return "\n".join(lines)


def embedding_usage_code(model_id: str, prompt: str) -> str:
    """sentence-transformers reads the files `wenlm finetune --task embedding` writes (same vectors as `wenlm embed
    --pooling` with the report's pooling)."""
    return "\n".join(
        [
            "from sentence_transformers import SentenceTransformer",
            "",
            f"model = SentenceTransformer({json.dumps(model_id, ensure_ascii=False)}, trust_remote_code=True)",
            f'vectors = model.encode([{prompt}, "Once upon a time, there was a cat."])',
            "print(model.similarity(vectors[:1], vectors[1:]))",
        ]
    )


def usage_intro(report: dict) -> str:
    """The sentence above the usage code."""
    if report.get("task") == "embedding":
        pooling = (report.get("embedding") or {}).get("pooling", "mean")
        return (
            f"Embed texts ({pooling} pooling, unit length) and compare them by cosine similarity; `wenlm embed "
            f"--pooling {pooling}` gives the same vectors:"
        )
    if report.get("task") == "classification":
        return "Classify a text (the pipeline returns the most likely class and its probability):"
    if report.get("task") == "sft":
        return "Chat with the model through its chat template and stop at the end of the assistant's turn:"
    return "Continue a prompt:"
