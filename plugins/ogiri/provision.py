"""Create the bucket and the captions table when missing (local mode and tests).

On real AWS the resources come from CloudFormation; these helpers are idempotent and safe there too.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ogiri.aws import error_code
from ogiri.catalog import TABLE_KEY_SCHEMA, table_definition


def ensure_bucket(s3: Any, bucket: str, region: str = "us-east-1") -> bool:
    """Create ``bucket`` if it does not exist. Returns True when it was created."""
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
        return False
    return True


def ensure_table(dynamodb: Any, table: str) -> bool:
    """Create the captions table if missing and wait until it is ACTIVE. Returns True when created.

    An existing table with a different key schema is an error (the message says what differs).
    """
    try:
        desc = dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    else:
        if desc["KeySchema"] != TABLE_KEY_SCHEMA:
            raise ValueError(f"table {table} has key schema {desc['KeySchema']}, expected {TABLE_KEY_SCHEMA}")
        return False
    try:
        dynamodb.create_table(**table_definition(table))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
        return False
    dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return True


def ensure_resources(s3: Any, dynamodb: Any, bucket: str, table: str, region: str = "us-east-1") -> None:
    """Bucket and table, both idempotent."""
    ensure_bucket(s3, bucket, region)
    ensure_table(dynamodb, table)
