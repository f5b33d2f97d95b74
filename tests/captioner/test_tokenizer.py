import pytest

from ogiri_captioner.tokenizer import CharTokenizer

TEXTS = [
    "左に赤い丸、右に青い四角",
    "寿司🍣を食べた👨‍👩‍👧 OK! ｶﾀｶﾅとカタカナ",
    "Mixed 漢字 hiragana ひらがな 한국어 العربية 123",
    "🇯🇵🏳️‍🌈 家族👩🏽‍💻",
]


def test_round_trip_japanese_emoji_and_mixed_scripts():
    tok = CharTokenizer.build(TEXTS)
    for text in TEXTS:
        ids = tok.encode(text, add_special=True)
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
        assert tok.unk_id not in ids
        assert tok.decode(ids) == text


def test_no_spaces_assumed_every_character_is_a_token():
    tok = CharTokenizer.build(["大喜利"])
    assert len(tok.encode("大喜利")) == 3
    assert tok.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]


def test_unknown_characters_and_truncation():
    tok = CharTokenizer.build(["あいう"])
    ids = tok.encode("あxう")
    assert ids[1] == tok.unk_id
    assert tok.decode(ids) == "あ<unk>う"
    assert tok.decode(tok.encode("あいうあいう", add_special=True, max_len=4)) == "あいうあ"


def test_decode_stops_at_eos_and_skips_padding():
    tok = CharTokenizer.build(["ab"])
    a, b = tok.stoi["a"], tok.stoi["b"]
    assert tok.decode([tok.bos_id, a, tok.eos_id, b, tok.pad_id]) == "a"


def test_min_freq_and_deterministic_vocabulary():
    a = CharTokenizer.build(["あい", "あ"], min_freq=2)
    assert a.itos[4:] == ["あ"]
    assert CharTokenizer.build(["いあ"]).itos == CharTokenizer.build(["あい"]).itos


def test_save_and_load(tmp_path):
    tok = CharTokenizer.build(TEXTS)
    tok.save(tmp_path / "tokenizer.json")
    again = CharTokenizer.load(tmp_path / "tokenizer.json")
    assert again.itos == tok.itos
    assert "寿" in (tmp_path / "tokenizer.json").read_text(encoding="utf-8")  # readable, not \u-escaped


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="caption must be a string"):
        CharTokenizer.build([None])
    with pytest.raises(ValueError, match="not a character tokenizer"):
        CharTokenizer.from_dict({"type": "bpe"})
