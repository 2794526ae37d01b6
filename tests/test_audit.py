"""`wenlm audit`: canary exposure (the exact and extrapolated estimates, and a canary repeated in training against a
never-inserted one on a briefly trained tiny model), training-data extraction, the canary file and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from helpers import cli_flags, tiny_config_fields
from test_pretrain import tiny_args

from wenlm.modeling import WenLMConfig, WenLMForCausalLM
from wenlm.tokenization import train_tokenizer
from wenlm.training.args.inspection import AuditArguments, CanaryArguments
from wenlm.training.cards.audit_section import audit_privacy_text
from wenlm.training.cards.card import GENERATED_MARKER, write_model_card
from wenlm.training.cli import main as cli_main
from wenlm.training.corpus.grammar import generate_documents
from wenlm.training.inspection.audit import audit_canaries, run_audit
from wenlm.training.inspection.canaries import (
    candidate,
    candidate_index,
    count_in_training,
    default_canary_file,
    insert_canaries,
    read_canary_file,
    write_canary_file,
)
from wenlm.training.inspection.exposure import exact_exposure, sampled_exposure, sequence_bits
from wenlm.training.inspection.extraction import (
    copies_bucket,
    extraction_rows,
    matched_tokens,
    sample_by_copies,
)

REPEATED_DOC = (
    "Professor Lin keeps seven blue notebooks on the third shelf of the old library, and every "
    "Friday she copies one page from each into a green folder."
)
REPEATED_COPIES = 40
BLOCK = 64


def train_tiny(texts: list[str], folder: Path, steps: int = 300):
    """A byte-level BPE and a 2-layer model trained on `texts` packed with <|eos|> between documents, as in
    pretraining; a plain loop, because the audit only needs a model that has seen the data a few times."""
    tokenizer = train_tokenizer(iter(texts), vocab_size=400, model_max_length=128)
    ids: list[int] = []
    for text in texts:
        ids += tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    blocks = torch.tensor(ids[: len(ids) // BLOCK * BLOCK]).view(-1, BLOCK)
    torch.manual_seed(0)
    config = WenLMConfig(
        **tiny_config_fields(
            len(tokenizer), hidden_size=64, intermediate_size=192, max_position_embeddings=128
        ),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    model = WenLMForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = blocks[torch.randint(len(blocks), (16,), generator=generator)]
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two canaries of a 3-digit secret inserted 24 times each, two controls, and one document repeated 40 times."""
    root = tmp_path_factory.mktemp("audit")
    texts = [doc["text"] for doc in generate_documents(300, seed=0)] + [REPEATED_DOC] * REPEATED_COPIES
    texts, canaries = insert_canaries(texts, count=2, repeats="24", seed=0, canary_format="digits", digits=3)
    count_in_training(canaries, texts)
    model, tokenizer = train_tiny(texts, root / "model")
    canary_file = write_canary_file(default_canary_file(root / "model"), canaries, model_dir=root / "model")
    train_file = root / "train.jsonl"
    train_file.write_text(
        "".join(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in texts), encoding="utf-8"
    )
    return root, model, tokenizer, canaries, canary_file, train_file


# ------------------------------------------------------------------------------------------- exposure math


def test_exact_exposure_is_log2_space_minus_log2_rank():
    bits = np.array(
        [5.0, 1.0, 3.0, 3.0, 9.0, 7.0, 6.0, 8.0]
    )  # the secret is the entry with 3.0 bits, tied once
    result = exact_exposure(3.0, bits)
    assert result["rank"] == 3 and result["candidate_space"] == 8  # 1.0, 3.0, 3.0 are at or below it
    assert result["exposure"] == pytest.approx(3 - math.log2(3))
    assert exact_exposure(1.0, bits)["exposure"] == pytest.approx(3.0)  # ranked first: the maximum
    assert exact_exposure(9.0, bits)["exposure"] == pytest.approx(0.0)  # ranked last


def test_sampled_exposure_follows_the_fitted_distribution():
    rng = np.random.default_rng(0)
    sample = rng.normal(100.0, 10.0, 20000)
    first_percentile = 100.0 - 2.3263 * 10.0
    result = sampled_exposure(first_percentile, sample, space=10**9)
    assert result["exposure"] == pytest.approx(-math.log2(0.01), abs=0.3)
    assert result["empirical_exposure"] == pytest.approx(-math.log2(0.01), abs=0.3)
    # Far beyond every sample: the fit extrapolates past what the sample can show, up to the space's maximum.
    far = sampled_exposure(0.0, sample, space=10**9)
    assert far["exposure"] == pytest.approx(math.log2(10**9))
    assert far["empirical_exposure"] == pytest.approx(math.log2(len(sample) + 1))
    assert sampled_exposure(200.0, sample, space=10**9)["exposure"] == pytest.approx(0.0, abs=1e-6)


def test_sequence_bits_of_a_padded_batch_match_one_text_at_a_time(trained):
    _, model, tokenizer, *_ = trained
    texts = ["Once upon a time", "小明在公园里看见一只猫。", "A"]
    batched = sequence_bits(model, tokenizer, texts, batch_size=8)
    for text, bits in zip(texts, batched):
        ids = torch.tensor(
            [[tokenizer.eos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]]
        )
        with torch.no_grad():
            log_probs = torch.log_softmax(model(ids).logits[0, :-1].double(), -1)
        expected = -log_probs.gather(-1, ids[0, 1:, None]).sum().item() / math.log(2)
        assert bits == pytest.approx(expected, rel=1e-4)


def test_candidates_enumerate_the_space():
    assert [candidate("digits", 3, index) for index in (0, 7, 999)] == ["000", "007", "999"]
    phone = candidate("phone", 0, 6 * 10**9 + 12345)
    assert phone == "19000012345" and candidate_index("phone", 0, phone) == 6 * 10**9 + 12345


# ---------------------------------------------------------------------------------- canaries in a model


def test_repeated_canary_is_exposed_and_a_control_is_not(trained):
    _, model, tokenizer, canaries, *_ = trained
    result = audit_canaries(model, tokenizer, canaries, exact_limit=1000)
    by_repeats = {row["repeats"]: row for row in result["by_repeats"]}
    assert result["method"] == "exact" and result["max_exposure"] == pytest.approx(math.log2(1000))
    assert by_repeats[24]["mean_in_training"] == 24 and by_repeats[0]["mean_in_training"] == 0
    # A never-seen secret ranks like a random candidate (expected exposure about 1.4 bits); one seen 24 times near
    # the top of the 1,000.
    assert by_repeats[24]["min_exposure"] > 7.0
    assert by_repeats[0]["max_exposure"] < 5.0
    assert by_repeats[0]["greedy_reproduced"] == 0
    assert by_repeats[24]["greedy_reproduced"] >= 1


def test_sampled_estimate_agrees_with_the_exact_rank_in_order(trained):
    _, model, tokenizer, canaries, *_ = trained
    result = audit_canaries(model, tokenizer, canaries, exact_limit=10, candidates=300)
    assert result["method"] == "skew-normal fit"
    exposures = {record["repeats"]: [] for record in result["canaries"]}
    for record in result["canaries"]:
        exposures[record["repeats"]].append(record["exposure"])
    assert min(exposures[24]) > max(exposures[0])


def test_insertion_keeps_every_copy_through_de_duplication():
    texts = [doc["text"] for doc in generate_documents(200, seed=1)]
    inserted, canaries = insert_canaries(texts, count=3, repeats=[1, 5], seed=4)
    assert len(canaries) == 9 and [c.repeats for c in canaries].count(0) == 3
    assert len(inserted) == len(texts)
    assert len(set(inserted)) == len(set(texts))  # no two copies share a host: de-duplication keeps them all
    counted = count_in_training(canaries, inserted)
    assert [canary.in_training for canary in counted] == [canary.repeats for canary in canaries]
    assert {canary.language for canary in canaries} == {"zh", "en"}
    as_dataset, again = insert_canaries(datasets.Dataset.from_dict({"text": texts}), 3, "1,5", seed=4)
    assert as_dataset["text"] == inserted and [c.secret for c in again] == [c.secret for c in canaries]


def test_canary_file_is_written_beside_the_model_folder_never_inside(tmp_path, trained):
    *_, canaries, canary_file, _ = trained
    model_dir = canary_file.parent / "model"
    assert canary_file == model_dir.parent / "model.canaries.json" and model_dir not in canary_file.parents
    assert not any("canar" in path.name for path in model_dir.iterdir())
    assert [c.secret for c in read_canary_file(canary_file)] == [c.secret for c in canaries]
    with pytest.raises(ValueError, match="inside the model folder"):
        write_canary_file(model_dir / "secrets.json", canaries, model_dir=model_dir)
    assert not (model_dir / "secrets.json").exists()


# ------------------------------------------------------------------------------------------- extraction


def test_extraction_metric_on_known_answers():
    assert matched_tokens([5, 6, 7, 8], [5, 6, 7, 8]) == 4
    assert matched_tokens([5, 6, 0, 8], [5, 6, 7, 8]) == 2
    assert matched_tokens([5, 6], [5, 6, 7, 8]) == 2  # the model ended the text early
    rows = extraction_rows({"1": [(1, 4), (1, 1), (1, 0), (1, 4)], "4-7": [(5, 4), (6, 4)]}, suffix_tokens=4)
    assert rows == [
        {"copies": "1", "documents": 4, "extracted": 2, "extraction_rate": 0.5, "mean_matched_tokens": 2.25},
        {"copies": "4-7", "documents": 2, "extracted": 2, "extraction_rate": 1.0, "mean_matched_tokens": 4.0},
    ]
    assert [copies_bucket(n) for n in (1, 2, 3, 4, 7, 8, 20)] == [
        "1",
        "2-3",
        "2-3",
        "4-7",
        "4-7",
        "8-15",
        "16-31",
    ]


def test_documents_are_sampled_across_copy_buckets():
    from wenlm.training.data.cache import content_hash

    texts = [f"doc {i}" for i in range(50)] + ["twice"] * 2 + ["many"] * 9
    copies = {content_hash(text): texts.count(text) for text in set(texts)}
    chosen = sample_by_copies(texts, copies, samples=7, seed=0)
    assert {name: len(members) for name, members in chosen.items()} == {"1": 5, "2-3": 1, "8-15": 1}
    assert chosen["8-15"] == [("many", 9)]


def test_audit_command_writes_results_and_the_model_folder_section(trained, tmp_path, capsys):
    root, _, _, canaries, canary_file, train_file = trained
    model_dir = root / "model"
    report = {
        "model": {"parameters": 100},
        "training": {"hyperparameters": {"learning_rate": 0.005}},
        "results": {"eval_loss": 1.0},
        "tokenizer": {"vocab_size": 400},
        "data": {"sources": [str(train_file)]},
    }
    (model_dir / "training_report.json").write_text(json.dumps(report), encoding="utf-8")
    write_model_card(model_dir)
    out = tmp_path / "audit"
    assert (
        cli_main(
            [
                "audit",
                *cli_flags(
                    model=model_dir,
                    canaries=canary_file,
                    train_files=train_file,
                    dedup="false",
                    validation_split=1,
                    prefix_tokens=8,
                    suffix_tokens=8,
                    samples=12,
                    exact_limit=1000,
                    output_dir=out,
                    cache_dir=tmp_path / "data-cache",
                ),
            ]
        )
        == 0
    )
    assert {path.name for path in out.iterdir()} >= {"audit.json", "audit.md", "exposure.png"}
    result = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    extraction = {row["copies"]: row for row in result["extraction"]["by_copies"]}
    assert (
        extraction["32-63"]["documents"] == 1 and extraction["32-63"]["extracted"] == 1
    )  # the repeated document
    assert extraction["1"]["documents"] >= 5
    assert extraction["32-63"]["mean_matched_tokens"] > extraction["1"]["mean_matched_tokens"]
    updated = json.loads((model_dir / "training_report.json").read_text(encoding="utf-8"))
    assert updated["model"] == report["model"] and {"canaries", "extraction", "date"} <= set(updated["audit"])
    assert GENERATED_MARKER in (model_dir / "README.md").read_text(encoding="utf-8")
    # No secret leaves the canary file: not in the results, the report or the card.
    for path in (
        out / "audit.json",
        out / "audit.md",
        model_dir / "training_report.json",
        model_dir / "README.md",
    ):
        text = path.read_text(encoding="utf-8")
        assert not any(canary.sentence in text for canary in canaries)
    privacy = audit_privacy_text(updated["audit"])
    assert "exposure" in privacy and "24 copies" in privacy and "never inserted" in privacy
    assert "Privacy audit" in capsys.readouterr().out


# -------------------------------------------------------------------------------------------- bad input


def test_missing_or_malformed_canary_file_is_named(tmp_path, trained, capsys):
    root, model, tokenizer, *_ = trained
    missing = tmp_path / "nope.json"
    assert (
        cli_main(
            ["audit", *cli_flags(model=root / "model", canary_file=missing, output_dir=tmp_path / "out")]
        )
        == 2
    )
    assert f"--canary_file {missing} does not exist" in capsys.readouterr().err
    for content, message in (
        ("[1, 2]", "not a wenlm canary file"),
        ("{oops", "not valid JSON"),
        ('{"kind": "wenlm-canaries", "version": 1, "canaries": [{"id": 0}]}', "malformed"),
        ('{"kind": "wenlm-canaries", "version": 1, "canaries": []}', "non-empty list"),
    ):
        bad = tmp_path / "bad.json"
        bad.write_text(content, encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            read_canary_file(bad)
    row = {
        "id": 0,
        "language": "en",
        "format": "phone",
        "digits": 0,
        "prefix": "x ",
        "secret": "12000000000",
        "suffix": ".",
        "repeats": 1,
    }
    bad.write_text(json.dumps({"kind": "wenlm-canaries", "version": 1, "canaries": [row]}), encoding="utf-8")
    with pytest.raises(ValueError, match="does not fit its format"):
        read_canary_file(bad)
    with pytest.raises(ValueError, match="nothing to audit"):
        run_audit(model, tokenizer, AuditArguments(output_dir=str(tmp_path)), None)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"canary_repeats": "1,x"}, "comma-separated whole numbers"),
        ({"canary_repeats": "0,4"}, "each 1 or more"),
        ({"canaries": -1}, "--canaries must be 0"),
        ({"canary_format": "email"}, "--canary_format 'email' is unknown"),
    ],
)
def test_bad_canary_options_are_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        CanaryArguments(**options)


def test_more_copies_than_documents_is_refused():
    with pytest.raises(ValueError, match="lower --canaries or --canary_repeats"):
        insert_canaries(["a", "b", "c"], count=1, repeats=[4])


@pytest.mark.slow
def test_pretrain_inserts_canaries_and_audit_reads_them(tmp_path, capsys):
    # Through the commands a user runs: pretrain writes the secrets beside the model folder, the report names
    # only how many, and `wenlm audit` measures every group from that file.
    output_dir = tmp_path / "model"
    args = tiny_args(
        output_dir, "--canaries", "2", "--canary_repeats", "1,8", "--canary_digits", "3", steps=10
    )
    assert cli_main(["pretrain", *args]) == 0
    canary_file = tmp_path / "model.canaries.json"
    canaries = read_canary_file(canary_file)
    assert sorted(canary.repeats for canary in canaries) == [0, 0, 1, 1, 8, 8]
    assert all(canary.in_training <= canary.repeats for canary in canaries)
    assert sum(canary.in_training for canary in canaries) >= 14  # at most the validation share of copies lost
    report = json.loads((output_dir / "training_report.json").read_text())
    assert report["data"]["canaries"]["canaries"] == 6 and report["data"]["canaries"]["repeats"] == [1, 8]
    texts = [
        path.read_text(errors="ignore") for path in output_dir.rglob("*") if path.suffix in (".json", ".md")
    ]
    assert not any(canary.sentence in text or canary.prefix in text for canary in canaries for text in texts)
    assert (
        cli_main(["audit", *cli_flags(model=output_dir, canaries=canary_file, output_dir=tmp_path / "audit")])
        == 0
    )
    audit = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert [row["repeats"] for row in audit["canaries"]["by_repeats"]] == [0, 1, 8]
