"""Fixtures of the batch-caption tests: in-process moto with the Airflow AWS connection pointing at it."""

from __future__ import annotations

import json

import pytest

BUCKET = "ogiri-mlops"


@pytest.fixture
def moto_aws(monkeypatch):
    """In-process moto (mocked at the HTTP layer); ``aws_default`` has no endpoint_url so boto3 goes to moto."""
    from moto import mock_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"region_name": "us-east-1"},
            }
        ),
    )
    monkeypatch.setenv("OGIRI_BUCKET", BUCKET)
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield {
            "s3": s3,
            "sagemaker": boto3.client("sagemaker", region_name="us-east-1"),
            "dynamodb": boto3.client("dynamodb", region_name="us-east-1"),
        }


@pytest.fixture
def sqlite_ledger(tmp_path, monkeypatch):
    """A fresh SQLite ledger behind the ``ogiri_ledger`` connection."""
    from ogiri.ledger import Ledger

    monkeypatch.setenv(
        "AIRFLOW_CONN_OGIRI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")})
    )
    ledger = Ledger.from_connection()
    ledger.ensure_schema()
    return ledger
