"""Streaming CSV parsing: every record becomes a Row or a Reject with the right reason, whatever the
bytes and however they are chunked; one bad record never hides the others."""

from __future__ import annotations

import io
import itertools

import pytest
from botocore.response import StreamingBody

from ogiri.ingest.csv_rows import MAX_RAW_CHARS, iter_rows
from ogiri.ingest.reasons import Reason
from ogiri.ingest.rows import Reject, Row


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def parse(data: bytes, size: int = 4096, **kw) -> list[Row | Reject]:
    kw.setdefault("max_caption_chars", 280)
    return list(iter_rows(chunked(data, size), **kw))


def summary(items) -> list[tuple]:
    return [
        (i.line, "row", i.url, i.caption) if isinstance(i, Row) else (i.line, "reject", i.reason)
        for i in items
    ]


MIXED = (
    (
        "\ufeffimage_url,caption\r\n"
        'https://img.example.com/a.jpg,"猫が言った, ""にゃー""\n二行目"\r\n'
        "\r\n"
        "   \n"
        "s3://ogiri-landing/pics/b.png,  犬  \n"
        "https://img.example.com/c.jpg,a,b\n"
    ).encode()
    + b"https://img.example.com/d.jpg,\xe7\x8c\xab\xff\xfe\n"
    + b"http://img.example.com/e.jpg,last\n"
)

MIXED_EXPECTED = [
    (2, "reject", Reason.CAPTION_CONTROL_CHARACTER),  # a quoted newline is one record; captions are one line
    (6, "row", "s3://ogiri-landing/pics/b.png", "犬"),
    (7, "reject", Reason.COLUMN_COUNT),
    (8, "reject", Reason.INVALID_UTF8),
    (9, "row", "http://img.example.com/e.jpg", "last"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64, 1 << 20])
def test_mixed_file_is_chunking_independent(size):
    assert summary(parse(MIXED, size)) == MIXED_EXPECTED


def test_from_botocore_streaming_body():
    body = StreamingBody(io.BytesIO(MIXED), len(MIXED))
    assert summary(iter_rows(body.iter_chunks(7), max_caption_chars=280)) == MIXED_EXPECTED


def test_header_is_optional_and_not_counted():
    no_header = b"https://x.example/1.jpg,one\nhttps://x.example/2.jpg,two\n"
    with_header = b"Image_URL , Caption\r\n" + no_header
    assert [r.caption for r in parse(no_header)] == ["one", "two"]
    assert [r.caption for r in parse(with_header)] == ["one", "two"]
    assert [r.line for r in parse(with_header)] == [2, 3]
    # Only the first record can be a header; later it is just a bad URL.
    later = parse(no_header + b"image_url,caption\n")
    assert summary(later)[-1] == (3, "reject", Reason.MALFORMED_URL)


def test_bom_only_at_start_and_split_across_chunks():
    data = "\ufeffhttps://x.example/1.jpg,ok\n".encode()
    assert summary(parse(data, 1)) == [(1, "row", "https://x.example/1.jpg", "ok")]
    # A BOM-like sequence later is caption text, not skipped.
    mid = parse(b"https://x.example/1.jpg,\xef\xbb\xbfhi\n")
    assert mid[0].caption == "\ufeffhi"


def test_invalid_utf8_rejects_only_that_record():
    data = b"https://x.example/1.jpg,ok\nhttps://x.example/2.jpg,\xc3\x28bad\n\xff\xff,\xfe\nhttps://x.example/3.jpg,fine\n"
    items = parse(data, 3)
    assert summary(items) == [
        (1, "row", "https://x.example/1.jpg", "ok"),
        (2, "reject", Reason.INVALID_UTF8),
        (3, "reject", Reason.INVALID_UTF8),
        (4, "row", "https://x.example/3.jpg", "fine"),
    ]
    assert "\\xc3(bad" in items[1].raw  # undecodable bytes are escaped, not dropped


def test_invalid_utf8_inside_quoted_newlines():
    data = b'https://x.example/1.jpg,"a\n\xffb"\nhttps://x.example/2.jpg,ok\n'
    assert summary(parse(data, 2)) == [
        (1, "reject", Reason.INVALID_UTF8),
        (3, "row", "https://x.example/2.jpg", "ok"),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"https://x.example/1.jpg,a,b", Reason.COLUMN_COUNT),
        (b"https://x.example/1.jpg", Reason.COLUMN_COUNT),
        (b"https://x.example/1.jpg,", Reason.EMPTY_CAPTION),
        (b'https://x.example/1.jpg,"   "', Reason.EMPTY_CAPTION),
        (b"file:///etc/passwd,x", Reason.SCHEME_NOT_ALLOWED),
        (b"gopher://x.example:70/_x,x", Reason.SCHEME_NOT_ALLOWED),
        (b"ftp://x.example/a.jpg,x", Reason.SCHEME_NOT_ALLOWED),
        (b"javascript:alert(1),x", Reason.SCHEME_NOT_ALLOWED),
        (b"not a url,x", Reason.MALFORMED_URL),
        (b"https:///nohost.jpg,x", Reason.MALFORMED_URL),
        (b"https://user:pw@x.example/a.jpg,x", Reason.MALFORMED_URL),
        (b"http://[::1/a.jpg,x", Reason.MALFORMED_URL),
        (b"https://x.example:99999/a.jpg,x", Reason.MALFORMED_URL),
        (b"s3://,x", Reason.MALFORMED_URL),
        (b"s3://bucket-only,x", Reason.MALFORMED_URL),
        (b"https://" + b"a" * 3000 + b".example/x.jpg,x", Reason.MALFORMED_URL),
        (b'https://x.example/1.jpg,"closed"trailing', Reason.MALFORMED_CSV),
        (b'"https://x.example/1.jpg,never closed', Reason.MALFORMED_CSV),
    ],
)
def test_bad_records_get_their_reason(line, reason):
    items = parse(b"https://x.example/ok.jpg,ok\n" + line + b"\n", 5)
    assert summary(items)[0] == (1, "row", "https://x.example/ok.jpg", "ok")
    assert len(items) == 2
    assert isinstance(items[1], Reject)
    assert (items[1].line, items[1].reason) == (2, reason), items[1].detail


def test_stray_quote_is_one_reject_and_parsing_resumes():
    data = b'https://x.example/1.jpg,say "hi\nhttps://x.example/2.jpg,b"\nhttps://x.example/3.jpg,ok\n'
    assert summary(parse(data)) == [
        (1, "reject", Reason.MALFORMED_CSV),
        (3, "row", "https://x.example/3.jpg", "ok"),
    ]


def test_caption_length_counts_characters_after_nfc():
    decomposed = "か\u3099" * 10  # ten "が" spelt as base + combining mark
    row = parse(f"https://x.example/1.jpg,{decomposed}\n".encode(), max_caption_chars=10)[0]
    assert isinstance(row, Row) and row.caption == "が" * 10
    too_long = parse(("https://x.example/1.jpg," + "猫" * 11 + "\n").encode(), max_caption_chars=10)[0]
    assert too_long.reason == Reason.CAPTION_TOO_LONG


def test_one_megabyte_caption_is_rejected_with_bounded_raw():
    caption = b"x" * (1 << 20)
    data = b"https://x.example/1.jpg," + caption + b"\nhttps://x.example/2.jpg,next\n"
    items = parse(data, 65536)
    assert summary(items) == [
        (1, "reject", Reason.CAPTION_TOO_LONG),
        (2, "row", "https://x.example/2.jpg", "next"),
    ]
    assert len(items[0].raw) <= MAX_RAW_CHARS
    assert str(1 << 20) in items[0].detail or "caption" in items[0].detail


def test_huge_record_with_extra_columns_is_a_column_count_reject():
    data = b'https://x.example/1.jpg,"' + b"y," * 400_000 + b'",third\nhttps://x.example/2.jpg,ok\n'
    assert summary(parse(data, 4096)) == [
        (1, "reject", Reason.COLUMN_COUNT),
        (2, "row", "https://x.example/2.jpg", "ok"),
    ]


def test_streams_lazily_from_an_endless_source():
    def endless():
        for n in itertools.count():
            yield f"https://x.example/{n}.jpg,caption {n}\n".encode()

    first = list(itertools.islice(iter_rows(endless(), max_caption_chars=280), 3))
    assert [r.caption for r in first] == ["caption 0", "caption 1", "caption 2"]


def test_no_trailing_newline_and_crlf():
    assert summary(parse(b"https://x.example/1.jpg,a\r\nhttps://x.example/2.jpg,b")) == [
        (1, "row", "https://x.example/1.jpg", "a"),
        (2, "row", "https://x.example/2.jpg", "b"),
    ]


def test_empty_and_blank_inputs_yield_nothing():
    assert parse(b"") == []
    assert parse(b"\xef\xbb\xbf") == []
    assert parse(b"\n\r\n  \n") == []
    assert parse(b"image_url,caption\n") == []


def test_allowed_schemes_can_be_narrowed():
    items = parse(b"http://x.example/1.jpg,a\n", allowed_schemes=("https",))
    assert items[0].reason == Reason.SCHEME_NOT_ALLOWED


def test_source_is_named_in_reject_details():
    items = parse(b"ftp://x/1.jpg,a\n", source="landing/dt=2026-01-01/a.csv")
    assert items[0].detail.startswith("landing/dt=2026-01-01/a.csv: ")
    assert items[0].as_dict()["reason"] == "scheme_not_allowed"


def test_unclosed_quote_swallowing_a_long_tail_is_one_malformed_reject():
    data = (
        b'https://x.example/1.jpg,ok\nhttps://x.example/2.jpg,"oops\n'
        + b"https://x.example/n.jpg,row\n" * 5000
    )
    items = parse(data, 4096)
    assert summary(items) == [
        (1, "row", "https://x.example/1.jpg", "ok"),
        (2, "reject", Reason.MALFORMED_CSV),
    ]
    assert len(items[1].raw) <= MAX_RAW_CHARS
