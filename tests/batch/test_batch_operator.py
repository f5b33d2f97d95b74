"""The retry-safe transform operator at the wire: moto for create/reuse, the emulator for Failed/InProgress."""

from __future__ import annotations

import pytest

from ogiri.batch.operators import RetrySafeTransformOperator, poll_seconds

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
    moto_aws["s3"].put_object(Bucket=BUCKET, Key="in/part-00000.jsonl", Body=b'{"id": "a", "s3_uri": "s3://b/a"}\n')
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


def test_poll_seconds_from_argument_environment_or_default(monkeypatch):
    monkeypatch.delenv("OGIRI_SAGEMAKER_POLL_SECONDS", raising=False)
    assert poll_seconds() == 30
    assert poll_seconds(5) == 5
    monkeypatch.setenv("OGIRI_SAGEMAKER_POLL_SECONDS", "2")
    assert poll_seconds() == 2
    monkeypatch.setenv("OGIRI_SAGEMAKER_POLL_SECONDS", "soon")
    with pytest.raises(ValueError, match="not an integer"):
        poll_seconds()
