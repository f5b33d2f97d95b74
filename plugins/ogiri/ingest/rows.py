"""The one row type and the one reject type of the ingestion, from CSV parse to the rejects file.

* :class:`Row`: a parsed record (``source`` CSV key, ``line`` record number, ``url``, ``caption``).
* :class:`Reject`: a record that is not accepted, with its machine-readable reason. Parse rejects
  carry ``raw`` (the record text); later rejects carry the row's URL and caption.

Both are staged between tasks as JSON (:func:`to_staged` / :func:`from_staged`), and a reject's
:meth:`Reject.as_dict` is its line in ``rejects/dt=<date>/<run>.jsonl`` (long fields clipped).
Code that refuses input raises :class:`~ogiri.ingest.reasons.Rejected` (reason + detail); the
pipeline turns it into a :class:`Reject` of the row with :meth:`Reject.of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ogiri.ingest.reasons import Reason, Rejected

#: Clipping limits of the rejects file (a 1 MB caption must not land in S3 twice).
MAX_URL_CHARS = 2048
MAX_CAPTION_CHARS = 300
MAX_DETAIL_CHARS = 500
MAX_RAW_CHARS = 600


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit] + f"…[{len(text) - limit} more chars]"


@dataclass(frozen=True)
class Row:
    """A syntactically valid record: a URL and a non-empty caption within the limit."""

    source: str
    line: int
    url: str
    caption: str


@dataclass(frozen=True)
class Reject:
    """A record that is not accepted, and why."""

    source: str
    line: int
    reason: Reason
    detail: str = ""
    image_url: str | None = None
    caption: str | None = None
    raw: str | None = None

    @classmethod
    def of(cls, row: Row, rejected: Rejected) -> Reject:
        """The reject of ``row`` for the refusal ``rejected``."""
        return cls(row.source, row.line, rejected.reason, rejected.detail, image_url=row.url, caption=row.caption)

    def as_dict(self) -> dict[str, Any]:
        """Its line in the rejects file: ``{source, line, reason, detail, image_url, caption, raw}``."""
        return {
            "source": self.source,
            "line": self.line,
            "reason": str(self.reason),
            "detail": _clip(self.detail, MAX_DETAIL_CHARS),
            "image_url": _clip(self.image_url, MAX_URL_CHARS),
            "caption": _clip(self.caption, MAX_CAPTION_CHARS),
            "raw": _clip(self.raw, MAX_RAW_CHARS),
        }


def to_staged(item: Row | Reject) -> dict[str, Any]:
    """The staged JSON form of a row or reject (``kind`` tells them apart)."""
    if isinstance(item, Row):
        return {"kind": "row", "source": item.source, "line": item.line, "url": item.url, "caption": item.caption}
    return {"kind": "reject", **item.as_dict()}


def from_staged(data: dict[str, Any]) -> Row | Reject:
    """Inverse of :func:`to_staged`."""
    fields = {k: v for k, v in data.items() if k != "kind"}
    if data.get("kind") == "row":
        return Row(**fields)
    return Reject(**{**fields, "reason": Reason(fields["reason"])})
