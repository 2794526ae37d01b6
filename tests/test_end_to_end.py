"""Issue 2's contract: a tokenizer and a model trained here, saved into one folder, load and generate for anyone,
with or without wenlm installed."""

import json
import textwrap

import pytest
import torch
from helpers import run_without_wenlm
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from wenlm.modeling import WenLMConfig, WenLMForCausalLM
from wenlm.tokenization import train_tokenizer
from wenlm.training.corpus.grammar import generate_documents
from wenlm.training.hub.validate import HIDE_WENLM

PROBE_TEXT = "小明在公园里看书。Tom reads a book in the park."


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wenlm-model")
    texts = [doc["text"] for doc in generate_documents(400, seed=3)]
    tokenizer = train_tokenizer(texts, vocab_size=600, model_max_length=128)
    torch.manual_seed(0)
    config = WenLMConfig.from_preset(
        "nano", vocab_size=len(tokenizer), max_position_embeddings=128, initializer_range=0.1
    )
    model = WenLMForCausalLM(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    input_ids = tokenizer(PROBE_TEXT, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(input_ids).logits
    greedy = model.generate(input_ids, max_new_tokens=12, do_sample=False)
    expected = {
        "input_ids": input_ids[0].tolist(),
        "logits": logits[0].tolist(),
        "greedy_text": tokenizer.decode(greedy[0], skip_special_tokens=True),
    }
    (folder.parent / f"{folder.name}-expected.json").write_text(json.dumps(expected))
    return folder, expected


# Runs with `python -I -S`: no user site, no .pth files, so neither an editable nor a regular install of wenlm is on
# the path; site-packages is appended by hand for transformers and torch, and wenlm's own HIDE_WENLM (the check
# `wenlm push` runs) refuses `wenlm` outright.
WITHOUT_WENLM = HIDE_WENLM + textwrap.dedent(
    """
    import json, sys
    sys.path.append(sys.argv[1])

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    folder, expected, probe = sys.argv[2], json.loads(open(sys.argv[3]).read()), sys.argv[4]
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    ids = tokenizer(probe, return_tensors="pt").input_ids
    assert ids[0].tolist() == expected["input_ids"], "tokenizer differs from the one that was saved"
    with torch.no_grad():
        diff = (model(ids).logits[0] - torch.tensor(expected["logits"])).abs().max().item()
    generator = pipeline("text-generation", model=folder, trust_remote_code=True)
    text = generator(probe, max_new_tokens=12, do_sample=False, return_full_text=True)[0]["generated_text"]
    print(json.dumps({"max_abs_diff": diff, "pipeline_text": text, "model_class": type(model).__name__}))
    """
)


@pytest.mark.slow
def test_folder_loads_and_generates_without_wenlm(saved_folder, tmp_path):
    folder, expected = saved_folder
    result = run_without_wenlm(
        WITHOUT_WENLM, folder, folder.parent / f"{folder.name}-expected.json", PROBE_TEXT, cwd=tmp_path
    )
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["model_class"] == "WenLMForCausalLM"
    assert outcome["max_abs_diff"] <= 1e-5
    # Greedy decoding through pipeline() without wenlm equals greedy generate() with it.
    assert outcome["pipeline_text"] == expected["greedy_text"]


def test_with_wenlm_imported_no_remote_code_is_needed(saved_folder):
    folder, expected = saved_folder
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert type(model) is WenLMForCausalLM
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    ids = tokenizer(PROBE_TEXT, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits[0]
    assert (logits - torch.tensor(expected["logits"])).abs().max() <= 1e-5
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
    assert (
        generator(PROBE_TEXT, max_new_tokens=12, do_sample=False)[0]["generated_text"]
        == expected["greedy_text"]
    )


def test_tokenizer_carries_model_max_length_and_chat_template(saved_folder):
    folder, _ = saved_folder
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    assert tokenizer.model_max_length == 128
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "你好"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<|user|>\n你好<|end|>\n<|assistant|>\n"
