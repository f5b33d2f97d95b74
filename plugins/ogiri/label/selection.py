"""Which data objects go to people.

* ``caption``: images of the source dates (DynamoDB ``IngestDateIndex``) with fewer than
  ``min_captions`` captions, fewest first;
* ``rate``: the latest batch-caption run's captions with the lowest scores (ledger ``batch_captions``,
  written by ``ogiri_batch_caption``), plus an audit sample of accepted captions of the source dates,
  drawn at random but deterministically from the run key (same run ⇒ same sample).

Each object is a plain dict (a line of ``objects.jsonl``) with a unique ``id``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ogiri import catalog
from ogiri.naming import short_hash


class SelectionError(ValueError):
    """The selection cannot be made (a bad date)."""


@dataclass(frozen=True)
class Choice:
    """What to select (the run's Params, resolved)."""

    task: str
    max_objects: int
    dates: tuple[str, ...]
    min_captions: int = 2
    audit_fraction: float = 0.0


def check_dates(dates: Iterable[str]) -> tuple[str, ...]:
    """The dates, checked to be ``YYYY-MM-DD``, deduplicated and sorted."""
    out = set()
    for day in dates:
        try:
            out.add(dt.date.fromisoformat(str(day).strip()).isoformat())
        except ValueError as exc:
            raise SelectionError(f"source date must be YYYY-MM-DD, got {day!r}") from exc
    return tuple(sorted(out))


def items_of_dates(dynamodb: Any, table: str, dates: Sequence[str]) -> list[dict[str, Any]]:
    """Every caption item of the ingest dates (plain Python), through the ``IngestDateIndex``."""
    items: list[dict[str, Any]] = []
    for day in dates:
        kwargs: dict[str, Any] = {
            "TableName": table,
            "IndexName": catalog.INGEST_DATE_INDEX,
            "KeyConditionExpression": "#d = :d",
            "ExpressionAttributeNames": {"#d": catalog.INGEST_DATE},
            "ExpressionAttributeValues": {":d": {"S": day}},
        }
        while True:
            page = dynamodb.query(**kwargs)
            items += [catalog.from_typed(i) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return items


def _image_uri(item: dict[str, Any], bucket: str) -> str:
    return item.get(catalog.S3_URI) or f"s3://{bucket}/{catalog.image_s3_key(item[catalog.IMAGE_KEY])}"


def caption_objects(items: Iterable[dict[str, Any]], *, min_captions: int, max_objects: int,
                    bucket: str) -> list[dict[str, Any]]:
    """Images with fewer than ``min_captions`` captions, fewest first then by key, at most ``max_objects``."""
    per_image: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        per_image.setdefault(item[catalog.IMAGE_KEY], []).append(item)
    short = sorted((len(v), k) for k, v in per_image.items() if len(v) < min_captions)
    return [
        {"id": key, "task": "caption", "image_key": key, "source-ref": _image_uri(per_image[key][0], bucket),
         "captions": count}
        for count, key in short[:max_objects]
    ]


def batch_image_uri(image_key: str, bucket: str) -> str:
    """The image of a ``batch_captions`` row: its ``image_key`` is the S3 key in the product bucket
    (``images/ab/<sha>.jpg``) or, for another bucket, the full URI (``ogiri.batch.planning``); a bare
    content hash names an ingested image."""
    if image_key.startswith("s3://"):
        return image_key
    return f"s3://{bucket}/{image_key if '/' in image_key else catalog.image_s3_key(image_key)}"


def rate_object(image_key: str, caption: str, uri: str, origin: str, score: float | None = None,
                model_name: str | None = None) -> dict[str, Any]:
    """One caption to rate; ``origin`` is ``batch`` (a model caption) or ``audit`` (an accepted one)."""
    cid = catalog.caption_id(caption)
    return {"id": f"{image_key}:{cid}", "task": "rate", "image_key": image_key, "caption_id": cid,
            "caption": caption, "source-ref": uri, "origin": origin, "score": score, "model_name": model_name}


def rate_objects(batch_rows: Sequence[dict[str, Any]], items: Sequence[dict[str, Any]], *, choice: Choice,
                 run_key: str, bucket: str) -> list[dict[str, Any]]:
    """The lowest-scored batch captions, then the audit sample, at most ``choice.max_objects`` in all."""
    n_audit = min(len(items), round(choice.max_objects * choice.audit_fraction))
    chosen: dict[str, dict[str, Any]] = {}
    for row in batch_rows:
        if len(chosen) >= choice.max_objects - n_audit:
            break
        obj = rate_object(row["image_key"], row["caption"], batch_image_uri(row["image_key"], bucket), "batch",
                          row.get("score"), row.get("model_name"))
        chosen.setdefault(obj["id"], obj)
    audit = sorted(items, key=lambda i: short_hash(run_key, i[catalog.IMAGE_KEY], i[catalog.CAPTION_ID]))
    for item in audit:
        if len(chosen) >= choice.max_objects:
            break
        obj = rate_object(item[catalog.IMAGE_KEY], item[catalog.CAPTION], _image_uri(item, bucket), "audit")
        chosen.setdefault(obj["id"], obj)
    return list(chosen.values())


def select(choice: Choice, *, dynamodb: Any, table: str, bucket: str, run_key: str,
           batch_rows: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The data objects of a run (see the module docstring)."""
    items = items_of_dates(dynamodb, table, choice.dates)
    if choice.task == "caption":
        return caption_objects(items, min_captions=choice.min_captions, max_objects=choice.max_objects,
                               bucket=bucket)
    return rate_objects(batch_rows, items, choice=choice, run_key=run_key, bucket=bucket)
