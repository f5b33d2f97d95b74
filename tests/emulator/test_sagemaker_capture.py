"""Endpoint data capture in the emulator: DataCaptureConfig validated as the API does, captured
requests written to S3 in SageMaker's JSON Lines layout, as the model's execution role."""

from __future__ import annotations

import base64
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ogiri_local.emulator import capture_admin

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from sm_helpers import ROLE, make_bucket, make_role, model_tarball, poll, with_platform  # noqa: E402

IMAGE_URI = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.3-cpu-py311"
KEY = re.compile(r"^capture/(?P<ep>[^/]+)/AllTraffic/(?P<hour>\d{4}/\d{2}/\d{2}/\d{2})/"
                 r"\d{2}-\d{2}-\d{3}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jsonl$")
IMAGE = b"\x89PNG\r\n\x1a\n\xff\xfe\x00" + bytes(range(256))


def _admin(aws, route, body=None):
    return capture_admin(aws.url, "GET" if body is None else "POST", route, body)


def _capture(bucket, percent=100, modes=("Input", "Output"), **extra):
    return {"EnableCapture": True, "InitialSamplingPercentage": percent,
            "DestinationS3Uri": f"s3://{bucket}/capture",
            "CaptureOptions": [{"CaptureMode": m} for m in modes],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}, **extra}


def _model(aws, bucket, name, role=ROLE):
    s3, sm = aws.client("s3"), aws.client("sagemaker")
    s3.put_object(Bucket=bucket, Key=f"models/{name}/model.tar.gz", Body=model_tarball({"scale": 2}))
    sm.create_model(ModelName=name, ExecutionRoleArn=role, PrimaryContainer={
        "Image": IMAGE_URI, "ModelDataUrl": f"s3://{bucket}/models/{name}/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})


def _config(sm, name, model, capture):
    sm.create_endpoint_config(EndpointConfigName=name, DataCaptureConfig=capture, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])


def _serve(sm, name, config):
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    desc, _ = poll(lambda: sm.describe_endpoint(EndpointName=name), "EndpointStatus", until={"InService", "Failed"})
    assert desc["EndpointStatus"] == "InService", desc.get("FailureReason")
    return desc


def _invoke(runtime, name, body, content_type="application/json", **extra):
    resp = runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType=content_type,
                                   Accept="application/json", **extra)
    return json.loads(resp["Body"].read())


def _captured(s3, bucket, endpoint):
    """{key: [lines]} of the endpoint's capture objects."""
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"capture/{endpoint}/").get("Contents", [])]
    return {k: [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=k)["Body"].read().splitlines()]
            for k in keys}


@pytest.fixture
def env(aws):
    s3 = aws.client("s3")
    bucket = make_bucket(s3)
    make_role(aws.client("iam"))
    return aws, s3, aws.client("sagemaker"), aws.client("sagemaker-runtime"), bucket


def test_capture_writes_sagemaker_lines_in_the_offset_hour(env):
    aws, s3, sm, runtime, bucket = env
    _model(aws, bucket, "m")
    _config(sm, "cfg", "m", _capture(bucket))
    assert sm.describe_endpoint_config(EndpointConfigName="cfg")["DataCaptureConfig"] == _capture(bucket)
    desc = _serve(sm, "ep", "cfg")
    assert desc["DataCaptureConfig"] == {"EnableCapture": True, "CaptureStatus": "Started",  # the summary
                                         "CurrentSamplingPercentage": 100,
                                         "DestinationS3Uri": f"s3://{bucket}/capture"}
    assert aws.capture_clock(-7200) == {"offset_seconds": -7200}
    before = datetime.now(UTC) - timedelta(seconds=7200)
    body = json.dumps({"x": 2, "text": "大喜利"})
    assert _invoke(runtime, "ep", body, InferenceId="req-1") == {"y": 4, "text": "大喜利"}
    _invoke(runtime, "ep", IMAGE, "application/x-image")
    aws.capture_flush()  # whatever the periodic flush has not written yet

    found = _captured(s3, bucket, "ep")
    assert sum(len(lines) for lines in found.values()) == 2
    by_type = {line["captureData"]["endpointInput"]["observedContentType"]: line
               for lines in found.values() for line in lines}
    text, image = by_type["application/json"], by_type["application/x-image"]
    for key, lines in found.items():  # the hour path is the records' inferenceTime hour (UTC)
        match = KEY.match(key)
        assert match, key
        hours = {datetime.strptime(line["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ")
                 .strftime("%Y/%m/%d/%H") for line in lines}
        assert hours == {match["hour"]}
    when = datetime.strptime(text["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((when - before).total_seconds()) < 600  # two hours back, as the offset says
    assert text == {
        "captureData": {
            "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": body,
                              "encoding": "JSON"},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                               "data": json.dumps({"y": 4, "text": "大喜利"}, ensure_ascii=False),
                               "encoding": "JSON"},
        },
        "eventMetadata": {"eventId": text["eventMetadata"]["eventId"], "inferenceTime": text["eventMetadata"]
                          ["inferenceTime"], "inferenceId": "req-1"},
        "eventVersion": "0",
    }
    assert image["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert image["captureData"]["endpointInput"]["observedContentType"] == "application/x-image"
    assert base64.b64decode(image["captureData"]["endpointInput"]["data"]) == IMAGE
    assert image["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert image["eventMetadata"]["eventId"] != text["eventMetadata"]["eventId"]


def test_sampling_counts_and_an_update_switches_capture(env):
    aws, s3, sm, runtime, bucket = env
    _model(aws, bucket, "m")
    _config(sm, "half", "m", _capture(bucket, 50, modes=("Input",)))
    _config(sm, "none", "m", _capture(bucket, 0))
    _serve(sm, "ep", "half")
    for x in range(10):
        _invoke(runtime, "ep", json.dumps({"x": x}))
    _admin(aws, "/flush", {})
    lines = [line for found in _captured(s3, bucket, "ep").values() for line in found]
    assert len(lines) == 5  # every second request (a proportional counter, not a coin)
    assert all(set(line["captureData"]) == {"endpointInput"} for line in lines)
    assert sorted(json.loads(line["captureData"]["endpointInput"]["data"])["x"] for line in lines) == [1, 3, 5, 7, 9]

    sm.update_endpoint(EndpointName="ep", EndpointConfigName="none")
    desc, _ = poll(lambda: sm.describe_endpoint(EndpointName="ep"), "EndpointStatus", until={"InService"})
    assert desc["EndpointConfigName"] == "none"
    assert desc["DataCaptureConfig"]["CurrentSamplingPercentage"] == 0
    for x in range(4):
        _invoke(runtime, "ep", json.dumps({"x": x}))
    assert _admin(aws, "/flush", {})["records"] == 0
    assert sum(len(v) for v in _captured(s3, bucket, "ep").values()) == 5


def test_disabled_capture_is_stopped_and_a_plain_endpoint_has_no_summary(env):
    aws, _, sm, _, bucket = env
    _model(aws, bucket, "m")
    _config(sm, "off", "m", _capture(bucket, 100, EnableCapture=False))
    sm.create_endpoint_config(EndpointConfigName="plain", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    assert "DataCaptureConfig" not in sm.describe_endpoint_config(EndpointConfigName="plain")
    sm.create_endpoint(EndpointName="off", EndpointConfigName="off")
    sm.create_endpoint(EndpointName="plain", EndpointConfigName="plain")
    assert sm.describe_endpoint(EndpointName="off")["DataCaptureConfig"]["CaptureStatus"] == "Stopped"
    assert "DataCaptureConfig" not in sm.describe_endpoint(EndpointName="plain")
    sm.delete_endpoint(EndpointName="off")
    sm.delete_endpoint(EndpointName="plain")


@pytest.mark.parametrize(("change", "message"), [
    ({"InitialSamplingPercentage": 101}, "Value '101' at 'dataCaptureConfig.initialSamplingPercentage' failed to "
     "satisfy constraint: Member must have value less than or equal to 100"),
    ({"DestinationS3Uri": "bucket/capture"}, "Value 'bucket/capture' at 'dataCaptureConfig.destinationS3Uri' "
     "failed to satisfy constraint: Member must satisfy regular expression pattern: (https|s3)://([^/])/?(.*)"),
    ({"CaptureOptions": [{"CaptureMode": "Both"}]}, "Value 'Both' at 'dataCaptureConfig.captureOptions.1.member."
     "captureMode' failed to satisfy constraint: Member must satisfy enum value set: [Input, Output, InputAndOutput]"),
    ({"CaptureOptions": [{"CaptureMode": "Input"}] * 33}, "at 'dataCaptureConfig.captureOptions' failed to satisfy "
     "constraint: Member must have length less than or equal to 32"),
    ({"CaptureContentTypeHeader": {"JsonContentTypes": ["json"]}}, "at 'dataCaptureConfig.captureContentTypeHeader."
     "jsonContentTypes' failed to satisfy constraint"),
])
def test_invalid_capture_config_is_refused_in_aws_words(env, change, message):
    aws, _, sm, _, bucket = env
    _model(aws, bucket, "m")
    with pytest.raises(ClientError) as err:
        _config(sm, "bad", "m", {**_capture(bucket), **change})
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert err.value.response["Error"]["Message"].startswith("1 validation error detected: ")
    assert message in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError, match="Could not find endpoint configuration"):
        sm.describe_endpoint_config(EndpointConfigName="bad")


def test_capture_is_written_only_with_the_execution_role_grant(env):
    aws, s3, sm, runtime, bucket = env
    iam = aws.client("iam")
    serve_only = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/models/*"}]}
    role = make_role(iam, "serving", with_platform(serve_only, bucket))
    _model(aws, bucket, "m", role)
    _config(sm, "cfg", "m", _capture(bucket))
    _serve(sm, "ep", "cfg")

    assert _invoke(runtime, "ep", json.dumps({"x": 1})) == {"y": 2, "text": ""}  # the request never suffers
    _admin(aws, "/flush", {})
    assert _captured(s3, bucket, "ep") == {}
    counts = _admin(aws, "")["endpoints"]["ep"]["AllTraffic"]
    assert (counts["captured"], counts["written"], counts["dropped"]) == (1, 0, 1)
    assert "AccessDenied" in counts["last_error"] and role in counts["last_error"]

    granted = with_platform(serve_only, bucket)
    granted["Statement"].append({"Effect": "Allow", "Action": "s3:PutObject",
                                 "Resource": f"arn:aws:s3:::{bucket}/capture/*"})
    iam.put_role_policy(RoleName="serving", PolicyName="job", PolicyDocument=json.dumps(granted))
    _invoke(runtime, "ep", json.dumps({"x": 2}))
    _admin(aws, "/flush", {})
    assert [len(v) for v in _captured(s3, bucket, "ep").values()] == [1]
    counts = _admin(aws, "")["endpoints"]["ep"]["AllTraffic"]
    assert (counts["captured"], counts["written"], counts["dropped"]) == (2, 1, 1)


def test_clock_admin_route_refuses_a_bad_body_and_reset_clears_it(aws):
    from urllib.error import HTTPError

    with pytest.raises(HTTPError) as err:
        _admin(aws, "/clock", {"offset": 5})
    assert err.value.code == 400
    assert _admin(aws, "/clock", {"offset_seconds": 3600.5}) == {"offset_seconds": 3600.5}
    aws.reset()
    assert _admin(aws, "/clock") == {"offset_seconds": 0.0}
    assert _admin(aws, "") == {"endpoints": {}, "offset_seconds": 0.0}
