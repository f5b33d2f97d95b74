import pytest

from ogiri_captioner.metrics import (
    caption_metrics,
    char_tokens,
    distinct_n,
    format_metrics,
    most_frequent_caption_baseline,
)

REFS = {"a": ["左に赤い丸、右に青い四角", "赤い丸が左、青い四角が右にある"], "b": ["右に緑の三角がひとつ"],
        "c": ["左に黄色い丸がひとつ"]}


def test_perfect_captions_score_highest():
    perfect = caption_metrics(REFS, {k: v[0] for k, v in REFS.items()})
    assert perfect["bleu4"] == pytest.approx(1.0, abs=1e-6)
    wrong = caption_metrics(REFS, {"a": "右に青い丸", "b": "左に赤い四角", "c": "なにもない"})
    assert wrong["bleu4"] < 0.3 < perfect["bleu4"]
    assert wrong["cider"] < perfect["cider"]


def test_character_tokens_keep_whitespace_visible():
    assert char_tokens("赤 い") == "赤 \u2581 い"


def test_distinct_and_length():
    m = caption_metrics({"x": ["ああ"], "y": ["ああ"]}, {"x": "ああ", "y": "ああ"})
    assert m["distinct_1"] == pytest.approx(1 / 4) and m["distinct_2"] == pytest.approx(1 / 2)
    assert m["mean_length"] == 2
    assert distinct_n([], 2) == 0.0


def test_empty_hypothesis_scores_zero_not_crash():
    assert caption_metrics(REFS, {"a": "", "b": "", "c": ""})["bleu4"] < 1e-6


def test_most_frequent_baseline():
    b = most_frequent_caption_baseline(["右に緑の三角がひとつ", "右に緑の三角がひとつ", "x"], REFS)
    assert b["caption"] == "右に緑の三角がひとつ" and 0 < b["bleu4"] < 1


def test_bad_input_and_log_format():
    with pytest.raises(ValueError, match="same keys"):
        caption_metrics(REFS, {"a": "x"})
    line = format_metrics({"epoch": 3, "val_bleu4": 0.5, "name": "skip"})
    assert line == "epoch=3 val_bleu4=0.5"
