"""Fixtures of the labeling tests: in-process moto (at the HTTP layer) and a SQLite ledger."""

from __future__ import annotations

import json
import sys

import pytest
from label_env import BUCKET, LAMBDAS, TABLE
from moto_env import use_inprocess_moto


@pytest.fixture
def moto_aws(monkeypatch):
    """moto with the product bucket and caption table; ``aws_default`` points at it."""
    from moto import mock_aws

    from ogiri import catalog

    use_inprocess_moto(monkeypatch)
    monkeypatch.setenv("OGIRI_BUCKET", BUCKET)
    monkeypatch.setenv("OGIRI_TABLE", TABLE)
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(**catalog.table_definition(TABLE))
        yield {"s3": s3, "dynamodb": dynamodb}


@pytest.fixture
def sqlite_ledger(tmp_path, monkeypatch):
    """A fresh SQLite ledger behind the ``ogiri_ledger`` connection."""
    from ogiri.ledger import Ledger

    monkeypatch.setenv("AIRFLOW_CONN_OGIRI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "l.db")}))
    ledger = Ledger.from_connection()
    ledger.ensure_schema()
    return ledger


@pytest.fixture
def lambdas():
    """The two Lambda modules, imported from include/labeling as the Lambda runtime would."""
    sys.path.insert(0, str(LAMBDAS))
    try:
        import consolidation
        import pre_annotation

        yield pre_annotation, consolidation
    finally:
        sys.path.remove(str(LAMBDAS))


@pytest.fixture
def workforce(aws):
    """Configure the emulator's simulated workforce (``POST /_localaws/workforce``, docs/interfaces.md);
    every configuration is cleared before and after the test."""
    import urllib.request

    def call(method: str, config: dict | None = None) -> None:
        data = json.dumps(config).encode() if config is not None else None
        request = urllib.request.Request(f"{aws.url}/_localaws/workforce", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in (200, 201)

    call("DELETE")
    yield lambda **config: call("POST", config)
    call("DELETE")
