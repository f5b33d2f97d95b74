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

from ogiri.aws import put_if_absent, s3_uri
from ogiri.catalog import CaptionItem, ImageLabels
from ogiri.ingest.accounting import ChunkResult
from ogiri.ingest.fetch import FetchRejected, SafeFetcher
from ogiri.ingest.images import DecodeBudget, ImageRejected, normalise_image, return_freed_memory
from ogiri.ingest.labels import Labeler, known_labels
from ogiri.ingest.reasons import Reason, Rejected
from ogiri.ingest.records import RecordWriter
from ogiri.ingest.rows import Reject, Row

log = logging.getLogger(__name__)


@dataclass
class IngestClients:
    """The three clients one ingestion chunk needs (thread-safe; share them across workers)."""

    s3: Any
    dynamodb: Any
    rekognition: Any


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
    #: Pixel memory the chunk's concurrent decodes may hold together (see ``DecodeBudget``).
    decode_memory_bytes: int = 512 * 1024 * 1024


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


@dataclass
class _Shared:
    """What the threads of one chunk share: the fetcher, the labeler, per-image once, decode budget."""

    fetcher: SafeFetcher
    labeler: Labeler
    once: _Once
    budget: DecodeBudget


def _prepare(url: str, job: ChunkJob, clients: IngestClients, shared: _Shared) -> Prepared | Rejected:
    try:
        fetched = shared.fetcher.fetch(url)
    except FetchRejected as exc:
        return exc
    except Exception as exc:  # a fetcher bug must not sink the chunk: reject and keep going
        log.exception("unexpected error fetching %s", url)
        return FetchRejected(Reason.FETCH_ERROR, f"{type(exc).__name__}: {exc}")
    try:
        img = normalise_image(
            fetched.data, max_pixels=job.max_image_pixels, max_side=job.max_image_side, budget=shared.budget
        )
    except ImageRejected as exc:
        return exc
    stored = put_if_absent(clients.s3, job.bucket, img.key, img.jpeg, "image/jpeg")

    def label() -> tuple[ImageLabels, bool]:
        if not stored:
            found = known_labels(clients.dynamodb, job.table, img.sha256)
            if found is not None:
                return found, True
        return shared.labeler.detect(job.bucket, img.key), False

    (labels, reused), _ = shared.once.get(img.sha256, label)
    return Prepared(img.sha256, img.key, img.width, img.height, len(fetched.data), stored, labels, reused)


def _prepare_all(urls: list[str], chunk: int, job: ChunkJob, clients: IngestClients, fetcher: SafeFetcher,
                 labeler: Labeler, progress_every: int) -> dict[str, Prepared | Rejected]:
    """Each distinct URL through :func:`_prepare` on the job's thread pool, progress in the log."""
    prepared: dict[str, Prepared | Rejected] = {}
    return_freed_memory()  # else freed pixels stay in per-thread malloc arenas and the budget is moot
    shared = _Shared(fetcher, labeler, _Once(), DecodeBudget(job.decode_memory_bytes))
    with ThreadPoolExecutor(max_workers=max(1, job.concurrency), thread_name_prefix="ogiri-ingest") as pool:
        futures = {url: pool.submit(_prepare, url, job, clients, shared) for url in urls}
        for n, (url, fut) in enumerate(futures.items(), 1):
            prepared[url] = fut.result()  # AWS failures after retries propagate: the chunk fails
            if progress_every and n % progress_every == 0:
                log.info("chunk %d: %d/%d distinct URLs prepared", chunk, n, len(urls))
    log.info("chunk %d: decodes held at most %.2f of %.0f MiB of pixel memory at once", chunk,
             shared.budget.peak / 2**20, shared.budget.limit / 2**20)
    return prepared


def _count_images(result: ChunkResult, prepared: dict[str, Prepared | Rejected]) -> None:
    """Fetch, store and label counters: per URL fetched, per distinct image labelled or reused."""
    seen_images: set[str] = set()
    for p in prepared.values():
        if not isinstance(p, Prepared):
            continue
        result.images_fetched += 1
        result.bytes_fetched += p.fetched_bytes
        result.images_stored += int(p.stored)
        if p.image_key not in seen_images:
            seen_images.add(p.image_key)
            result.labels_reused += int(p.labels_reused)
            result.labels += int(not p.labels_reused)


def _items(rows: list[Row], prepared: dict[str, Prepared | Rejected], job: ChunkJob,
           result: ChunkResult) -> list[CaptionItem]:
    """The caption items of the rows whose image is ready; the others become rejects."""
    items: list[CaptionItem] = []
    for row in rows:
        p = prepared[row.url]
        if isinstance(p, Rejected):
            result.rejects.append(Reject.of(row, p).as_dict())
            continue
        items.append(
            CaptionItem(
                image_key=p.image_key,
                caption=row.caption,
                source_url=row.url,
                s3_uri=s3_uri(job.bucket, p.s3_key),
                ingest_date=job.partition_date,
                source_ref=f"{row.source}#L{row.line}",
                run_key=job.run_key,
                labels=p.labels,
                width=p.width,
                height=p.height,
            )
        )
    return items


def process_chunk(
    entries: Sequence[Row | Reject],
    *,
    chunk: int,
    job: ChunkJob,
    clients: IngestClients,
    fetcher: SafeFetcher,
    labeler: Labeler,
    progress_every: int = 100,
) -> ChunkResult:
    """Ingest one staged chunk (rows and parse rejects, see :mod:`ogiri.ingest.rows`); returns its counts."""
    started = time.monotonic()
    result = ChunkResult(chunk=chunk, rows_in=len(entries))
    rows = [e for e in entries if isinstance(e, Row)]
    result.rejects.extend(e.as_dict() for e in entries if isinstance(e, Reject))
    urls = list(dict.fromkeys(row.url for row in rows))
    prepared = _prepare_all(urls, chunk, job, clients, fetcher, labeler, progress_every)
    _count_images(result, prepared)
    outcome = RecordWriter(clients.dynamodb, job.table).write(_items(rows, prepared, job, result))
    result.accepted = len(outcome.accepted)
    result.duplicates = len(outcome.duplicates)
    result.rejects.sort(key=lambda r: (r["source"], r["line"]))
    result.check()
    log.info("chunk %d: %s written=%d in %.2fs", chunk, result.log_counts(), outcome.written,
             time.monotonic() - started)
    return result
