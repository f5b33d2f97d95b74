"""Issue 11: the provider-based SageMaker operators, under IAM enforcement, fail a refused call at
once (AccessDenied is an AirflowFailException) instead of retrying it like a transient error."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException

from ogiri.aws import AccessDenied
from ogiri.jobs import ReattachingTrainingOperator, ReusingModelOperator

PARAMS = {"EnvironmentName": "test", "BucketName": "ogiri-test", "TableName": "ogiri-test-captions"}
ROLE = "arn:aws:iam::123456789012:role/ogiri-sagemaker-execution"


@pytest.fixture
def producer_conn(aws, stack, monkeypatch) -> str:
    """An Airflow connection signed by the producer principal (may only land CSVs)."""
    found = stack(PARAMS)
    monkeypatch.setenv("AIRFLOW_CONN_PRODUCER_AWS", json.dumps(aws.aws_connection(keys=found.principals["producer"])))
    return "producer_aws"


def test_a_refused_describe_fails_the_training_task_without_retry(producer_conn):
    op = ReattachingTrainingOperator(
        task_id="train_model",
        config={"TrainingJobName": "ogiri-train-denied", "RoleArn": ROLE},
        aws_conn_id=producer_conn,
        region_name="us-east-1",
        deferrable=False,
        print_log=False,
    )
    with pytest.raises(AccessDenied) as err:
        op.execute({})
    assert isinstance(err.value, AirflowFailException)  # Airflow does not retry it
    assert err.value.response["Error"]["Code"] in {"AccessDeniedException", "AccessDenied"}
    assert "sagemaker:DescribeTrainingJob" in err.value.response["Error"]["Message"]


def test_a_refused_describe_fails_the_model_task_without_retry(producer_conn):
    op = ReusingModelOperator(
        task_id="create_model",
        config={"ModelName": "ogiri-model-denied", "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": "img"}},
        aws_conn_id=producer_conn,
        region_name="us-east-1",
    )
    with pytest.raises(AccessDenied):
        op.execute({})
