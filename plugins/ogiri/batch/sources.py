"""The images the ingestion recorded for one day, read from the DynamoDB table's ingest-date index.

Items follow :mod:`ogiri.catalog`; one image may have several caption items.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ogiri import catalog
from ogiri.batch.planning import ImageRef, PlanError, parse_s3_location


def check_date(day: str) -> str:
    """``day`` if it is an ISO date ``YYYY-MM-DD``, else :class:`PlanError`."""
    try:
        return dt.date.fromisoformat(day).isoformat()
    except (TypeError, ValueError) as exc:
        raise PlanError(f"ingest date must be YYYY-MM-DD, got {day!r}") from exc


def images_ingested_on(dynamodb: Any, table: str, day: str, bucket: str) -> list[ImageRef]:
    """Every image (once, sorted) whose records carry ingest date ``day``."""
    day = check_date(day)
    refs: set[ImageRef] = set()
    kwargs: dict[str, Any] = {
        "TableName": table,
        "IndexName": catalog.INGEST_DATE_INDEX,
        "KeyConditionExpression": "#d = :d",
        "ExpressionAttributeNames": {"#d": catalog.INGEST_DATE, "#k": catalog.IMAGE_KEY, "#u": catalog.S3_URI},
        "ExpressionAttributeValues": {":d": {"S": day}},
        "ProjectionExpression": "#k, #u",
    }
    while True:
        page = dynamodb.query(**kwargs)
        for item in page.get("Items", []):
            uri = item.get(catalog.S3_URI, {}).get("S")
            sha = item.get(catalog.IMAGE_KEY, {}).get("S")
            if uri:
                refs.add(ImageRef(*parse_s3_location(uri, bucket)))
            elif sha:
                refs.add(ImageRef(bucket, catalog.image_s3_key(sha)))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(refs)
