"""The caption policy every writer of captions applies (ingest's CSV rows, people's labeling answers).

A caption (already NFC-normalised and stripped) is refused for:

* ``caption_control_character``: NUL and every other C0/C1 control (``\\x00``-``\\x1f``, ``\\x7f``,
  ``\\x80``-``\\x9f``: terminal escapes, newlines, NEL) except tab;
* ``caption_bidi_control``: bidi embeddings/overrides U+202A..U+202E and isolates U+2066..U+2069,
  which reorder how the caption (and whatever is printed after it) is displayed;
* ``caption_invisible``: no visible character at all (only zero-width, format, combining, blank or
  space characters, e.g. ``"\\u200b\\u200d"`` or Hangul fillers).

Emptiness and the length limit (``Settings.max_caption_chars``) are checked by the callers, which
count them their own way (a CSV record's bytes, a worker's answer).
"""

from __future__ import annotations

import unicodedata

BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))
#: Letters/symbols that render as nothing (fillers, blank patterns), beyond the categories below.
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
#: Categories without a glyph of their own: spaces/separators, controls, format (ZWJ, ZWSP, ...),
#: combining marks (nothing to combine with when alone), surrogates, private use, unassigned.
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Mn", "Me", "Cs", "Co", "Cn"})


def _is_control(ch: str) -> bool:
    return ch != "\t" and unicodedata.category(ch) == "Cc"


def _is_visible(ch: str) -> bool:
    return ch not in _BLANK_GLYPHS and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES


def caption_problem(caption: str) -> tuple[str, str] | None:
    """``(reason code, detail)`` when ``caption`` breaks the policy, else None. The detail names the
    first offending code point and its position (deterministic: no timings, no reprs)."""
    for i, ch in enumerate(caption):
        if _is_control(ch):
            return "caption_control_character", f"caption has control character U+{ord(ch):04X} at {i}"
    for i, ch in enumerate(caption):
        if ch in BIDI_CONTROLS:
            return ("caption_bidi_control",
                    f"caption has bidi control U+{ord(ch):04X} ({unicodedata.name(ch)}) at {i}")
    if not any(_is_visible(ch) for ch in caption):
        return "caption_invisible", f"caption of {len(caption)} characters has none visible"
    return None
