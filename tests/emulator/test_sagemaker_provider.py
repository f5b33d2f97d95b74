"""The Amazon provider's SageMaker hook and operator work against the emulator unchanged."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from sm_helpers import ROLE, make_bucket, make_role, model_tarball, training_request, upload_training_inputs  # noqa: E402


@pytest.fixture
def bucket(aws):
    s3 = aws.client("s3")
    name = make_bucket(s3)
    make_role(aws.client("iam"))
    upload_training_inputs(s3, name)
    return name


def test_training_operator_waits_for_completion(bucket):
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

    train = SageMakerTrainingOperator(
        task_id="train",
        config=training_request("op-train", bucket, {"epochs": 2}),
        wait_for_completion=True,
        print_log=False,
        check_interval=1,
        aws_conn_id="aws_default",
    )
    result = train.execute({})
    training = result["Training"]
    assert training["TrainingJobName"] == "op-train"
    assert training["TrainingJobStatus"] == "Completed"
    assert training["ModelArtifacts"]["S3ModelArtifacts"].endswith("/op-train/output/model.tar.gz")

    # A retry of the task finds the job and, with action_if_job_exists="fail", refuses a second one.
    retry = SageMakerTrainingOperator(
        task_id="retry",
        config=training_request("op-train", bucket, {"epochs": 2}),
        action_if_job_exists="fail",
        aws_conn_id="aws_default",
    )
    with pytest.raises(Exception, match="already exists"):
        retry.execute({})


def test_training_operator_raises_on_failed_job(bucket):
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

    crash = SageMakerTrainingOperator(
        task_id="crash",
        config=training_request("op-crash", bucket, {"fail": "exploded"}),
        wait_for_completion=True,
        print_log=False,
        check_interval=1,
        aws_conn_id="aws_default",
    )
    with pytest.raises(Exception, match="ValueError: exploded"):
        crash.execute({})


def test_hook_prints_cloudwatch_logs_of_training_job(bucket, caplog):
    from airflow.providers.amazon.aws.hooks.sagemaker import LogState, SageMakerHook

    hook = SageMakerHook(aws_conn_id="aws_default")
    hook._log = logging.getLogger("sagemaker-hook-test")
    hook.get_conn().create_training_job(**training_request("hook-logs", bucket, {"epochs": 2}))
    positions: dict = {}
    state, description = LogState.TAILING, hook.describe_training_job("hook-logs")
    deadline = time.monotonic() + 120
    with caplog.at_level(logging.INFO, logger="sagemaker-hook-test"):
        while state != LogState.COMPLETE and time.monotonic() < deadline:
            # last_describe_job_call=-inf makes the hook describe the job on every call (it waits 30 s).
            state, description, _ = hook.describe_training_job_with_log(
                "hook-logs", positions, [], 1, state, description, float("-inf")
            )
            time.sleep(0.2)
    assert state == LogState.COMPLETE
    assert description["TrainingJobStatus"] == "Completed"
    messages = [r.getMessage() for r in caplog.records]
    assert "rows=3" in messages and "epoch=2 train_loss=0.5000 val_acc=0.70" in messages and "done" in messages
    assert messages.count("done") == 1  # positions keep the hook from printing a line twice


def _endpoint_config(bucket, model_name, scale):
    return {
        "Model": {
            "ModelName": model_name,
            "ExecutionRoleArn": ROLE,
            "PrimaryContainer": {"Image": "pytorch-inference:local", "ModelDataUrl": f"s3://{bucket}/{model_name}.tar.gz"},
        },
        "EndpointConfig": {
            "EndpointConfigName": f"{model_name}-cfg",
            "ProductionVariants": [
                {"VariantName": "AllTraffic", "ModelName": model_name, "InstanceType": "ml.g5.xlarge",
                 "InitialInstanceCount": 1}
            ],
        },
        "Endpoint": {"EndpointName": "op-endpoint", "EndpointConfigName": f"{model_name}-cfg"},
    }


def test_endpoint_operator_creates_then_updates_existing_endpoint(aws, bucket):
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator

    s3, runtime = aws.client("s3"), aws.client("sagemaker-runtime")
    for name, scale in (("champion", 2), ("challenger", 7)):
        s3.put_object(Bucket=bucket, Key=f"{name}.tar.gz", Body=model_tarball({"scale": scale}))

    def invoke():
        resp = runtime.invoke_endpoint(EndpointName="op-endpoint", Body=json.dumps({"x": 1}),
                                       ContentType="application/json")
        return json.loads(resp["Body"].read())["y"]

    create = SageMakerEndpointOperator(
        task_id="create", config=_endpoint_config(bucket, "champion", 2), check_interval=1, aws_conn_id="aws_default"
    )
    result = create.execute({})
    assert result["Endpoint"]["EndpointStatus"] == "InService"
    assert invoke() == 2
    # operation="create" on an existing endpoint falls back to UpdateEndpoint (matched on AWS's message).
    deploy = SageMakerEndpointOperator(
        task_id="deploy", config=_endpoint_config(bucket, "challenger", 7), check_interval=1, aws_conn_id="aws_default"
    )
    result = deploy.execute({})
    assert result["Endpoint"]["EndpointStatus"] == "InService"
    assert result["Endpoint"]["EndpointConfigName"] == "challenger-cfg"
    assert invoke() == 7


def test_transform_and_processing_operators(aws, bucket):
    from airflow.providers.amazon.aws.operators.sagemaker import (
        SageMakerProcessingOperator,
        SageMakerTransformOperator,
    )

    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key="m.tar.gz", Body=model_tarball({"scale": 3}))
    s3.put_object(Bucket=bucket, Key="batch/one.jsonl", Body=b'{"x": 1}\n{"x": 2}\n')
    transform = SageMakerTransformOperator(
        task_id="transform",
        config={
            "Model": {"ModelName": "tm", "ExecutionRoleArn": ROLE,
                      "PrimaryContainer": {"Image": "x", "ModelDataUrl": f"s3://{bucket}/m.tar.gz"}},
            "Transform": {
                "TransformJobName": "op-transform",
                "ModelName": "tm",
                "BatchStrategy": "MultiRecord",
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/batch/"}},
                    "ContentType": "application/jsonlines",
                    "SplitType": "Line",
                },
                "TransformOutput": {"S3OutputPath": f"s3://{bucket}/batch-out", "Accept": "application/jsonlines",
                                    "AssembleWith": "Line"},
                "TransformResources": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1},
            },
        },
        check_interval=1,
        aws_conn_id="aws_default",
    )
    assert transform.execute({})["Transform"]["TransformJobStatus"] == "Completed"
    out = s3.get_object(Bucket=bucket, Key="batch-out/one.jsonl.out")["Body"].read().decode()
    assert [json.loads(line)["y"] for line in out.splitlines()] == [3, 6]

    process = SageMakerProcessingOperator(
        task_id="process",
        config={
            "ProcessingJobName": "op-process",
            "RoleArn": ROLE,
            "AppSpecification": {
                "ImageUri": "x",
                "ContainerEntrypoint": ["python3", "-c",
                                        "import pathlib; pathlib.Path('/opt/ml/processing/out/n.txt').write_text("
                                        "str(len(pathlib.Path('/opt/ml/processing/in/one.jsonl.out').read_text()"
                                        ".splitlines())))"],
            },
            "ProcessingInputs": [{"InputName": "in", "S3Input": {
                "S3Uri": f"s3://{bucket}/batch-out/", "LocalPath": "/opt/ml/processing/in",
                "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
                "S3Uri": f"s3://{bucket}/proc-out", "LocalPath": "/opt/ml/processing/out",
                "S3UploadMode": "EndOfJob"}}]},
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                      "VolumeSizeInGB": 5}},
        },
        check_interval=1,
        aws_conn_id="aws_default",
    )
    assert process.execute({})["Processing"]["ProcessingJobStatus"] == "Completed"
    assert s3.get_object(Bucket=bucket, Key="proc-out/n.txt")["Body"].read() == b"2"
