"""The retry-safe training/processing operators, against moto at the wire (in-process mock_aws)."""

from __future__ import annotations

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from ogiri.jobs import (
    ReattachingProcessingOperator,
    ReattachingTrainingOperator,
    attempt_name,
)
from ogiri.naming import resource_name, run_key

REGION = "us-east-1"
BUCKET = "ogiri-test"
ROLE = "arn:aws:iam::123456789012:role/ogiri-sagemaker-execution"
JOB = resource_name("train", run_key("ogiri_train", "manual__2026-01-01T00:00:00"))


@pytest.fixture
def sm():
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="datasets/v1/train/train.jsonl", Body=b"{}\n")
        yield boto3.client("sagemaker", region_name=REGION)


def training_config(name: str = JOB) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "img:latest", "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/datasets/v1/train/"}
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


def operator(cls=ReattachingTrainingOperator, config=None, **kwargs):
    kwargs.setdefault("wait_for_completion", True)
    kwargs.setdefault("check_interval", 0)
    return cls(
        task_id="train_model",
        config=config or training_config(),
        aws_conn_id=None,
        region_name=REGION,
        print_log=False,
        **kwargs,
    )


def backend_job(name: str):
    return sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].training_jobs[name]


def job_names(sm) -> list[str]:
    return sorted(j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"])


def test_absent_job_is_created_with_the_deterministic_name(sm):
    result = operator().execute({})
    assert result["Training"]["TrainingJobName"] == JOB
    assert job_names(sm) == [JOB]


def test_retry_of_completed_job_starts_nothing_and_returns_it(sm):
    operator().execute({})
    result = operator().execute({})  # the retry
    assert result["Training"]["TrainingJobStatus"] == "Completed"
    assert result["Training"]["TrainingJobName"] == JOB
    assert job_names(sm) == [JOB]


def test_retry_of_failed_job_fails_loudly_with_reason(sm):
    from airflow.sdk.exceptions import AirflowFailException

    operator().execute({})
    job = backend_job(JOB)
    job.training_job_status = "Failed"
    job.failure_reason = "AlgorithmError: CUDA out of memory"
    with pytest.raises(AirflowFailException, match="CUDA out of memory"):
        operator().execute({})
    assert job_names(sm) == [JOB]


def test_retry_of_stopped_job_fails_too(sm):
    from airflow.sdk.exceptions import AirflowFailException

    operator().execute({})
    backend_job(JOB).training_job_status = "Stopped"
    with pytest.raises(AirflowFailException, match="Stopped"):
        operator().execute({})
    assert job_names(sm) == [JOB]


def test_restart_failed_starts_exactly_one_new_attempt_then_reuses_it(sm):
    operator().execute({})
    backend_job(JOB).training_job_status = "Failed"
    result = operator(restart_failed=True).execute({})
    assert result["Training"]["TrainingJobName"] == attempt_name(JOB, 1)
    operator(restart_failed=True).execute({})  # retry again: r1 is Completed, nothing new
    assert job_names(sm) == sorted([JOB, attempt_name(JOB, 1)])


def test_retry_of_in_progress_job_defers_on_the_same_job(sm):
    from airflow.sdk.exceptions import TaskDeferred

    operator().execute({})
    backend_job(JOB).training_job_status = "InProgress"
    with pytest.raises(TaskDeferred) as deferred:
        operator(deferrable=True).execute({})
    trigger = deferred.value.trigger
    assert trigger.job_name == JOB and trigger.job_type == "Training"
    assert deferred.value.method_name == "execute_complete"
    assert job_names(sm) == [JOB]


def test_retry_of_in_progress_job_polls_until_done_when_not_deferrable(sm):
    operator().execute({})
    job = backend_job(JOB)
    job.training_job_status = "InProgress"
    calls = []
    real_describe = None

    def finishing_describe(name):
        calls.append(name)
        if len(calls) >= 2:
            job.training_job_status = "Completed"
        return real_describe(name)

    op = operator(deferrable=False)
    real_describe = op.hook.describe_training_job
    op.hook.describe_training_job = finishing_describe
    result = op.execute({})
    assert result["Training"]["TrainingJobStatus"] == "Completed"
    assert job_names(sm) == [JOB]


def test_attempt_names_stay_valid():
    long = "x" * 63
    assert attempt_name(long, 0) == long
    assert attempt_name(long, 3).endswith("-r3") and len(attempt_name(long, 3)) == 63


def test_processing_retry_reuses_completed_job(sm):
    name = resource_name("eval", run_key("ogiri_train", "manual__x"))
    config = {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": "img:latest", "ContainerEntrypoint": ["python3", "evaluate.py"]},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 10}
        },
    }
    first = operator(ReattachingProcessingOperator, config=dict(config)).execute({})
    second = operator(ReattachingProcessingOperator, config=dict(config)).execute({})
    assert first["Processing"]["ProcessingJobName"] == second["Processing"]["ProcessingJobName"] == name
    names = [j["ProcessingJobName"] for j in sm.list_processing_jobs()["ProcessingJobSummaries"]]
    assert names == [name]


def test_model_and_endpoint_config_retries_reuse_what_the_first_try_created(sm):
    """A retry after create_model / create_endpoint_config succeeded (e.g. the worker died before the
    task was marked done) reuses the resource instead of failing on "already existing"."""
    from ogiri.jobs import ReusingEndpointConfigOperator, ReusingModelOperator

    model = {
        "ModelName": "ogiri-model-x",
        "PrimaryContainer": {"Image": "img:latest", "ModelDataUrl": f"s3://{BUCKET}/models/model.tar.gz"},
        "ExecutionRoleArn": ROLE,
    }
    endpoint_config = {
        "EndpointConfigName": "ogiri-epc-x",
        "ProductionVariants": [
            {"VariantName": "AllTraffic", "ModelName": "ogiri-model-x", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"}
        ],
    }

    def run(cls, config, task_id):
        """Execute a fresh operator; the result and the SageMaker API calls it sent."""
        op = cls(task_id=task_id, config=dict(config), aws_conn_id=None, region_name=REGION)
        calls: list[str] = []
        op.hook.conn.meta.events.register("before-call.sagemaker.*", lambda model, **_: calls.append(model.name))
        return op.execute({}), calls

    # moto (unlike SageMaker) overwrites on a duplicate Create*, so the test looks at the calls sent.
    first, calls = run(ReusingModelOperator, model, "create_model")
    assert "CreateModel" in calls
    again, calls = run(ReusingModelOperator, model, "create_model")
    assert "CreateModel" not in calls and again["Model"]["ModelArn"] == first["Model"]["ModelArn"]
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["ogiri-model-x"]
    epc, calls = run(ReusingEndpointConfigOperator, endpoint_config, "create_endpoint_config")
    assert "CreateEndpointConfig" in calls
    again, calls = run(ReusingEndpointConfigOperator, endpoint_config, "create_endpoint_config")
    assert "CreateEndpointConfig" not in calls
    assert again["EndpointConfig"]["EndpointConfigArn"] == epc["EndpointConfig"]["EndpointConfigArn"]
