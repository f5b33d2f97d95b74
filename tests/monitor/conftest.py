"""Fixtures of the monitoring tests: in-process moto behind the Airflow AWS connection, a SQLite ledger."""

from __future__ import annotations

import pytest
from moto_env import use_inprocess_moto

BUCKET = "ogiri-monitor-unit"
ENDPOINT = "ogiri-captioner"


@pytest.fixture
def moto_env(tmp_path, monkeypatch):
    """moto (S3, SageMaker, CloudWatch, SNS) with the bucket and alert topic; settings and ledger set."""
    from moto import mock_aws

    use_inprocess_moto(monkeypatch, tmp_path / "ledger.db")
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
