"""One chunk of rows through the whole path: fetch → normalise → store → label → record.

Each distinct URL of the chunk is handled once, on a bounded thread pool: fetched with the SSRF-safe
:class:`~ogiri.ingest.fetch.SafeFetcher`, normalised with
:func:`~ogiri.ingest.images.normalise_image`, stored at its content-hash key if not already there,
and labelled (labels of an image already stored are taken from its existing records; an image is
sent to Rekognition at most once per chunk). Then all rows are written with
:class:`~ogiri.ingest.records.RecordWriter`. Bad input becomes a reject with its reason; AWS
errors that survive the retries fail the chunk (Airflow retries it alone, and a retry writes the
same keys).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ogiri.aws import put_if_absent
from ogiri.ingest.accounting import ChunkResult, reject_record
from ogiri.ingest.clients import IngestClients
from ogiri.ingest.fetch import FetchRejected, SafeFetcher
from ogiri.ingest.images import ImageRejected, normalise_image
from ogiri.ingest.labels import ImageLabels, Labeler, known_labels
from ogiri.ingest.reasons import Reason, Rejected
from ogiri.ingest.records import CaptionRecord, RecordWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkJob:
    """Where and how one chunk is ingested."""

    bucket: str
    table: str
    partition_date: str
    run_key: str
    max_image_pixels: int
    max_image_side: int
    concurrency: int = 16


@dataclass(frozen=True)
class Prepared:
    """A URL whose image is stored and labelled."""

    image_key: str  # sha256 hex
    s3_key: str
    width: int
    height: int
    fetched_bytes: int
    stored: bool
    labels: ImageLabels
    labels_reused: bool


class _Once:
    """Compute a value once per key even when several threads ask at the same time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._values: dict[str, Any] = {}

    def get(self, key: str, compute: Callable[[], Any]) -> tuple[Any, bool]:
        """``(value, computed_here)``."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._values:
                return self._values[key], False
            value = compute()
            self._values[key] = value
            return value, True


def _prepare(
    url: str, job: ChunkJob, clients: IngestClients, fetcher: SafeFetcher, labeler: Labeler, once: _Once
) -> Prepared | Rejected:
    try:
        fetched = fetcher.fetch(url)
    except FetchRejected as exc:
        return exc
    except Exception as exc:  # a fetcher bug must not sink the chunk: reject and keep going
        log.exception("unexpected error fetching %s", url)
        return FetchRejected(Reason.FETCH_ERROR, f"{type(exc).__name__}: {exc}")
    try:
        img = normalise_image(fetched.data, max_pixels=job.max_image_pixels, max_side=job.max_image_side)
    except ImageRejected as exc:
        return exc
    stored = put_if_absent(clients.s3, job.bucket, img.key, img.jpeg, "image/jpeg")

    def label() -> tuple[ImageLabels, bool]:
        if not stored:
            found = known_labels(clients.dynamodb, job.table, img.sha256)
            if found is not None:
                return found, True
        return labeler.detect(job.bucket, img.key), False

    (labels, reused), _ = once.get(img.sha256, label)
    return Prepared(img.sha256, img.key, img.width, img.height, len(fetched.data), stored, labels, reused)


def process_chunk(
    entries: Sequence[dict[str, Any]],
    *,
    chunk: int,
    job: ChunkJob,
    clients: IngestClients,
    fetcher: SafeFetcher,
    labeler: Labeler,
    progress_every: int = 100,
) -> ChunkResult:
    """Ingest staged ``entries`` (see :func:`ogiri.ingest.plan.entry_for`); returns the chunk's counts."""
    started = time.monotonic()
    result = ChunkResult(chunk=chunk, rows_in=len(entries))
    rows = [e for e in entries if "reject" not in e]
    for e in entries:
        if "reject" in e:
            r = e["reject"]
            result.rejects.append(
                reject_record(e["source"], e["line"], r["reason"], r["detail"], raw=r.get("raw"))
            )

    urls = list(dict.fromkeys(e["url"] for e in rows))
    prepared: dict[str, Prepared | Rejected] = {}
    once = _Once()
    with ThreadPoolExecutor(max_workers=max(1, job.concurrency), thread_name_prefix="ogiri-ingest") as pool:
        futures = {url: pool.submit(_prepare, url, job, clients, fetcher, labeler, once) for url in urls}
        for n, (url, fut) in enumerate(futures.items(), 1):
            prepared[url] = fut.result()  # AWS failures after retries propagate: the chunk fails
            if progress_every and n % progress_every == 0:
                log.info("chunk %d: %d/%d distinct URLs prepared", chunk, n, len(urls))

    for p in prepared.values():
        if isinstance(p, Prepared):
            result.images_fetched += 1
            result.bytes_fetched += p.fetched_bytes
            result.images_stored += int(p.stored)
    seen_images: set[str] = set()
    for p in prepared.values():
        if isinstance(p, Prepared) and p.image_key not in seen_images:
            seen_images.add(p.image_key)
            if p.labels_reused:
                result.labels_reused += 1
            else:
                result.labels += 1

    records: list[CaptionRecord] = []
    for e in rows:
        p = prepared[e["url"]]
        if isinstance(p, Rejected):
            result.rejects.append(
                reject_record(
                    e["source"], e["line"], p.reason, p.detail, image_url=e["url"], caption=e["caption"]
                )
            )
            continue
        records.append(
            CaptionRecord(
                image_key=p.image_key,
                caption=e["caption"],
                source_url=e["url"],
                s3_uri=f"s3://{job.bucket}/{p.s3_key}",
                ingest_date=job.partition_date,
                source_ref=f"{e['source']}#L{e['line']}",
                run_key=job.run_key,
                labels=p.labels,
                width=p.width,
                height=p.height,
            )
        )
    outcome = RecordWriter(clients.dynamodb, job.table).write(records)
    result.accepted = len(outcome.accepted)
    result.duplicates = len(outcome.duplicates)
    result.rejects.sort(key=lambda r: (r["source"], r["line"]))
    result.check()
    log.info(
        "chunk %d: rows_in=%d accepted=%d duplicates=%d rejected=%d %s images=%d (%d new, %d bytes) "
        "labels=%d reused=%d written=%d in %.2fs",
        chunk,
        result.rows_in,
        result.accepted,
        result.duplicates,
        result.rejected,
        result.rejected_by_reason(),
        result.images_fetched,
        result.images_stored,
        result.bytes_fetched,
        result.labels,
        result.labels_reused,
        outcome.written,
        time.monotonic() - started,
    )
    return result
