"""Character-level tokenizer for Japanese (and any other script): no spaces assumed.

Every Unicode code point of the NFC-normalised text is one token, so kana, kanji, Latin, digits
and emoji all round-trip. Unknown characters map to ``<unk>``.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


def normalize(text: str) -> str:
    """The normal form captions are compared and tokenized in (Unicode NFC)."""
    if not isinstance(text, str):
        raise ValueError(f"caption must be a string, got {type(text).__name__}")
    return unicodedata.normalize("NFC", text)


class CharTokenizer:
    """Maps characters to ids; ids 0-3 are ``<pad> <bos> <eos> <unk>``."""

    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __init__(self, chars: Iterable[str]):
        self.itos: list[str] = list(SPECIALS)
        for ch in chars:
            if ch in SPECIALS or len(ch) != 1:
                raise ValueError(f"vocabulary entries must be single characters, got {ch!r}")
            self.itos.append(ch)
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary has duplicate characters")

    @classmethod
    def build(cls, captions: Iterable[str], min_freq: int = 1) -> CharTokenizer:
        """Vocabulary of every character seen at least ``min_freq`` times, in a deterministic order."""
        counts = Counter(ch for c in captions for ch in normalize(c))
        return cls(sorted(ch for ch, n in counts.items() if n >= min_freq))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str, add_special: bool = False, max_len: int | None = None) -> list[int]:
        """Ids of the characters of ``text`` (truncated to ``max_len``), optionally wrapped in bos/eos."""
        ids = [self.stoi.get(ch, self.unk_id) for ch in normalize(text)]
        if max_len is not None:
            ids = ids[:max_len]
        return [self.bos_id, *ids, self.eos_id] if add_special else ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; stops at ``<eos>``, skips ``<pad>``/``<bos>``, keeps ``<unk>`` visible."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.pad_id, self.bos_id):
                continue
            out.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return "".join(out)

    def to_dict(self) -> dict:
        return {"type": "char", "normalization": "NFC", "specials": list(SPECIALS), "vocab": self.itos}

    @classmethod
    def from_dict(cls, data: dict) -> CharTokenizer:
        if data.get("type") != "char" or list(data.get("specials", [])) != list(SPECIALS):
            raise ValueError("not a character tokenizer description (type/specials mismatch)")
        vocab = data["vocab"]
        if list(vocab[: len(SPECIALS)]) != list(SPECIALS):
            raise ValueError("tokenizer vocabulary must start with the special tokens")
        return cls(vocab[len(SPECIALS) :])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
