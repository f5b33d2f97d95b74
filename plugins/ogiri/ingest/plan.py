"""Which day to ingest, where its CSVs are, and how its rows are split into chunks.

The partition of a run is the UTC day **before** its logical date (the nightly cron run at 02:00
on 2026-01-02 ingests ``landing/dt=2026-01-01/``), unless the run's ``partition_date`` param names
one. :func:`stage_chunks` parses every CSV of the partition once, streaming, and writes the parsed
rows (and parse-time rejects) as JSON Lines chunks of at most ``chunk_rows`` rows under
``staging/ingest/dt=<date>/<run name>/``; each mapped task then reads only its own chunk. Chunks
keep source order, and the same input always gives byte-identical chunk files. Memory and open
files stay flat in the number of rows: rows stream to a spool file on disk, which is split into
the chunk files in passes of at most :data:`MAX_OPEN_PARTS` open files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ogiri.aws import delete_keys, put_if_changed
from ogiri.ingest.csv_rows import iter_rows
from ogiri.ingest.fetch import DEFAULT_SCHEMES
from ogiri.ingest.rows import Reject, Row, from_staged, to_staged
from ogiri.runs import InvalidParam, previous_day

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def partition_date_for(
    logical_date: datetime | None, run_after: datetime | None = None, override: str = ""
) -> str:
    """``override`` if given (``YYYY-MM-DD``), else the UTC day before the logical date (or ``run_after``)."""
    if override:
        override = override.strip()
        if not _DATE.match(override):
            raise InvalidParam("partition_date", override, "not a date in the form YYYY-MM-DD")
        try:
            date.fromisoformat(override)  # 2026-02-30, 2026-13-45
        except ValueError as exc:
            raise InvalidParam("partition_date", override, f"not a calendar date ({exc})") from None
        return override
    when = logical_date or run_after
    if when is None:
        raise ValueError("a run needs a logical date, run_after or a partition_date param")
    return previous_day(when)


def landing_prefix(partition_date: str) -> str:
    """``landing/dt=<date>/``."""
    return f"landing/dt={partition_date}/"


def landing_glob(bucket: str, partition_date: str) -> str:
    """The S3 sensor's wildcard key: ``s3://<bucket>/landing/dt=<date>/*.csv``."""
    return f"s3://{bucket}/{landing_prefix(partition_date)}*.csv"


def staging_prefix(partition_date: str, run_name: str) -> str:
    """Where one run stages its chunks and chunk results (deleted when the run is reconciled)."""
    return f"staging/ingest/dt={partition_date}/{run_name}/"


def run_name(run_key: str) -> str:
    """A file-name-safe name for a run key (``ogiri_ingest:2026-01-01`` -> ``ogiri_ingest_2026-01-01``)."""
    return _UNSAFE.sub("_", run_key).strip("_") or "run"


def list_landing_csvs(s3: Any, bucket: str, partition_date: str) -> list[str]:
    """Keys ending in ``.csv`` under the partition's landing prefix, sorted."""
    keys: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=landing_prefix(partition_date)):
        keys.extend(obj["Key"] for obj in page.get("Contents", []) if obj["Key"].lower().endswith(".csv"))
    return sorted(keys)


@dataclass(frozen=True)
class ChunkRef:
    """One mapped task's input: chunk number, its staging key and how many rows it holds."""

    index: int
    key: str
    rows: int

    def as_dict(self) -> dict[str, Any]:
        """For XCom / ``.expand()``."""
        return {"index": self.index, "key": self.key, "rows": self.rows}


def iter_entries(
    s3: Any, bucket: str, keys: Iterable[str], *, max_caption_chars: int, allowed_schemes=DEFAULT_SCHEMES
) -> Iterator[dict[str, Any]]:
    """Stream every CSV of ``keys`` through :func:`iter_rows`; yield staged entries in source order."""
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            for item in iter_rows(
                body.iter_chunks(1 << 16),
                max_caption_chars=max_caption_chars,
                source=key,
                allowed_schemes=allowed_schemes,
            ):
                yield to_staged(item)
        finally:
            body.close()


#: Chunk part files one staging pass holds open at once (a partition of many chunks is split in
#: several passes over the spool, so the open files do not grow with the number of rows).
MAX_OPEN_PARTS = 256


def _placement(entry: dict[str, Any]) -> int:
    """The 64-bit hash that places an entry (its URL; a parse reject by its position)."""
    basis = entry.get("url") or f"{entry['source']}#{entry['line']}"
    return int.from_bytes(hashlib.sha256(basis.encode("utf-8")).digest()[:8], "big")


def chunk_of(entry: dict[str, Any], chunks: int) -> int:
    """Which of ``chunks`` chunks an entry belongs to (by its URL; parse rejects by their position)."""
    return _placement(entry) % chunks


def _spool_entries(entries: Iterable[dict[str, Any]], spool: Path) -> int:
    """Write each entry as ``<placement hex>\t<JSON>\n``; returns how many."""
    total = 0
    with spool.open("wb") as out:
        for entry in entries:
            line = json.dumps(entry, ensure_ascii=False, sort_keys=True).encode("utf-8")
            out.write(b"%016x\t%s\n" % (_placement(entry), line))
            total += 1
    return total


def _split_spool(spool: Path, tmp: Path, n_chunks: int) -> tuple[list[Path], list[int]]:
    """Split the spool into ``n_chunks`` part files (source order kept in each), at most
    :data:`MAX_OPEN_PARTS` open at once; returns the parts and their row counts."""
    parts = [tmp / f"part-{i:05d}.jsonl" for i in range(n_chunks)]
    counts = [0] * n_chunks
    for first in range(0, n_chunks, MAX_OPEN_PARTS):
        with contextlib.ExitStack() as stack:
            files = {i: stack.enter_context(parts[i].open("wb"))
                     for i in range(first, min(n_chunks, first + MAX_OPEN_PARTS))}
            with spool.open("rb") as lines:
                for line in lines:
                    i = int(line[:16], 16) % n_chunks
                    if i in files:
                        files[i].write(line[17:])
                        counts[i] += 1
    return parts, counts


def stage_chunks(
    s3: Any,
    bucket: str,
    partition_date: str,
    run: str,
    *,
    chunk_rows: int,
    max_caption_chars: int,
    allowed_schemes=DEFAULT_SCHEMES,
) -> list[ChunkRef]:
    """Parse the partition's CSVs into staged chunks; always at least one (possibly empty) chunk."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    keys = list_landing_csvs(s3, bucket, partition_date)
    prefix = staging_prefix(partition_date, run)
    with tempfile.TemporaryDirectory(prefix="ogiri-stage-") as tmp:
        spool = Path(tmp) / "entries.spool"
        total = _spool_entries(
            iter_entries(s3, bucket, keys, max_caption_chars=max_caption_chars, allowed_schemes=allowed_schemes),
            spool,
        )
        n_chunks = max(1, -(-total // chunk_rows))
        parts, counts = _split_spool(spool, Path(tmp), n_chunks)
        refs: list[ChunkRef] = []
        for part, rows in zip(parts, counts, strict=True):
            if rows == 0 and (refs or total):
                continue
            key = f"{prefix}chunk-{len(refs):05d}.jsonl"
            put_if_changed(s3, bucket, key, part.read_bytes(), "application/x-ndjson")
            refs.append(ChunkRef(len(refs), key, rows))
    return refs


def read_chunk(s3: Any, bucket: str, key: str) -> list[Row | Reject]:
    """The rows and parse rejects of one staged chunk (split on ``\n`` bytes only: captions may hold U+2028, U+0085)."""
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return [from_staged(json.loads(line)) for line in data.split(b"\n") if line.strip()]


def delete_prefix(s3: Any, bucket: str, prefix: str) -> int:
    """Delete every object under ``prefix``; returns how many."""
    deleted = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        deleted += delete_keys(s3, bucket, [o["Key"] for o in page.get("Contents", [])])
    return deleted
