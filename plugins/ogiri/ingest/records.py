"""Idempotent DynamoDB caption records: one item per (image, caption), never rewritten.

Item key: ``ImageKey`` (SHA-256 hex of the normalised JPEG) and ``CaptionId`` (:func:`caption_id`).
Attributes: ``Caption``, ``SourceUrl``, ``S3Uri``, ``Width``, ``Height``, ``Labels`` (list of
``{Name, Confidence}``), ``LabelNames``, ``LabelModelVersion``, ``IngestDate`` (partition date,
hash key of the ``IngestDateIndex`` GSI), ``SourceRef`` (``<csv key>#<record number>``, the row
that created the item) and ``RunKey``.

:class:`RecordWriter` dedupes a batch in memory, reads which keys exist (``BatchGetItem``,
``UnprocessedKeys`` retried), then writes the new ones with ``TransactWriteItems`` (up to 100 puts,
each conditional on ``attribute_not_exists``): batched like ``BatchWriteItem`` but still
conditional, so a concurrent chunk writing the same key can never be overwritten. A cancelled
transaction names the items whose condition failed (with their stored ``SourceRef``); those are
classified and the rest is retried, as are throttled and conflicting transactions (with backoff).

A key that exists already is a *duplicate* unless its ``SourceRef`` is this very row, which means
an earlier attempt of the same partition wrote it: then the row counts as accepted and nothing is
rewritten. So a rerun of a date leaves the table exactly as it was and reports the same counts.
"""

from __future__ import annotations

import hashlib
import random
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ogiri.ingest.backoff import RetriesExhausted, error_code, with_backoff
from ogiri.ingest.labels import ImageLabels

BATCH_GET_MAX = 100
TRANSACT_MAX = 100


def caption_id(caption: str) -> str:
    """Stable id of a caption: SHA-256 (first 32 hex digits) of its NFC form."""
    return hashlib.sha256(unicodedata.normalize("NFC", caption).encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class CaptionRecord:
    """One accepted row, ready to be written."""

    image_key: str
    caption: str
    source_url: str
    s3_uri: str
    ingest_date: str
    source_ref: str
    run_key: str
    labels: ImageLabels
    width: int
    height: int

    @property
    def key(self) -> tuple[str, str]:
        """``(ImageKey, CaptionId)``."""
        return self.image_key, caption_id(self.caption)

    def item(self) -> dict[str, Any]:
        """The typed DynamoDB item."""
        item: dict[str, Any] = {
            "ImageKey": {"S": self.image_key},
            "CaptionId": {"S": caption_id(self.caption)},
            "Caption": {"S": self.caption},
            "SourceUrl": {"S": self.source_url},
            "S3Uri": {"S": self.s3_uri},
            "Width": {"N": str(self.width)},
            "Height": {"N": str(self.height)},
            "Labels": self.labels.to_attribute(),
            "LabelModelVersion": {"S": self.labels.model_version},
            "IngestDate": {"S": self.ingest_date},
            "SourceRef": {"S": self.source_ref},
            "RunKey": {"S": self.run_key},
        }
        if self.labels.names:
            item["LabelNames"] = {"L": [{"S": n} for n in self.labels.names]}
        return item


@dataclass
class WriteOutcome:
    """Indices (into the batch given to :meth:`RecordWriter.write`) by outcome."""

    accepted: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    written: int = 0
    """Items actually put by this call (accepted rows already written earlier are not rewritten)."""


class RecordWriter:
    """Writes caption records to ``table`` idempotently (see the module docstring)."""

    def __init__(self, dynamodb: Any, table: str, *, attempts: int = 12, base_s: float = 0.05):
        self.client = dynamodb
        self.table = table
        self.attempts = attempts
        self.base_s = base_s

    def write(self, records: Sequence[CaptionRecord]) -> WriteOutcome:
        """Write the new records of ``records``; classify each as accepted or duplicate."""
        outcome = WriteOutcome()
        first: dict[tuple[str, str], int] = {}
        for i, rec in enumerate(records):
            if rec.key in first:
                outcome.duplicates.append(i)
            else:
                first[rec.key] = i
        existing = self._existing_refs(list(first))
        to_put: list[int] = []
        for key, i in first.items():
            if key not in existing:
                to_put.append(i)
            else:
                self._classify(records[i], existing[key], i, outcome)
        for start in range(0, len(to_put), TRANSACT_MAX):
            self._put_new(records, to_put[start : start + TRANSACT_MAX], outcome)
        outcome.accepted.sort()
        outcome.duplicates.sort()
        return outcome

    @staticmethod
    def _classify(record: CaptionRecord, stored_ref: str, i: int, outcome: WriteOutcome) -> None:
        (outcome.accepted if stored_ref == record.source_ref else outcome.duplicates).append(i)

    def _existing_refs(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        for start in range(0, len(keys), BATCH_GET_MAX):
            pending: dict[str, Any] = {
                self.table: {
                    "Keys": [
                        {"ImageKey": {"S": ik}, "CaptionId": {"S": cid}}
                        for ik, cid in keys[start : start + BATCH_GET_MAX]
                    ],
                    "ProjectionExpression": "ImageKey, CaptionId, SourceRef",
                    "ConsistentRead": True,
                }
            }
            for attempt in range(self.attempts):
                resp = with_backoff(lambda p=pending: self.client.batch_get_item(RequestItems=p))
                for item in resp.get("Responses", {}).get(self.table, []):
                    found[(item["ImageKey"]["S"], item["CaptionId"]["S"])] = item.get("SourceRef", {}).get(
                        "S", ""
                    )
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    break
                self._pause(attempt)
            else:
                raise RetriesExhausted(
                    f"BatchGetItem on {self.table} left keys unprocessed {self.attempts} times"
                )
        return found

    def _put_new(self, records: Sequence[CaptionRecord], batch: list[int], outcome: WriteOutcome) -> None:
        """Conditionally put ``batch`` in one transaction; retry what a cancellation did not settle."""
        remaining = list(batch)
        for attempt in range(self.attempts):
            if not remaining:
                return
            actions = [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": records[i].item(),
                        "ConditionExpression": "attribute_not_exists(ImageKey)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
                for i in remaining
            ]
            try:
                with_backoff(lambda a=actions: self.client.transact_write_items(TransactItems=a))
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
                settled = set()
                for i, reason in zip(remaining, reasons, strict=False):
                    if reason.get("Code") == "ConditionalCheckFailed":
                        stored = reason.get("Item", {}).get("SourceRef", {}).get("S", "")
                        self._classify(records[i], stored, i, outcome)
                        settled.add(i)
                remaining = [i for i in remaining if i not in settled]
                if not settled:  # conflict/throttling only: back off before the next attempt
                    self._pause(attempt)
                continue
            outcome.accepted.extend(remaining)
            outcome.written += len(remaining)
            return
        raise RetriesExhausted(
            f"TransactWriteItems on {self.table} did not settle after {self.attempts} attempts"
        )

    def _pause(self, attempt: int) -> None:
        time.sleep(random.uniform(0, min(5.0, self.base_s * 2**attempt)))
