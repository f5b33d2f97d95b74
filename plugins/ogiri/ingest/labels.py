"""Rekognition ``DetectLabels`` under a client-side rate limit, with backoff on throttling.

Images already labelled are not sent again: :func:`known_labels` finds the labels stored on any
DynamoDB record of the same ``ImageKey`` (the content hash), which the pipeline checks before
calling :meth:`Labeler.detect` for an image that was already in S3.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ogiri import catalog
from ogiri.backoff import TokenBucket, with_backoff
from ogiri.catalog import ImageLabels

log = logging.getLogger(__name__)

MAX_LABELS = 10
#: Chunk tasks of one run that may run at once (``ingest_chunk``'s ``max_active_tis_per_dagrun``).
MAX_CHUNKS_AT_ONCE = 4


def chunk_tps(run_tps: float, chunks: int, at_once: int = MAX_CHUNKS_AT_ONCE) -> float:
    """One chunk task's share of a run's ``DetectLabels`` budget of ``run_tps`` calls/s.

    The run's chunk tasks run side by side (on one or many workers), each with its own client-side
    limit: splitting the budget over the chunk tasks that can run at once keeps the whole run within
    ``run_tps``. ``0`` stays unlimited.
    """
    if run_tps <= 0:
        return 0.0
    return run_tps / max(1, min(int(chunks), at_once))


class Labeler:
    """Calls ``DetectLabels`` on S3 objects at most ``tps`` times per second (all threads together).

    Every attempt, retries included, takes a rate-limit token; throttling errors are retried with
    capped exponential backoff up to ``attempts`` times. Counters: ``calls`` (requests sent),
    ``throttled`` (requests refused with a throttling error), ``labelled`` (images labelled).
    """

    def __init__(
        self,
        rekognition: Any,
        *,
        tps: float,
        min_confidence: float,
        max_labels: int = MAX_LABELS,
        attempts: int = 10,
        limiter: TokenBucket | None = None,
    ):
        if not 0 <= min_confidence <= 100:
            raise ValueError(f"min_confidence must be within 0-100, got {min_confidence}")
        self.client = rekognition
        self.min_confidence = float(min_confidence)
        self.max_labels = max_labels
        self.attempts = attempts
        self.limiter = limiter or TokenBucket(tps)
        self.calls = self.throttled = self.labelled = 0
        self._lock = threading.Lock()

    def _call(self, bucket: str, key: str) -> dict[str, Any]:
        self.limiter.acquire()
        with self._lock:
            self.calls += 1
        return self.client.detect_labels(
            Image={"S3Object": {"Bucket": bucket, "Name": key}},
            MaxLabels=self.max_labels,
            MinConfidence=self.min_confidence,
        )

    def _on_retry(self, attempt: int, exc: BaseException) -> None:
        with self._lock:
            self.throttled += 1
        log.debug("DetectLabels throttled (attempt %d): %s", attempt, exc)

    def detect(self, bucket: str, key: str) -> ImageLabels:
        """Labels of ``s3://bucket/key`` (at most ``max_labels``, confidence >= ``min_confidence``)."""
        response = with_backoff(
            lambda: self._call(bucket, key), attempts=self.attempts, on_retry=self._on_retry
        )
        labels = tuple(
            (str(label["Name"]), float(label["Confidence"]))
            for label in response.get("Labels", [])
            if float(label.get("Confidence", 0.0)) >= self.min_confidence
        )[: self.max_labels]
        with self._lock:
            self.labelled += 1
        return ImageLabels(labels=labels, model_version=str(response.get("LabelModelVersion", "")))


def known_labels(dynamodb: Any, table: str, image_key: str) -> ImageLabels | None:
    """Labels already stored for ``image_key`` on any of its caption records, or None."""
    response = with_backoff(
        lambda: dynamodb.query(
            TableName=table,
            KeyConditionExpression="#k = :k",
            ExpressionAttributeNames={"#k": catalog.IMAGE_KEY},
            ExpressionAttributeValues={":k": {"S": image_key}},
            ProjectionExpression=f"{catalog.LABELS}, {catalog.LABEL_MODEL_VERSION}",
            ConsistentRead=True,
            Limit=1,
        )
    )
    for item in response.get("Items", []):
        labels = catalog.labels_of(item)
        if labels is not None:
            return labels
    return None
