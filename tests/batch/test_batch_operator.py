"""The retry-safe transform operator at the wire: moto for create/reuse, the emulator for Failed/InProgress."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ogiri.batch.operators import RetrySafeTransformOperator, poll_seconds

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "emulator" / "fixtures"))
from handler_models import register_handler_model  # noqa: E402
from sm_helpers import make_role  # noqa: E402

BUCKET = "ogiri-mlops"


def config(name: str, model: str = "m1") -> dict:
    return {
        "TransformJobName": name,
        "ModelName": model,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/in/"}},
            "ContentType": "application/jsonlines",
            "SplitType": "None",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/out/", "Accept": "application/jsonlines"},
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    }


def operator(name: str, **kwargs) -> RetrySafeTransformOperator:
    kwargs.setdefault("deferrable", False)
    return RetrySafeTransformOperator(
        task_id="caption_set", config=config(name), check_interval=1, do_xcom_push=False, **kwargs
    )


class CallRecorder:
    """Counts the SageMaker API calls an operator's boto3 client makes (botocore event hook)."""

    def __init__(self, op: RetrySafeTransformOperator):
        self.calls: list[str] = []
        op.hook.conn.meta.events.register("before-call.sagemaker.*", self._record)

    def _record(self, model, **_):
        self.calls.append(model.name)

    def count(self, operation: str) -> int:
        return self.calls.count(operation)


def test_absent_job_is_created_once_and_a_retry_reuses_the_completed_job(moto_aws):
    moto_aws["s3"].put_object(
        Bucket=BUCKET, Key="in/part-00000.jsonl", Body=b'{"id": "a", "s3_uri": "s3://b/a"}\n'
    )
    first = operator("ogiri-batch-run-1-set-000")
    rec = CallRecorder(first)
    result = first.execute({})
    assert rec.count("CreateTransformJob") == 1
    assert result["Transform"]["TransformJobName"] == "ogiri-batch-run-1-set-000"

    retry = operator("ogiri-batch-run-1-set-000")  # a retry builds a fresh operator instance
    rec = CallRecorder(retry)
    again = retry.execute({})
    assert rec.count("CreateTransformJob") == 0
    assert rec.count("DescribeTransformJob") >= 1
    assert again["Transform"]["TransformJobStatus"] == "Completed"
    assert again["Transform"]["TransformJobArn"] == result["Transform"]["TransformJobArn"]
    names = moto_aws["sagemaker"].list_transform_jobs()["TransformJobSummaries"]
    assert [j["TransformJobName"] for j in names] == ["ogiri-batch-run-1-set-000"]


def test_a_model_section_is_refused(moto_aws):
    op = RetrySafeTransformOperator(
        task_id="t", config={"Model": {}, "Transform": config("x")}, check_interval=1, do_xcom_push=False
    )
    with pytest.raises(ValueError, match="no Model section"):
        op.execute({})


def test_a_job_failing_while_deferred_fails_the_task_without_retries():
    from airflow.sdk.exceptions import AirflowFailException

    op = operator("bt-x")
    with pytest.raises(AirflowFailException, match="bt-x ended failed: ClientError: boom"):
        op.execute_complete({}, {"status": "failed", "job_name": "bt-x", "message": "ClientError: boom"})


def test_poll_seconds_from_argument_environment_or_default(monkeypatch):
    monkeypatch.delenv("OGIRI_SAGEMAKER_POLL_SECONDS", raising=False)
    assert poll_seconds() == 30
    assert poll_seconds(5) == 5
    monkeypatch.setenv("OGIRI_SAGEMAKER_POLL_SECONDS", "2")
    assert poll_seconds() == 2
    monkeypatch.setenv("OGIRI_SAGEMAKER_POLL_SECONDS", "soon")
    with pytest.raises(ValueError, match="not an integer"):
        poll_seconds()


# -- against the emulator: jobs that really run, fail, or are still running on retry ---------------


@pytest.fixture
def emu(aws):
    """The emulator with the bucket, one input file and models 'ok', 'slow' and 'broken'."""
    s3, sm = aws.client("s3"), aws.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    make_role(aws.client("iam"))  # the models' execution role, which SageMaker must be able to assume
    s3.put_object(Bucket=BUCKET, Key="in/part-00000.jsonl", Body=b'{"id": "a"}\n{"id": "b"}\n')
    for name, behaviour in {"ok": {}, "slow": {"delay": 3}, "broken": {"broken": True}}.items():
        register_handler_model(s3, sm, BUCKET, name, **behaviour)
    return s3, sm


def emu_operator(name: str, model: str, **kwargs) -> RetrySafeTransformOperator:
    kwargs.setdefault("deferrable", False)
    return RetrySafeTransformOperator(
        task_id="caption_set", config=config(name, model), check_interval=1, do_xcom_push=False, **kwargs
    )


def wait_for(sm, name: str, until=("Completed", "Failed", "Stopped")) -> dict:
    import time

    for _ in range(600):
        desc = sm.describe_transform_job(TransformJobName=name)
        if desc["TransformJobStatus"] in until:
            return desc
        time.sleep(0.1)
    raise AssertionError(f"{name} still {desc['TransformJobStatus']}")


def test_a_retry_of_a_failed_job_fails_loudly_without_creating_another(emu):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    s3, sm = emu
    first = emu_operator("bt-broken", "broken")
    with pytest.raises(AirflowException, match="weights are corrupt"):
        first.execute({})  # the first attempt starts the job and sees it fail
    retry = emu_operator("bt-broken", "broken")
    rec = CallRecorder(retry)
    with pytest.raises(AirflowFailException, match=r"bt-broken already ended Failed: .*weights are corrupt"):
        retry.execute({})
    assert rec.count("CreateTransformJob") == 0
    jobs = sm.list_transform_jobs()["TransformJobSummaries"]
    assert [j["TransformJobName"] for j in jobs] == ["bt-broken"]


def test_a_retry_re_attaches_to_a_running_job_by_deferring_on_it(emu):
    import asyncio

    from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
    from airflow.sdk.exceptions import TaskDeferred

    s3, sm = emu
    sm.create_transform_job(**config("bt-slow", "slow"))  # what the first attempt started before dying
    retry = emu_operator("bt-slow", "slow", deferrable=True)
    rec = CallRecorder(retry)
    with pytest.raises(TaskDeferred) as deferred:
        retry.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, SageMakerTrigger) and trigger.job_name == "bt-slow"
    assert deferred.value.method_name == "execute_complete"

    async def first_event():
        async for event in trigger.run():
            return event

    event = asyncio.run(first_event())
    assert event.payload["status"] == "success"
    result = retry.execute_complete({}, event.payload)
    assert result["Transform"]["TransformJobStatus"] == "Completed"
    assert rec.count("CreateTransformJob") == 0
    out = s3.get_object(Bucket=BUCKET, Key="out/part-00000.jsonl.out")["Body"].read().decode()
    assert [line for line in out.splitlines()] == [
        '{"id": "a", "caption": "c-a", "score": 0.5}',
        '{"id": "b", "caption": "c-b", "score": 0.5}',
    ]


def test_a_non_deferrable_retry_polls_the_running_job_to_completion(emu):
    s3, sm = emu
    sm.create_transform_job(**config("bt-slow2", "slow"))
    retry = emu_operator("bt-slow2", "slow")
    rec = CallRecorder(retry)
    assert retry.execute({})["Transform"]["TransformJobStatus"] == "Completed"
    assert rec.count("CreateTransformJob") == 0
    assert wait_for(sm, "bt-slow2")["TransformJobStatus"] == "Completed"
