"""The caption policy (issue 12): control characters, bidi controls and invisible-only captions are
refused with their own reasons; emoji, ZWJ sequences, combining marks and formula-leading text stay."""

from __future__ import annotations

import pytest

from ogiri.ingest.captions import BIDI_CONTROLS, CaptionRejected, check_caption
from ogiri.ingest.csv_rows import iter_rows
from ogiri.ingest.reasons import Reason
from ogiri.ingest.rows import Reject, Row

C0_C1 = [chr(c) for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)] if c != 0x09]


def reason_of(caption: str) -> Reason | None:
    try:
        check_caption(caption)
    except CaptionRejected as exc:
        return exc.reason
    return None


@pytest.mark.parametrize("ch", C0_C1, ids=lambda c: f"U+{ord(c):04X}")
def test_every_c0_and_c1_control_but_tab_is_refused(ch):
    assert reason_of(f"a cat{ch}on a mat") == Reason.CAPTION_CONTROL_CHARACTER


def test_terminal_escape_and_nul_name_the_code_point():
    with pytest.raises(CaptionRejected) as err:
        check_caption("red \x1b[31malert\x1b[0m")
    assert err.value.detail == "caption has control character U+001B at 4"
    assert reason_of("nul\x00byte") == Reason.CAPTION_CONTROL_CHARACTER


@pytest.mark.parametrize("ch", sorted(BIDI_CONTROLS), ids=lambda c: f"U+{ord(c):04X}")
def test_bidi_overrides_and_isolates_are_refused(ch):
    assert reason_of(f"invoice {ch}gpj.exe") == Reason.CAPTION_BIDI_CONTROL


def test_bidi_range_is_exactly_the_embeddings_overrides_and_isolates():
    assert sorted(ord(c) for c in BIDI_CONTROLS) == [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]


@pytest.mark.parametrize(
    "caption",
    ["\u200b", "\u200b\u200d\u2060", "\ufeff", "\u3164", "\u2800\u2800", "\u0301", "\u00a0\u200b", "\u115f\u1160"],
)
def test_captions_without_a_visible_character_are_refused(caption):
    assert reason_of(caption) == Reason.CAPTION_INVISIBLE


@pytest.mark.parametrize(
    "caption",
    [
        "a cat\tsits",  # tab is allowed
        "👨‍👩‍👧 family on a beach",  # ZWJ sequence
        "🏳️‍🌈",  # emoji with VS16 and ZWJ only
        "café",  # precomposed (NFC)
        "\u0915\u094d\u0937",  # Devanagari conjunct with a virama
        "=HYPERLINK(\"http://x\")",  # formula-leading: stored verbatim
        "+1 dog", "-2 cats", "@home",
        "\u2028 between lines",  # line separator is not a C0/C1 control
        "עברית mixed with English",  # RTL script without bidi controls
    ],
)
def test_real_captions_are_kept(caption):
    assert reason_of(caption) is None


def test_csv_reader_applies_the_policy_and_keeps_going():
    data = (
        "https://x.example/1.jpg,fine\n"
        "https://x.example/2.jpg,\"bell\x07\"\n"
        "https://x.example/3.jpg,\u202eevil\n"
        "https://x.example/4.jpg,\u200b\u200b\n"
        "https://x.example/5.jpg,=1+1\n"
    ).encode()
    items = list(iter_rows([data], max_caption_chars=280))
    assert [(i.line, i.reason if isinstance(i, Reject) else i.caption) for i in items] == [
        (1, "fine"),
        (2, Reason.CAPTION_CONTROL_CHARACTER),
        (3, Reason.CAPTION_BIDI_CONTROL),
        (4, Reason.CAPTION_INVISIBLE),
        (5, "=1+1"),
    ]
    assert isinstance(items[-1], Row)
