"""Tests for the local evaluate metrics in wenlm.training.evaluation.metrics, with hand-computed expected values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wenlm.training.evaluation.metrics import METRIC_NAMES, compute_metric, load_metric, metric_path
from wenlm.training.utils.text import contains_cjk, lcs_length, qa_tokens, rouge_tokens


@pytest.fixture(scope="module")
def metrics():
    return {name: load_metric(name, keep_in_memory=True) for name in METRIC_NAMES}


# ---------------------------------------------------------------------------------------------- tokenisers


def test_qa_tokens_follow_squad_normalisation_and_split_cjk_characters():
    # lower-case, punctuation gone ("don't" -> "dont" as in SQuAD), articles dropped, spaces collapsed
    assert qa_tokens("  The  Cat, don't   SIT! ") == ["cat", "dont", "sit"]
    # Chinese punctuation is removed and every Han character is a token
    assert qa_tokens("北京的大学。") == ["北", "京", "的", "大", "学"]
    # full-width letters/digits fold to ASCII; a Latin word stays whole next to Chinese
    assert qa_tokens("ＧＰＴ-４模型") == ["gpt4", "模", "型"]
    # an article glued to a Chinese character is still an article (a \b regex would miss it)
    assert qa_tokens("the猫") == ["猫"]
    assert qa_tokens("...") == []


def test_rouge_tokens_match_rouge_score_rules_on_ascii_and_keep_chinese():
    # rouge_score lower-cases and splits on everything outside [a-z0-9]
    assert rouge_tokens("The cat's mat-2!") == ["the", "cat", "s", "mat", "2"]
    assert rouge_tokens("我喜欢 NLP。") == ["我", "喜", "欢", "nlp"]


def test_contains_cjk_detects_han_and_kana_only():
    assert contains_cjk("hello 世界")
    assert contains_cjk("カタカナ")
    assert not contains_cjk("hello, world! ünïcödé 안녕")


def _lcs_by_table(first, second):
    table = [[0] * (len(second) + 1) for _ in range(len(first) + 1)]
    for i, a in enumerate(first):
        for j, b in enumerate(second):
            table[i + 1][j + 1] = table[i][j] + 1 if a == b else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from("abcd猫狗"), max_size=40),
    st.lists(st.sampled_from("abcd猫狗"), max_size=40),
)
def test_bit_parallel_lcs_equals_dynamic_programming(first, second):
    assert lcs_length(first, second) == _lcs_by_table(first, second)


def test_lcs_hand_example():
    # LCS("ABCBDAB", "BDCABA") = 4 (e.g. "BCBA"), the textbook CLRS example
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4


# ---------------------------------------------------------------------------------------------- loading


def test_unknown_metric_name_lists_valid_names():
    with pytest.raises(ValueError) as error:
        load_metric("accuracy")
    for name in METRIC_NAMES:
        assert name in str(error.value)


def test_metric_names_resolve_to_shipped_module_folders():
    assert set(METRIC_NAMES) == {"qa", "bleu", "chrf", "rouge_l", "classification", "retrieval"}
    for name in METRIC_NAMES:
        folder = metric_path(name)
        assert folder.is_absolute()
        assert (folder / f"{folder.name}.py").is_file()
    assert metric_path("ROUGE-L") == metric_path("rouge_l")


def test_loaded_modules_carry_documentation(metrics):
    for name, metric in metrics.items():
        assert metric.name == metric_path(name).name
        assert len(metric.description) > 100, name
        assert "Args:" in metric.inputs_description, name
        assert "predictions" in metric.inputs_description, name
        assert metric.features is not None, name
        assert type(metric).__doc__.startswith(metric.description), name  # help(metric) shows the description
        assert metric.reference_urls, name
    for name in ("qa", "bleu", "chrf", "rouge_l"):
        assert "@inproceedings" in metrics[name].citation, name
    assert metrics["chrf"].citation.count("@inproceedings{") == 3  # chrF, chrF++ and sacrebleu
    assert (
        '@article{sokolova-lapalme-2009-systematic,\n    title = "A systematic'
        in metrics["classification"].citation
    )
    assert '    volume = "45",\n' in metrics["classification"].citation
    assert metrics["bleu"].codebase_urls == ["https://github.com/mjpost/sacrebleu"]


# ---------------------------------------------------------------------------------------------- QA


def test_qa_english_f1_by_hand(metrics):
    # "the cat sat" -> [cat, sat]; "a cat sat on" -> [cat, sat, on]; 2 shared tokens
    # P = 2/2, R = 2/3, F1 = 2 * 1 * (2/3) / (1 + 2/3) = 0.8
    result = metrics["qa"].compute(predictions=["the cat sat"], references=["a cat sat on"])
    assert result == pytest.approx({"exact_match": 0.0, "f1": 80.0})


def test_qa_chinese_character_f1_by_hand(metrics):
    # "北京大学" -> 北 京 大 学 (4); "北京的大学。" -> 北 京 的 大 学 (5, "。" removed); shared 4
    # P = 4/4, R = 4/5, F1 = 2 * 0.8 / 1.8 = 8/9
    result = metrics["qa"].compute(predictions=["北京大学"], references=["北京的大学。"])
    assert result["f1"] == pytest.approx(800 / 9)
    assert result["exact_match"] == 0.0


def test_qa_exact_match_after_normalisation_and_best_reference(metrics):
    predictions = ["GPT-4 模型", "北京大学", "Paris"]
    references = [
        ["gpt4模型"],  # same tokens [gpt4, 模, 型] -> EM 1, F1 1
        ["北大", "北京的大学。"],  # best F1 is 8/9 against the second; "北大" gives 2*(2/4*1)/(1.5) = 2/3
        ["London", "Lyon"],  # nothing shared -> 0
    ]
    result = metrics["qa"].compute(predictions=predictions, references=references)
    assert result["exact_match"] == pytest.approx(100 / 3)
    assert result["f1"] == pytest.approx(100 * (1 + 8 / 9 + 0) / 3)


def test_qa_case_is_folded_on_both_sides(metrics):
    # Capitals only in the references: a metric that lower-cases just the prediction scores these 0.
    result = metrics["qa"].compute(
        predictions=["paris", "tom 在 Beijing"], references=[["Paris"], ["TOM在BEIJING"]]
    )
    assert result["exact_match"] == pytest.approx(100.0)
    assert result["f1"] == pytest.approx(100.0)


def test_qa_empty_answers_agree_and_batches_accumulate(metrics):
    qa = metrics["qa"]
    # an empty prediction matches an empty (unanswerable) reference and nothing else
    qa.add_batch(predictions=["", ""], references=[[""], ["答案"]])
    qa.add_batch(predictions=["答案"], references=[["答案"]])
    result = qa.compute()
    assert result["exact_match"] == pytest.approx(200 / 3)
    assert result["f1"] == pytest.approx(200 / 3)


# ---------------------------------------------------------------------------------------------- BLEU


def test_bleu_identical_is_100_and_disjoint_is_0(metrics):
    bleu = metrics["bleu"]
    same = bleu.compute(predictions=["the cat is on the mat"], references=["the cat is on the mat"])
    assert same["bleu"] == pytest.approx(100.0)
    assert same["tokenize"] == "13a"
    zh_same = bleu.compute(predictions=["猫坐在垫子上。"], references=[["猫坐在垫子上。"]])
    assert zh_same["bleu"] == pytest.approx(100.0)
    assert zh_same["tokenize"] == "zh"
    disjoint = bleu.compute(predictions=["狗跑了"], references=["猫坐在垫子上"])
    assert disjoint["bleu"] == pytest.approx(0.0, abs=1e-9)


def test_bleu_brevity_penalty_by_hand(metrics):
    # every n-gram of "a b c d" is in the 6-word reference, so all precisions are 100 and
    # BLEU = BP = exp(1 - ref_len / hyp_len) = exp(1 - 6/4) = exp(-0.5) = 0.60653
    result = metrics["bleu"].compute(predictions=["a b c d"], references=["a b c d e f"])
    assert result["precisions"] == pytest.approx([100.0] * 4)
    assert result["bleu"] == pytest.approx(60.653066, abs=1e-5)
    assert result["translation_length"] == 4 and result["reference_length"] == 6


def test_bleu_chinese_needs_zh_tokenisation(metrics):
    # Without word boundaries, 13a sees each unsegmented Chinese sentence as one token, so a single
    # different character makes the whole sentence a miss; zh splits characters and gives partial credit.
    prediction, reference = ["今天天气很好我们去公园"], ["今天天气很好我们去公园吧"]
    auto = metrics["bleu"].compute(predictions=prediction, references=reference)
    as_words = metrics["bleu"].compute(predictions=prediction, references=reference, tokenize="13a")
    assert auto["tokenize"] == "zh"
    assert auto["bleu"] > 80.0
    assert as_words["bleu"] == pytest.approx(0.0, abs=1e-9)


def test_bleu_equals_sacrebleu_with_variable_reference_counts(metrics):
    import sacrebleu

    predictions = ["the cat sat on a mat", "a dog barked loudly today"]
    references = [["the cat sat on the mat", "a cat was sitting on the mat"], ["the dog barked loudly"]]
    expected = sacrebleu.corpus_bleu(
        predictions,
        [["the cat sat on the mat", "the dog barked loudly"], ["a cat was sitting on the mat", None]],
    )
    result = metrics["bleu"].compute(predictions=predictions, references=references)
    assert result["bleu"] == pytest.approx(expected.score)
    assert result["signature"].startswith("nrefs:var")


def test_bleu_rejects_unknown_options(metrics):
    with pytest.raises(ValueError, match="tokenize='klingon'"):
        metrics["bleu"].compute(predictions=["a"], references=["a"], tokenize="klingon")
    with pytest.raises(ValueError, match="smooth_method"):
        metrics["bleu"].compute(predictions=["a"], references=["a"], smooth_method="magic")


def test_missing_sacrebleu_gives_install_hint(metrics, monkeypatch):
    monkeypatch.setitem(sys.modules, "sacrebleu", None)  # makes `import sacrebleu` raise ImportError
    for name in ("bleu", "chrf"):
        with pytest.raises(ImportError, match=r"pip install 'wenlm\[metrics\]'"):
            metrics[name].compute(predictions=["a"], references=["a"])


# ---------------------------------------------------------------------------------------------- chrF


def test_chrf_unigram_by_hand(metrics):
    # char_order=1: "ab" vs "ac" share 1 of 2 characters, P = R = 1/2,
    # chrF(beta=2) = (1 + 4) * P * R / (4 * P + R) = 1.25 / 2.5 = 0.5
    result = metrics["chrf"].compute(predictions=["ab"], references=["ac"], char_order=1)
    assert result["chrf"] == pytest.approx(50.0)


def test_chrf_chinese_bigram_by_hand(metrics):
    # char_order=2: unigrams 3 of 4 shared (P = R = 3/4), bigrams {我喜, 喜欢} of 3 (P = R = 2/3);
    # averaged P = R = (3/4 + 2/3) / 2 = 17/24, so chrF = 17/24
    result = metrics["chrf"].compute(predictions=["我喜欢猫"], references=["我喜欢狗"], char_order=2)
    assert result["chrf"] == pytest.approx(100 * 17 / 24)


def test_chrf_equals_sacrebleu_directly(metrics):
    import sacrebleu

    predictions = ["The quick brown fox jumps.", "我们明天去北京看长城。"]
    references = [["A quick brown fox jumped."], ["我们明天要去北京参观长城。"]]
    expected = sacrebleu.corpus_chrf(predictions, [[refs[0] for refs in references]])
    result = metrics["chrf"].compute(predictions=predictions, references=references)
    assert result["chrf"] == pytest.approx(expected.score)
    assert 0.0 < result["chrf"] < 100.0
    plus = metrics["chrf"].compute(predictions=predictions, references=references, word_order=2)
    expected_plus = sacrebleu.corpus_chrf(predictions, [[refs[0] for refs in references]], word_order=2)
    assert plus["chrf"] == pytest.approx(expected_plus.score)


def test_chrf_rejects_bad_orders(metrics):
    with pytest.raises(ValueError, match="both be 0"):
        metrics["chrf"].compute(predictions=["a"], references=["a"], char_order=0)
    with pytest.raises(ValueError, match="word_order"):
        metrics["chrf"].compute(predictions=["a"], references=["a"], word_order=-1)


# ---------------------------------------------------------------------------------------------- ROUGE-L


def test_rouge_l_english_by_hand(metrics):
    # pred [the cat lay on a mat], ref [the cat sat on the mat]: LCS = the cat on mat = 4
    # P = 4/6, R = 4/6, F = 4/6
    result = metrics["rouge_l"].compute(
        predictions=["the cat lay on a mat"], references=["the cat sat on the mat"]
    )
    assert result["rougeL"] == pytest.approx(400 / 6)


def test_rouge_l_chinese_by_hand(metrics):
    # pred 我喜欢苹果 (5 chars) is a subsequence of ref 我喜欢吃苹果 (6 chars): LCS = 5
    # P = 5/5, R = 5/6, F = 2 * (5/6) / (11/6) = 10/11
    result = metrics["rouge_l"].compute(predictions=["我喜欢苹果"], references=["我喜欢吃苹果"])
    assert result["rougeL"] == pytest.approx(1000 / 11)
    assert result["rougeL_precision"] == pytest.approx(100.0)
    assert result["rougeL_recall"] == pytest.approx(500 / 6)


def test_rouge_l_takes_best_reference_and_zero_for_empty(metrics):
    # second reference is identical -> F = 1; the empty prediction scores 0
    result = metrics["rouge_l"].compute(
        predictions=["我喜欢苹果", ""], references=[["天气很好", "我喜欢苹果"], ["有内容"]]
    )
    assert result["rougeL"] == pytest.approx(50.0)


def test_rouge_l_reports_precision_and_recall_of_the_best_f_reference(metrics):
    # "a": P 1/3, R 1, F 1/2; "a b c d e f": P 1, R 1/2, F 2/3 -> the second counts, recall and all
    result = metrics["rouge_l"].compute(predictions=["a b c"], references=[["a", "a b c d e f"]])
    assert result["rougeL"] == pytest.approx(200 / 3)
    assert result["rougeL_precision"] == pytest.approx(100.0)
    assert result["rougeL_recall"] == pytest.approx(50.0)


def test_rouge_l_matches_rouge_score_on_english(metrics):
    from rouge_score import rouge_scorer

    predictions = ["The police killed the gunman.", "A quick brown fox jumps over the lazy dog!"]
    references = ["The gunman was shot dead by police.", "The quick brown dog jumps on the log."]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    expected = [scorer.score(ref, pred)["rougeL"] for pred, ref in zip(predictions, references, strict=True)]
    result = metrics["rouge_l"].compute(predictions=predictions, references=references)
    assert result["rougeL"] == pytest.approx(100 * sum(s.fmeasure for s in expected) / 2)
    assert result["rougeL_precision"] == pytest.approx(100 * sum(s.precision for s in expected) / 2)
    # and rouge_score is the reason this metric exists: it scores Chinese as empty
    assert scorer.score("我喜欢吃苹果", "我喜欢苹果")["rougeL"].fmeasure == 0.0


# ---------------------------------------------------------------------------------------------- classification


def test_classification_confusion_matrix_by_hand(metrics):
    # refs  0 0 1 1 2 2 / preds 0 1 1 1 2 0; correct at positions 0, 2, 3, 4 -> accuracy 4/6
    # class 0: TP 1, FP 1, FN 1 -> F1 = 2*1/(2+1+1) = 1/2
    # class 1: TP 2, FP 1, FN 0 -> F1 = 4/5
    # class 2: TP 1, FP 0, FN 1 -> F1 = 2/3
    # macro-F1 = (1/2 + 4/5 + 2/3) / 3 = (59/30) / 3 = 59/90
    result = metrics["classification"].compute(predictions=[0, 1, 1, 1, 2, 0], references=[0, 0, 1, 1, 2, 2])
    assert result["accuracy"] == pytest.approx(400 / 6)
    assert result["per_class_f1"] == pytest.approx({0: 50.0, 1: 80.0, 2: 200 / 3})
    assert result["macro_f1"] == pytest.approx(100 * 59 / 90)


def test_classification_string_labels_and_explicit_label_set(metrics):
    result = metrics["classification"].compute(
        predictions=["neg", "neu", "neu", "neu", "pos", "neg"],
        references=["neg", "neg", "neu", "neu", "pos", "pos"],
    )
    assert result["per_class_f1"] == pytest.approx({"neg": 50.0, "neu": 80.0, "pos": 200 / 3})
    # a class absent from this batch still counts (F1 0) when named in labels: (50 + 80 + 200/3 + 0) / 4
    with_absent = metrics["classification"].compute(
        predictions=["neg", "neu", "neu", "neu", "pos", "neg"],
        references=["neg", "neg", "neu", "neu", "pos", "pos"],
        labels=["neg", "neu", "pos", "mixed"],
    )
    assert with_absent["macro_f1"] == pytest.approx((50 + 80 + 200 / 3) / 4)
    assert with_absent["per_class_f1"]["mixed"] == 0.0


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "predictions", "references", "message"),
    [
        ("qa", [], [], "no examples"),
        ("bleu", ["a", "b"], ["a"], "2 predictions but 1 references"),
        ("rouge_l", ["a", "b"], ["a", ["b"]], r"references\[1\] is a list but references\[0\] is a string"),
        ("qa", ["a"], [[]], r"references\[0\] is an empty list"),
        ("classification", [0, "x"], [0, 1], r"predictions\[1\] is a string"),
        ("chrf", None, ["a"], "both predictions and references are required"),
        ("chrf", "ab", ["a", "b"], "predictions is a single string"),
    ],
)
def test_bad_inputs_raise_clear_value_errors(metrics, name, predictions, references, message):
    with pytest.raises(ValueError, match=message):
        metrics[name].compute(predictions=predictions, references=references)


def test_compute_metric_convenience():
    assert compute_metric("classification", ["a", "b"], ["a", "a"])["accuracy"] == pytest.approx(50.0)
    assert compute_metric("bleu", ["猫坐在垫子上"], ["猫坐在垫子上"], tokenize="char")["tokenize"] == "char"


# ---------------------------------------------------------------------------------------------- offline


@pytest.mark.slow
def test_loads_offline_into_fresh_module_cache_without_network(tmp_path):
    # A fresh interpreter: evaluate reads HF_MODULES_CACHE and the offline flags only at import time.
    # Sockets are disabled, so any attempt to reach the Hub fails loudly instead of timing out.
    script = textwrap.dedent(
        """
        import json, socket, sys

        def refuse(*args, **kwargs):
            raise RuntimeError("network access attempted")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        from wenlm.training.evaluation.metrics import METRIC_NAMES, load_metric

        score_keys = {"qa": "f1", "bleu": "bleu", "chrf": "chrf", "rouge_l": "rougeL"}
        scores = {}
        for name in METRIC_NAMES:
            metric = load_metric(name)  # default: cache files on disk, as a user would get
            if name == "classification":
                scores[name] = metric.compute(predictions=[1, 0], references=[1, 1])["accuracy"]
            elif name == "retrieval":  # each query's gold rank and its group
                scores[name] = metric.compute(predictions=[1, 2], references=["zh", "en"])["mrr"]
            else:
                scores[name] = metric.compute(predictions=["猫坐在垫子上"], references=["猫坐在垫子上"])[score_keys[name]]
        print(json.dumps(scores))
        """
    )
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGINGFACE"))
    }
    environment.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf_home"),
        HF_MODULES_CACHE=str(tmp_path / "modules"),
    )
    metrics_dir = metric_path("qa").parent
    files_before = sorted(path for path in metrics_dir.rglob("*") if "__pycache__" not in path.parts)
    completed = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    scores = json.loads(completed.stdout.strip().splitlines()[-1])
    assert scores == pytest.approx(
        {
            "qa": 100.0,
            "bleu": 100.0,
            "chrf": 100.0,
            "rouge_l": 100.0,
            "classification": 50.0,
            "retrieval": 75.0,
        }
    )
    # evaluate copied every script into the fresh cache and wrote nothing next to the installed sources
    cached = {path.name for path in Path(tmp_path / "modules").rglob("wenlm_*.py")}
    assert cached == {f"{metric_path(name).name}.py" for name in METRIC_NAMES}
    files_after = sorted(path for path in metrics_dir.rglob("*") if "__pycache__" not in path.parts)
    assert files_after == files_before
