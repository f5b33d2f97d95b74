"""Issue 14: ``ogiri_train``'s endpoint config turns data capture on, and the template's SageMaker
execution role may write it: the endpoint created as the worker of ``infra/ogiri.yaml`` (IAM
enforced) captures its requests under ``capture/`` in SageMaker's layout."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

from ogiri.config import Settings
from ogiri.naming import run_key
from ogiri.train import configs
from ogiri.train.configs import RunNames

sys.path.insert(0, str(Path(__file__).parents[1] / "emulator" / "fixtures"))
from sm_helpers import model_tarball, poll  # noqa: E402

PARAMS = {"EnvironmentName": "test", "BucketName": "ogiri-test", "TableName": "ogiri-test-captions"}
REGION = "us-east-1"


def _worker(service):
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id="aws_default", client_type=service, region_name=REGION).get_conn()


def _flush(aws) -> dict:
    req = urllib.request.Request(f"{aws.url}/_localaws/sagemaker/capture/flush", data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def test_the_endpoint_config_captures_as_the_templates_execution_role(aws, stack):
    outputs = stack(PARAMS).outputs
    bucket, role = outputs["OgiriBucket"], outputs["OgiriSageMakerRoleArn"]
    settings = Settings(bucket=bucket, sagemaker_role_arn=role, endpoint_name="ogiri-captioner")
    names = RunNames.for_run(run_key("ogiri_train", "manual__2026-12-07T00:00:00+00:00"))
    aws.client("s3").put_object(Bucket=bucket, Key=f"models/{names.model}/model.tar.gz",
                                Body=model_tarball({"scale": 3}))
    sm = _worker("sagemaker")
    sm.create_model(ModelName=names.model, ExecutionRoleArn=role, PrimaryContainer={
        "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311",
        "ModelDataUrl": f"s3://{bucket}/models/{names.model}/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    sm.create_endpoint_config(**configs.endpoint_config_request(settings, names, "ml.m5.large"))
    sm.create_endpoint(**configs.endpoint_request(settings, names))
    desc, _ = poll(lambda: sm.describe_endpoint(EndpointName="ogiri-captioner"), "EndpointStatus",
                   until={"InService", "Failed"})
    assert desc["EndpointStatus"] == "InService", desc.get("FailureReason")
    assert desc["DataCaptureConfig"]["CaptureStatus"] == "Started"

    runtime = _worker("sagemaker-runtime")
    for x in range(3):
        runtime.invoke_endpoint(EndpointName="ogiri-captioner", Body=json.dumps({"x": x}),
                                ContentType="application/json", Accept="application/json")
    assert _flush(aws)["dropped"] == 0
    s3 = aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="capture/")["Contents"]]
    assert all(k.startswith("capture/ogiri-captioner/AllTraffic/") and k.endswith(".jsonl") for k in keys)
    lines = [line for k in keys for line in s3.get_object(Bucket=bucket, Key=k)["Body"].read().splitlines()]
    assert sorted(json.loads(json.loads(line)["captureData"]["endpointInput"]["data"])["x"] for line in lines) == [
        0, 1, 2]
