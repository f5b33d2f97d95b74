"""Machine-readable reasons for rejecting an ingestion row, and the exception that carries one.

Every reject written to ``rejects/dt=<date>/<run>.jsonl`` uses one of the :class:`Reason` values, so
reports can count rejects by reason. Values are plain lowercase strings (``Reason`` is a ``StrEnum``:
``Reason.TIMEOUT == "timeout"``), stable across releases.
"""

from __future__ import annotations

import re
from enum import StrEnum

#: ``<... object at 0x7f...>``: a repr with a memory address, different in every process.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+(?=>)")


class Reason(StrEnum):
    """Why a row was rejected."""

    # CSV parsing (csv_rows)
    INVALID_UTF8 = "invalid_utf8"
    """The record is not valid UTF-8."""
    COLUMN_COUNT = "column_count"
    """The record does not have exactly two columns (image_url, caption)."""
    MALFORMED_CSV = "malformed_csv"
    """Bad quoting (e.g. text after a closing quote, or a quote never closed at end of file)."""
    EMPTY_CAPTION = "empty_caption"
    CAPTION_TOO_LONG = "caption_too_long"
    # Caption policy (captions)
    CAPTION_CONTROL_CHARACTER = "caption_control_character"
    """NUL or another C0/C1 control character (terminal escapes, newlines) other than tab."""
    CAPTION_BIDI_CONTROL = "caption_bidi_control"
    """A bidi override or isolate (U+202A..U+202E, U+2066..U+2069) that can reorder displayed text."""
    CAPTION_INVISIBLE = "caption_invisible"
    """The caption has no visible character (only zero-width, format or blank characters)."""
    # URL syntax (fetch.validate_url, applied by csv_rows and again by the fetcher)
    SCHEME_NOT_ALLOWED = "scheme_not_allowed"
    MALFORMED_URL = "malformed_url"
    # Fetching (fetch)
    HOST_REFUSED = "host_refused"
    """The host is, or resolves to, a loopback/private/link-local/multicast/reserved/unspecified
    address (checked for the first URL and after every redirect) and is not allow-listed; the
    detail names the port when the host is allow-listed on another port."""
    S3_SOURCE_NOT_ALLOWED = "s3_source_not_allowed"
    """An ``s3://`` row outside ``OGIRI_ALLOWED_S3_SOURCES`` (default: the product bucket's
    ``landing/`` and ``images/``)."""
    DNS_FAILURE = "dns_failure"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    REDIRECT_LOOP = "redirect_loop"
    HTTP_ERROR = "http_error"
    """A non-200 final status; the detail names it (``HTTP 404``)."""
    TIMEOUT = "timeout"
    """The fetch's one deadline (DNS, connect, TLS, status line, headers, body) or a per-read
    timeout ran out; the detail names the phase."""
    TOO_LARGE = "too_large"
    SHORT_READ = "short_read"
    """The body ended before the length the server declared (Content-Length, chunked framing)."""
    CONNECTION_ERROR = "connection_error"
    TLS_ERROR = "tls_error"
    S3_NOT_FOUND = "s3_not_found"
    S3_ERROR = "s3_error"
    """Any other S3 error (access denied, throttling after retries, ...)."""
    FETCH_ERROR = "fetch_error"
    """An unexpected error while fetching (a bug worth reporting); the detail names the exception."""
    # Image validation (images)
    NOT_AN_IMAGE = "not_an_image"
    TRUNCATED_IMAGE = "truncated_image"
    DECOMPRESSION_BOMB = "decompression_bomb"


class Rejected(Exception):  # noqa: N818 - a domain outcome, not an "error" in the program
    """A row's input was refused: ``reason`` (a :class:`Reason`) and a human-readable ``detail``."""

    def __init__(self, reason: Reason, detail: str = ""):
        self.reason = Reason(reason)
        self.detail = stable_detail(detail)
        super().__init__(f"{self.reason}: {detail}" if detail else str(self.reason))

    def as_dict(self) -> dict[str, str]:
        """``{"reason": ..., "detail": ...}`` for a reject record."""
        return {"reason": str(self.reason), "detail": self.detail}


def stable_detail(detail: str) -> str:
    """``detail`` without process-specific object addresses, so a rerun writes identical rejects."""
    return _ADDRESS.sub("", detail)
