"""Idempotent DynamoDB caption records: one item per (image, caption); retries and reruns rewrite nothing.

Items follow :mod:`ogiri.catalog` (:class:`~ogiri.catalog.CaptionItem`).

:class:`RecordWriter` dedupes a batch in memory, reads which keys exist (``BatchGetItem``), writes
only the new ones (``BatchWriteItem``, 25 per call, ``UnprocessedItems`` retried with backoff),
then reads the written keys back: a key whose stored ``SourceRef`` is not this row's was written by
someone else meanwhile, and this row counts as a duplicate.

A key that exists already is a *duplicate* unless its ``SourceRef`` is this very row, which means
an earlier attempt of the same partition wrote it: then the row counts as accepted and nothing is
rewritten. So a retry or a rerun of a date leaves the table exactly as it was.

Known limit (the price of batching, ``BatchWriteItem`` has no conditions): when two writers put the
same new (image, caption) at the same moment, both pass the existence check, the later put
replaces the earlier one (same image, same caption and labels; ``SourceRef``/``SourceUrl`` of the
later row), and if the earlier writer read back before the later put, both rows count as accepted.
Within one chunk this cannot happen (rows are deduplicated first); it needs identical content in
two chunks processed at the same instant.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ogiri import catalog
from ogiri.backoff import RetriesExhausted, with_backoff
from ogiri.catalog import CaptionItem

BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25


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

    def write(self, records: Sequence[CaptionItem]) -> WriteOutcome:
        """Write the new records of ``records``; classify each as accepted or duplicate."""
        outcome = WriteOutcome()
        groups: dict[tuple[str, str], list[int]] = {}
        for i, rec in enumerate(records):
            groups.setdefault(rec.key, []).append(i)
        existing = self._existing_refs(list(groups))
        to_put: list[int] = []
        for key, members in groups.items():
            if key not in existing:  # new: the first row of the group is written, the rest are duplicates
                to_put.append(members[0])
                outcome.duplicates.extend(members[1:])
            else:  # stored already: only the row that wrote it (an earlier attempt) counts as accepted
                for i in members:
                    self._classify(records[i], existing[key], i, outcome)
        for start in range(0, len(to_put), BATCH_WRITE_MAX):
            self._batch_put([records[i].item() for i in to_put[start : start + BATCH_WRITE_MAX]])
        stored = self._existing_refs([records[i].key for i in to_put])
        for i in to_put:
            self._classify(records[i], stored.get(records[i].key, ""), i, outcome)
        outcome.written = len(to_put)
        outcome.accepted.sort()
        outcome.duplicates.sort()
        return outcome

    @staticmethod
    def _classify(record: CaptionItem, stored_ref: str, i: int, outcome: WriteOutcome) -> None:
        (outcome.accepted if stored_ref == record.source_ref else outcome.duplicates).append(i)

    def _existing_refs(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        for start in range(0, len(keys), BATCH_GET_MAX):
            pending: dict[str, Any] = {
                self.table: {
                    "Keys": [catalog.key_of(key) for key in keys[start : start + BATCH_GET_MAX]],
                    "ProjectionExpression": f"{catalog.IMAGE_KEY}, {catalog.CAPTION_ID}, {catalog.SOURCE_REF}",
                    "ConsistentRead": True,
                }
            }
            for attempt in range(self.attempts):
                resp = with_backoff(lambda p=pending: self.client.batch_get_item(RequestItems=p))
                for item in resp.get("Responses", {}).get(self.table, []):
                    key = (item[catalog.IMAGE_KEY]["S"], item[catalog.CAPTION_ID]["S"])
                    found[key] = item.get(catalog.SOURCE_REF, {}).get("S", "")
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    break
                self._pause(attempt)
            else:
                raise RetriesExhausted(
                    f"BatchGetItem on {self.table} left keys unprocessed {self.attempts} times"
                )
        return found

    def _batch_put(self, items: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self.table: [{"PutRequest": {"Item": item}} for item in items]}
        for attempt in range(self.attempts):
            resp = with_backoff(lambda p=pending: self.client.batch_write_item(RequestItems=p))
            pending = resp.get("UnprocessedItems") or {}
            if not pending:
                return
            self._pause(attempt)
        raise RetriesExhausted(f"BatchWriteItem on {self.table} left items unprocessed {self.attempts} times")

    def _pause(self, attempt: int) -> None:
        time.sleep(random.uniform(0, min(5.0, self.base_s * 2**attempt)))
