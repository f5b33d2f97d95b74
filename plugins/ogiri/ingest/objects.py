"""Idempotent S3 writes (a rerun leaves existing objects untouched: same ETag, same LastModified) and
checked batch deletes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from ogiri.ingest.backoff import with_backoff

_EXISTS = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


def put_if_absent(s3: Any, bucket: str, key: str, body: bytes, content_type: str) -> bool:
    """Create ``key`` unless it exists (``If-None-Match: *``). Returns True when this call created it.

    Content-addressed keys make "exists" mean "same bytes", so an existing object is never rewritten.
    """
    try:
        with_backoff(
            lambda: s3.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*"
            )
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _EXISTS:
            return False
        raise
    return True


def put_if_changed(s3: Any, bucket: str, key: str, body: bytes, content_type: str) -> bool:
    """Write ``key`` unless it already holds exactly ``body`` (ETag = MD5 of a single-part upload).

    Returns True when written.
    """
    digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
            raise
    else:
        if head.get("ETag", "").strip('"') == digest and head.get("ContentLength") == len(body):
            return False
    with_backoff(lambda: s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type))
    return True


def read_object(s3: Any, bucket: str, key: str) -> bytes:
    """The whole body of ``s3://bucket/key``."""
    return with_backoff(lambda: s3.get_object(Bucket=bucket, Key=key))["Body"].read()


def delete_keys(s3: Any, bucket: str, keys: Iterable[str]) -> int:
    """Delete ``keys`` (``DeleteObjects``, 1000 a call); returns how many. Raises ``RuntimeError`` naming
    the first failures when S3 reports per-key errors (which it does in a 200 response)."""
    keys = list(keys)
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        errors = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        ).get("Errors", [])
        if errors:
            shown = "; ".join(f"{e.get('Key')}: {e.get('Code')} {e.get('Message', '')}".strip() for e in errors[:5])
            raise RuntimeError(f"could not delete {len(errors)} object(s) from s3://{bucket}: {shown}")
    return len(keys)
