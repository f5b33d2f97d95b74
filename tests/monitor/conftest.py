"""Fixtures of the monitoring tests: in-process moto behind the Airflow AWS connection, a SQLite ledger."""

from __future__ import annotations

import json

import pytest

BUCKET = "ogiri-monitor-unit"
ENDPOINT = "ogiri-captioner"


@pytest.fixture
def moto_env(tmp_path, monkeypatch):
    """moto (S3, SageMaker, CloudWatch, SNS) with the bucket and alert topic; settings and ledger set."""
    from moto import mock_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(
        {"conn_type": "aws", "login": "testing", "password": "testing", "extra": {"region_name": "us-east-1"}}))
    monkeypatch.setenv("AIRFLOW_CONN_OGIRI_LEDGER", json.dumps({"conn_type": "sqlite",
                                                                 "host": str(tmp_path / "ledger.db")}))
    monkeypatch.setenv("OGIRI_BUCKET", BUCKET)
    monkeypatch.setenv("OGIRI_ENDPOINT_NAME", ENDPOINT)
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="ogiri-test-alerts")["TopicArn"]
        monkeypatch.setenv("OGIRI_ALERT_TOPIC_ARN", topic)
        yield {"s3": s3, "sm": boto3.client("sagemaker", region_name="us-east-1"),
               "cloudwatch": boto3.client("cloudwatch", region_name="us-east-1"), "topic": topic}
