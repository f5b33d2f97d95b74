"""The caption policy of ingest: which (already NFC-normalised, stripped) captions are accepted (the
rules live in the core, :mod:`ogiri.caption_policy`, shared with ``ogiri_label``'s answers).

Refused, each with its own :class:`~ogiri.ingest.reasons.Reason`:

* ``caption_control_character``: NUL and every other C0/C1 control (``\\x00``-``\\x1f``, ``\\x7f``,
  ``\\x80``-``\\x9f``: terminal escapes, newlines, NEL) except tab;
* ``caption_bidi_control``: bidi embeddings/overrides U+202A..U+202E and isolates U+2066..U+2069,
  which reorder how the caption (and whatever is printed after it) is displayed;
* ``caption_invisible``: no visible character at all (only zero-width, format, combining, blank or
  space characters, e.g. ``"\\u200b\\u200d"`` or Hangul fillers).

Kept as they are: emoji and their ZWJ sequences, combining marks (NFC, applied by the CSV
reader), every script, and formula-leading captions (``= + - @``): the catalog stores text, and any
CSV export must escape such cells itself (see the README).
"""

from __future__ import annotations

from ogiri.caption_policy import BIDI_CONTROLS, caption_problem
from ogiri.ingest.reasons import Reason, Rejected

__all__ = ["BIDI_CONTROLS", "CaptionRejected", "check_caption"]


class CaptionRejected(Rejected):
    """The caption breaks the policy; ``reason`` says which rule."""


def check_caption(caption: str) -> None:
    """Raise :class:`CaptionRejected` when ``caption`` breaks the policy (:mod:`ogiri.caption_policy`,
    shared with the labeling answers); the detail names the first offending code point and its position."""
    problem = caption_problem(caption)
    if problem is not None:
        raise CaptionRejected(Reason(problem[0]), problem[1])
