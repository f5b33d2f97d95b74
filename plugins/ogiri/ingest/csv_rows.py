"""Streaming, reject-don't-crash parsing of landing CSVs (``image_url,caption``).

The byte stream is split into records *at the byte level*, honouring RFC 4180 quotes (``"`` is a
single byte that never occurs inside a multi-byte UTF-8 sequence, so this is safe even when the
bytes are not valid UTF-8); each record is then decoded and parsed on its own. So one bad record
(invalid UTF-8, bad quoting, wrong column count, ...) is rejected alone and the rest of the file is
still read. Memory is bounded by ``max_record_bytes`` regardless of input: a longer record is
skipped to its end (quotes still honoured) and rejected with a prefix kept for the reject log.

Conventions:

* Records end at an unquoted ``\\n`` (a preceding ``\\r`` is dropped); quoted fields may hold commas,
  newlines and doubled quotes. A UTF-8 BOM at the start of the stream is skipped. As in any RFC 4180
  reader, a stray ``"`` opens a quoted field that runs to the next ``"``: the lines in between form
  one ``malformed_csv`` reject (one row in), and an unclosed quote at end of file likewise.
* ``line_no`` is the 1-based physical line on which the record starts (quoted newlines count).
* Blank (whitespace-only) lines are ignored and are *not* counted as rows.
* The first non-blank record is a header, skipped and not counted, when it is exactly
  ``image_url,caption`` (case-insensitive, whitespace around names ignored).
* Fields are stripped of surrounding whitespace; the caption is NFC-normalised and its length is
  counted in characters (code points) after that.
* The caption policy (:mod:`ogiri.ingest.captions`: control characters, bidi controls, nothing
  visible) is applied here too, after the empty and length checks.
* URL syntax and scheme are checked here (``scheme_not_allowed``, ``malformed_url``) with
  :func:`ogiri.ingest.fetch.validate_url`, so such rows never reach the fetcher.

Every yielded item is a row "in": ``rows_in = len(Rows) + len(Rejects)``.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ogiri.ingest.captions import CaptionRejected, check_caption
from ogiri.ingest.fetch import DEFAULT_SCHEMES, MAX_URL_CHARS, FetchRejected, validate_url
from ogiri.ingest.reasons import Reason
from ogiri.ingest.rows import Reject, Row

_BOM = b"\xef\xbb\xbf"
#: Reject records keep at most this many characters of their raw text.
MAX_RAW_CHARS = 512
HEADER = ("image_url", "caption")


@dataclass
class _Record:
    line_no: int
    data: bytes  # at most max_record_bytes (a prefix when ``overflow``)
    overflow: bool = False
    total_bytes: int = 0
    commas: int = 0  # unquoted commas in the whole record (exact even when overflowing)
    first_comma_at: int = -1  # byte offset of the first unquoted comma, -1 if none
    open_quote: bool = False  # the stream ended inside a quoted field


def default_max_record_bytes(max_caption_chars: int) -> int:
    """A record cap that any acceptable record fits in (4 bytes/char, quoting doubled, URL, slack)."""
    return 8 * max_caption_chars + 2 * MAX_URL_CHARS + 1024


_STRUCTURAL = re.compile(rb'["\n]')


def _without_bom(chunks: Iterable[bytes]) -> Iterator[bytes]:
    it = iter(chunks)
    head = b""
    for chunk in it:
        head += bytes(chunk)
        if len(head) >= len(_BOM) or not _BOM.startswith(head):
            break
    if head.startswith(_BOM):
        head = head[len(_BOM) :]
    if head:
        yield head
    for chunk in it:
        if chunk:
            yield bytes(chunk)


def _split_records(chunks: Iterable[bytes], max_record_bytes: int) -> Iterator[_Record]:
    """Split a byte stream into CSV records (BOM skipped), honouring quotes; memory is bounded."""
    buf = bytearray()
    rec = _Record(line_no=1, data=b"")
    in_quotes = False
    line_no = 1

    def take(chunk: bytes, a: int, b: int) -> None:
        """Append chunk[a:b] (all inside or all outside quotes) to the current record."""
        if a >= b:
            return
        if not in_quotes:
            commas = chunk.count(b",", a, b)
            if commas:
                if rec.first_comma_at < 0:
                    rec.first_comma_at = rec.total_bytes + chunk.index(b",", a, b) - a
                rec.commas += commas
        rec.total_bytes += b - a
        room = max_record_bytes - len(buf)
        if b - a > room:
            rec.overflow = True
            buf.extend(chunk[a : a + max(room, 0)])
        else:
            buf.extend(chunk[a:b])

    for chunk in _without_bom(chunks):
        pos = 0
        for m in _STRUCTURAL.finditer(chunk):
            i = m.start()
            if chunk[i] == 0x22:  # a quote: belongs to the record, then toggles the state
                take(chunk, pos, i + 1)
                in_quotes = not in_quotes
                pos = i + 1
                continue
            line_no += 1  # a newline
            if in_quotes:
                continue
            take(chunk, pos, i)
            rec.data = bytes(buf)
            yield rec
            buf.clear()
            rec = _Record(line_no=line_no, data=b"")
            pos = i + 1
        take(chunk, pos, len(chunk))
    if rec.total_bytes or in_quotes:
        rec.data = bytes(buf)
        rec.open_quote = in_quotes
        yield rec


def _raw_text(data: bytes) -> str:
    text = data.decode("utf-8", errors="backslashreplace")
    return text if len(text) <= MAX_RAW_CHARS else text[: MAX_RAW_CHARS - 1] + "…"


def iter_rows(
    chunks: Iterable[bytes],
    *,
    max_caption_chars: int,
    source: str = "",
    allowed_schemes: Iterable[str] = DEFAULT_SCHEMES,
    max_record_bytes: int | None = None,
) -> Iterator[Row | Reject]:
    """Parse CSV bytes (e.g. ``StreamingBody.iter_chunks()``) into :class:`Row` / :class:`Reject`.

    ``source`` (e.g. the S3 key) is recorded on every row and reject and prefixes reject details, so a
    reject can be traced to its file.
    """
    if max_caption_chars < 1:
        raise ValueError("max_caption_chars must be >= 1")
    schemes = tuple(allowed_schemes)
    cap = max_record_bytes or default_max_record_bytes(max_caption_chars)
    seen_content = False
    for rec in _split_records(chunks, cap):
        data = rec.data[:-1] if rec.data.endswith(b"\r") and not rec.overflow else rec.data
        if not rec.overflow and not data.strip():
            continue  # blank line
        item = _parse_record(rec, data, max_caption_chars, schemes, source, header_allowed=not seen_content)
        seen_content = True
        if item is not None:
            yield item


def _parse_record(
    rec: _Record,
    data: bytes,
    max_caption_chars: int,
    schemes: tuple[str, ...],
    source: str,
    *,
    header_allowed: bool,
) -> Row | Reject | None:
    """The record's Row or Reject, or None for the header."""
    prefix = f"{source}: " if source else ""

    def reject(reason: Reason, detail: str) -> Reject:
        return Reject(source, rec.line_no, reason, prefix + detail, raw=_raw_text(data))

    if rec.open_quote:
        return reject(Reason.MALFORMED_CSV, "quoted field not closed before end of file")
    if rec.overflow:
        columns = rec.commas + 1
        if columns != 2:
            return reject(Reason.COLUMN_COUNT, f"expected 2 columns, found {columns} (record over limit)")
        if rec.first_comma_at < 0 or rec.first_comma_at > MAX_URL_CHARS + 2:
            return reject(Reason.MALFORMED_URL, f"URL longer than {MAX_URL_CHARS} characters")
        return reject(
            Reason.CAPTION_TOO_LONG,
            f"record is {rec.total_bytes} bytes; caption exceeds {max_caption_chars} characters",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return reject(Reason.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start} of the record")
    try:
        parsed = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        return reject(Reason.MALFORMED_CSV, f"bad quoting: {exc}")
    if len(parsed) != 1:  # a stray quote in an unquoted field, or a bare CR, split the record
        return reject(Reason.MALFORMED_CSV, "stray quote or bare carriage return in an unquoted field")
    fields = parsed[0]
    if len(fields) != 2:
        return reject(Reason.COLUMN_COUNT, f"expected 2 columns, found {len(fields)}")
    url, caption = fields[0].strip(), unicodedata.normalize("NFC", fields[1].strip())
    if header_allowed and tuple(f.strip().lower() for f in fields) == HEADER:
        return None
    try:
        url = validate_url(url, schemes)
    except FetchRejected as exc:
        return reject(exc.reason, exc.detail)
    if not caption:
        return reject(Reason.EMPTY_CAPTION, "caption is empty")
    if len(caption) > max_caption_chars:
        return reject(Reason.CAPTION_TOO_LONG, f"caption has {len(caption)} characters > {max_caption_chars}")
    try:
        check_caption(caption)
    except CaptionRejected as exc:
        return reject(exc.reason, exc.detail)
    return Row(source, rec.line_no, url, caption)
