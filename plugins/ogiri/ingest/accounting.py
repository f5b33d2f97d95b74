"""Counting every row exactly once: per-chunk results, the run summary, and the rejects file.

Invariant (checked per chunk and for the run): ``rows_in == accepted + duplicates + rejected``.
Rejects go to ``rejects/dt=<partition date>/<run name>.jsonl``, one JSON object per rejected row:
``{"source", "line", "reason", "detail", "image_url", "caption", "raw"}`` (long fields clipped;
``raw`` is the record text for rows refused while parsing, else null).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

#: The per-chunk counters that add up into a run's summary (and its ledger row), defined once.
COUNTERS = ("rows_in", "accepted", "duplicates", "images_fetched", "bytes_fetched", "images_stored", "labels",
            "labels_reused")


class AccountingError(RuntimeError):
    """Rows went missing or were counted twice; the run must not be published."""


def rejects_key(partition_date: str, run_name: str) -> str:
    """``rejects/dt=<date>/<run name>.jsonl``."""
    return f"rejects/dt={partition_date}/{run_name}.jsonl"


@dataclass
class ChunkResult:
    """What one chunk did. ``rejects`` holds :meth:`~ogiri.ingest.rows.Reject.as_dict` dicts in source order."""

    chunk: int
    rows_in: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)
    images_fetched: int = 0
    bytes_fetched: int = 0
    images_stored: int = 0
    labels: int = 0
    labels_reused: int = 0

    @property
    def rejected(self) -> int:
        """Rejected rows."""
        return len(self.rejects)

    def rejected_by_reason(self) -> dict[str, int]:
        """Reject counts keyed by reason, sorted by reason."""
        return dict(sorted(Counter(r["reason"] for r in self.rejects).items()))

    def check(self) -> None:
        """Raise :class:`AccountingError` unless every row was counted exactly once."""
        total = self.accepted + self.duplicates + self.rejected
        if self.rows_in != total:
            raise AccountingError(
                f"chunk {self.chunk}: rows_in={self.rows_in} but accepted={self.accepted} + "
                f"duplicates={self.duplicates} + rejected={self.rejected} = {total}"
            )

    def log_counts(self) -> str:
        """The counters as ``name=value`` pairs for the task log."""
        counts = {name: getattr(self, name) for name in COUNTERS}
        counts["rejected"] = self.rejected
        return " ".join(f"{k}={v}" for k, v in counts.items()) + f" {self.rejected_by_reason()}"

    def counts(self) -> dict[str, Any]:
        """Counts only (small enough for XCom); the rejects themselves stay in S3."""
        d = {k: v for k, v in asdict(self).items() if k != "rejects"}
        d["rejected"] = self.rejected
        d["rejected_by_reason"] = self.rejected_by_reason()
        return d

    def to_json(self) -> bytes:
        """Serialised result (staged in S3 for the reconcile step)."""
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> ChunkResult:
        """Inverse of :meth:`to_json`."""
        return cls(**json.loads(data))


@dataclass
class RunSummary:
    """Totals of one run (one partition)."""

    partition_date: str
    chunks: int = 0
    rows_in: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    images_fetched: int = 0
    bytes_fetched: int = 0
    images_stored: int = 0
    labels: int = 0
    labels_reused: int = 0
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (XCom, logs, Asset event extra)."""
        return asdict(self)

    def log_lines(self) -> list[str]:
        """Human-readable summary for the task log."""
        reasons = ", ".join(f"{k}={v}" for k, v in self.rejected_by_reason.items()) or "none"
        return [
            f"partition {self.partition_date}: {self.chunks} chunk(s), {self.rows_in} rows in",
            f"accepted={self.accepted} duplicates={self.duplicates} rejected={self.rejected} ({reasons})",
            f"images fetched={self.images_fetched} ({self.bytes_fetched} bytes), stored new={self.images_stored}",
            f"labels: DetectLabels={self.labels} reused={self.labels_reused}; elapsed {self.elapsed_s:.1f}s",
        ]


def summarize(partition_date: str, results: Iterable[ChunkResult], elapsed_s: float = 0.0) -> RunSummary:
    """Add up chunk results; raise :class:`AccountingError` if any row is unaccounted for."""
    summary = RunSummary(partition_date=partition_date, elapsed_s=round(elapsed_s, 3))
    reasons: Counter[str] = Counter()
    for result in results:
        result.check()
        summary.chunks += 1
        for name in COUNTERS:
            setattr(summary, name, getattr(summary, name) + getattr(result, name))
        summary.rejected += result.rejected
        reasons.update(result.rejected_by_reason())
    summary.rejected_by_reason = dict(sorted(reasons.items()))
    if summary.rows_in != summary.accepted + summary.duplicates + summary.rejected:
        raise AccountingError(f"run totals do not add up: {summary}")
    return summary


def rejects_jsonl(results: Iterable[ChunkResult]) -> bytes:
    """All rejects of a run as JSON Lines, ordered by (source, line) so reruns write identical bytes."""
    rows = [r for result in results for r in result.rejects]
    rows.sort(key=lambda r: (r["source"], r["line"]))
    return b"".join(json.dumps(r, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n" for r in rows)
