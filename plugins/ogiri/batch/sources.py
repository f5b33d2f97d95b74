"""The images the ingestion recorded for one day, read from the DynamoDB table's ingest-date index.

Items carry ``ImageKey`` (SHA-256 hex of the normalised JPEG), ``S3Uri`` and ``IngestDate`` (the
partition date, hash key of the ``IngestDateIndex`` GSI); one image may have several caption items.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ogiri.batch.planning import ImageRef, PlanError, parse_s3_location

#: The table's global secondary index on the ingest date, and the attributes we read.
INGEST_DATE_INDEX = "IngestDateIndex"
INGEST_DATE_ATTR = "IngestDate"
IMAGE_KEY_ATTR = "ImageKey"
S3_URI_ATTR = "S3Uri"


def check_date(day: str) -> str:
    """``day`` if it is an ISO date ``YYYY-MM-DD``, else :class:`PlanError`."""
    try:
        return dt.date.fromisoformat(day).isoformat()
    except (TypeError, ValueError) as exc:
        raise PlanError(f"ingest date must be YYYY-MM-DD, got {day!r}") from exc


def content_key(sha256_hex: str) -> str:
    """The content-addressed S3 key of an ingested image: ``images/<sha[:2]>/<sha>.jpg``."""
    return f"images/{sha256_hex[:2]}/{sha256_hex}.jpg"


def images_ingested_on(dynamodb: Any, table: str, day: str, bucket: str) -> list[ImageRef]:
    """Every image (once, sorted) whose records carry ingest date ``day``."""
    day = check_date(day)
    refs: set[ImageRef] = set()
    kwargs: dict[str, Any] = {
        "TableName": table,
        "IndexName": INGEST_DATE_INDEX,
        "KeyConditionExpression": "#d = :d",
        "ExpressionAttributeNames": {"#d": INGEST_DATE_ATTR, "#k": IMAGE_KEY_ATTR, "#u": S3_URI_ATTR},
        "ExpressionAttributeValues": {":d": {"S": day}},
        "ProjectionExpression": "#k, #u",
    }
    while True:
        page = dynamodb.query(**kwargs)
        for item in page.get("Items", []):
            uri = item.get(S3_URI_ATTR, {}).get("S")
            sha = item.get(IMAGE_KEY_ATTR, {}).get("S")
            if uri:
                refs.add(ImageRef(*parse_s3_location(uri, bucket)))
            elif sha:
                refs.add(ImageRef(bucket, content_key(sha)))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(refs)
