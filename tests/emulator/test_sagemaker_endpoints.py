"""Endpoints and batch transform in the emulator run the model's real serving handlers."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from sm_helpers import ROLE, make_bucket, make_role, model_tarball, poll  # noqa: E402


@pytest.fixture
def sm(aws):
    s3 = aws.client("s3")
    bucket = make_bucket(s3)
    make_role(aws.client("iam"))
    return aws, s3, aws.client("sagemaker"), aws.client("sagemaker-runtime"), bucket


def _model(s3, client, bucket, name, model, with_code=True, instance_type="ml.g5.xlarge"):
    s3.put_object(Bucket=bucket, Key=f"models/{name}/model.tar.gz", Body=model_tarball(model, with_code))
    client.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.3-cpu-py311",
            "ModelDataUrl": f"s3://{bucket}/models/{name}/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
        },
    )
    client.create_endpoint_config(
        EndpointConfigName=f"{name}-cfg",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": instance_type, "InitialInstanceCount": 1}
        ],
    )
    return f"{name}-cfg"


def _describe(client, name):
    return lambda: client.describe_endpoint(EndpointName=name)


def _invoke(runtime, name, payload, content_type="application/json"):
    resp = runtime.invoke_endpoint(EndpointName=name, Body=payload, ContentType=content_type, Accept="application/json")
    return resp["ContentType"], json.loads(resp["Body"].read())


def test_endpoint_serves_handlers_then_rolls_back_a_broken_update(sm):
    _, s3, client, runtime, bucket = sm
    good = _model(s3, client, bucket, "good", {"scale": 3})
    broken = _model(s3, client, bucket, "broken", {"scale": 5, "broken": True})
    client.create_endpoint(EndpointName="ep", EndpointConfigName=good)
    desc, seen = poll(_describe(client, "ep"), "EndpointStatus", until={"InService", "Failed"})
    assert seen == ["Creating", "InService"], desc.get("FailureReason")

    assert _invoke(runtime, "ep", json.dumps({"x": 2, "text": "大喜利"})) == (
        "application/json",
        {"y": 6, "text": "大喜利"},
    )

    image = b"\x89PNG\r\n\x1a\n\xff\xfe\x00" + bytes(range(256))
    assert _invoke(runtime, "ep", image, "application/x-image")[1] == {"y": 3 * len(image), "text": "89504e47"}

    client.update_endpoint(EndpointName="ep", EndpointConfigName=broken)
    answers = []
    stop = threading.Event()

    def keep_invoking():
        while not stop.is_set():
            answers.append(_invoke(runtime, "ep", json.dumps({"x": 1}))[1])

    invoker = threading.Thread(target=keep_invoking)
    invoker.start()
    try:
        desc, seen = poll(_describe(client, "ep"), "EndpointStatus", until={"InService", "Failed"})
    finally:
        stop.set()
        invoker.join()
    assert seen[0] == "Updating" and "RollingBack" in seen and seen[-1] == "InService"
    assert "RuntimeError: weights are corrupt" in desc["FailureReason"]
    assert desc["EndpointConfigName"] == good
    assert answers and all(a == {"y": 3, "text": ""} for a in answers)
    assert _invoke(runtime, "ep", json.dumps({"x": 1}))[1] == {"y": 3, "text": ""}

    newer = _model(s3, client, bucket, "newer", {"scale": 10})
    client.update_endpoint(EndpointName="ep", EndpointConfigName=newer)
    desc, seen = poll(_describe(client, "ep"), "EndpointStatus", until={"InService", "Failed"})
    assert seen == ["Updating", "InService"] and desc["EndpointConfigName"] == newer
    assert "FailureReason" not in desc
    assert _invoke(runtime, "ep", json.dumps({"x": 1}))[1] == {"y": 10, "text": ""}

    client.delete_endpoint(EndpointName="ep")
    with pytest.raises(ClientError) as err:
        _invoke(runtime, "ep", "{}")
    assert err.value.response["Error"]["Code"] == "ValidationError"


def test_handler_error_is_model_error(sm):
    _, s3, client, runtime, bucket = sm
    client.create_endpoint(EndpointName="ep-err", EndpointConfigName=_model(s3, client, bucket, "m", {"scale": 1}))
    poll(_describe(client, "ep-err"), "EndpointStatus", until={"InService", "Failed"})
    with pytest.raises(runtime.exceptions.ModelError) as err:
        _invoke(runtime, "ep-err", json.dumps({"x": "boom"}))
    resp = err.value.response
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert resp["OriginalStatusCode"] == 500
    assert "bad payload: x must be a number" in resp["OriginalMessage"]


def test_model_without_inference_code_fails_endpoint(sm):
    _, s3, client, runtime, bucket = sm
    cfg = _model(s3, client, bucket, "nocode", {"scale": 1}, with_code=False)
    client.create_endpoint(EndpointName="ep-nocode", EndpointConfigName=cfg)
    desc, _ = poll(_describe(client, "ep-nocode"), "EndpointStatus", until={"InService", "Failed"})
    assert desc["EndpointStatus"] == "Failed"
    # no inference module: the PyTorch container's default model_fn wants a TorchScript model.pt
    assert "Exactly one .pth or .pt file is required for PyTorch models: []" in desc["FailureReason"]
    with pytest.raises(ClientError) as err:
        _invoke(runtime, "ep-nocode", "{}")
    assert err.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as err:
        _invoke(runtime, "never-created", "{}")
    assert "not found" in err.value.response["Error"]["Message"]


@pytest.mark.parametrize("strategy", ["SingleRecord", "MultiRecord"])
def test_transform_job_over_prefix_with_line_split(sm, strategy):
    _, s3, client, _, bucket = sm
    _model(s3, client, bucket, "tm", {"scale": 2})
    s3.put_object(Bucket=bucket, Key="batch/in/a.jsonl", Body=b'{"x": 1}\n{"x": 2, "text": "\xe3\x81\x82"}\n')
    s3.put_object(Bucket=bucket, Key="batch/in/sub/b.jsonl", Body=b'{"x": 5}\n')
    name = f"tj-{strategy.lower()}"
    client.create_transform_job(
        TransformJobName=name,
        ModelName="tm",
        BatchStrategy=strategy,
        MaxPayloadInMB=1,
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/batch/in/"}},
            "ContentType": "application/jsonlines",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{bucket}/batch/out", "Accept": "application/jsonlines", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    desc, seen = poll(lambda: client.describe_transform_job(TransformJobName=name), "TransformJobStatus")
    assert seen == ["InProgress", "Completed"], desc.get("FailureReason")
    a = s3.get_object(Bucket=bucket, Key="batch/out/a.jsonl.out")["Body"].read().decode()
    b = s3.get_object(Bucket=bucket, Key="batch/out/sub/b.jsonl.out")["Body"].read().decode()
    assert [json.loads(line) for line in a.splitlines()] == [{"y": 2, "text": ""}, {"y": 4, "text": "あ"}]
    assert [json.loads(line) for line in b.splitlines()] == [{"y": 10, "text": ""}]


def test_transform_job_fails_naming_the_object(sm):
    _, s3, client, _, bucket = sm
    _model(s3, client, bucket, "tm", {"scale": 2})
    s3.put_object(Bucket=bucket, Key="bad/in/ok.jsonl", Body=b'{"x": 1}\n')
    s3.put_object(Bucket=bucket, Key="bad/in/z.jsonl", Body=b'{"x": 1}\n{"x": "oops"}\n')
    client.create_transform_job(
        TransformJobName="tj-bad",
        ModelName="tm",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/bad/in"}},
            "ContentType": "application/jsonlines",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{bucket}/bad/out"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    desc, _ = poll(lambda: client.describe_transform_job(TransformJobName="tj-bad"), "TransformJobStatus")
    assert desc["TransformJobStatus"] == "Failed"
    assert f"s3://{bucket}/bad/in/z.jsonl" in desc["FailureReason"]
    assert "x must be a number" in desc["FailureReason"]
