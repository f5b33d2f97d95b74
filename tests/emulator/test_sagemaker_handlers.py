"""Model servers find and call the handlers exactly as sagemaker-inference's Transformer does.

aws/sagemaker-inference-toolkit ``transformer.py``: ``model_fn``/``input_fn``/``predict_fn``/``output_fn``/
``transform_fn`` looked up in the ``SAGEMAKER_PROGRAM`` module; a handler gets ``context`` only when it
has one parameter more than the toolkit's arguments, another count is a TypeError; ``transform_fn``
together with the others is refused; JSON and CSV bodies arrive as str, others as bytes; ``Accept``
``*/*`` or none is ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (default JSON); a failing handler answers its
error's status (500 unless it carries one) with the message and traceback.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from sm_helpers import ROLE, make_bucket, make_role, poll, tar_bytes  # noqa: E402

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.3-cpu-py311"
PING_FAILED = (
    "The primary container for production variant AllTraffic did not pass the ping health check. "
    "Please check CloudWatch logs for this endpoint."
)


@pytest.fixture
def sm(aws):
    s3 = aws.client("s3")
    make_role(aws.client("iam"))
    return s3, aws.client("sagemaker"), aws.client("sagemaker-runtime"), make_bucket(s3)


def _endpoint(sm, name, code, env=None, wait=True):
    s3, client, _, bucket = sm
    s3.put_object(Bucket=bucket, Key=f"models/{name}/model.tar.gz",
                  Body=tar_bytes({"model.json": "{}", "code/inference.py": textwrap.dedent(code)}))
    client.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": IMAGE, "ModelDataUrl": f"s3://{bucket}/models/{name}/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py", **(env or {})}})
    client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    client.create_endpoint(EndpointName=name, EndpointConfigName=name)
    desc, _ = poll(lambda: client.describe_endpoint(EndpointName=name), "EndpointStatus",
                   until={"InService", "Failed"})
    return desc


@pytest.mark.parametrize(("code", "reason"), [
    ("def model_fn(model_dir, context, extra):\n    return {}\n", "TypeError: model_fn takes 3 arguments but 1 were given."),
    ("def model_fn():\n    return {}\n", "TypeError: model_fn takes 0 arguments but 1 were given."),
    ("def model_fn(model_dir):\n    return {}\n\ndef transform_fn(model, data, content_type, accept):\n"
     "    return data\n\ndef input_fn(data, content_type):\n    return data\n",
     "ValueError: Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, and/or "
     "output_fn implementation"),
], ids=["model_fn-3-args", "model_fn-0-args", "transform_fn-with-input_fn"])
def test_handlers_the_toolkit_refuses_fail_the_endpoint(sm, code, reason):
    desc = _endpoint(sm, "ep-bad", code)
    assert desc["EndpointStatus"] == "Failed"
    assert desc["FailureReason"].startswith(PING_FAILED)
    assert reason in desc["FailureReason"]


HANDLERS = """
    import json

    def model_fn(model_dir, context):
        return {"model_dir_seen": context.system_properties["model_dir"] == model_dir}

    def input_fn(body, content_type, context):
        return {"type": type(body).__name__, "content_type": content_type, "context": context is not None}

    def predict_fn(data, model):
        if data["content_type"] == "text/x-fail":
            raise ValueError("cannot score this")
        return {**data, **model}

    def output_fn(prediction, accept):
        return json.dumps({**prediction, "accept": accept}), "application/json"
"""


def _call(runtime, body, content_type, accept=None):
    extra = {"Accept": accept} if accept else {}
    resp = runtime.invoke_endpoint(EndpointName="ep-h", Body=body, ContentType=content_type, **extra)
    return json.loads(resp["Body"].read())


def test_bodies_context_and_accept_are_passed_as_the_toolkit_passes_them(sm):
    _, _, runtime, _ = sm
    desc = _endpoint(sm, "ep-h", HANDLERS, env={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/jsonlines"})
    assert desc["EndpointStatus"] == "InService", desc.get("FailureReason")
    assert _call(runtime, b'{"a": 1}', "application/json", "application/json") == {
        "type": "str", "content_type": "application/json", "context": True, "model_dir_seen": True,
        "accept": "application/json"}
    assert _call(runtime, b"1,2", "text/csv")["type"] == "str"
    assert _call(runtime, b"\xff\xd8", "image/jpeg")["type"] == "bytes"
    assert _call(runtime, b'{"a": 1}', "application/json; charset=utf-8")["type"] == "bytes"  # exact match only
    assert _call(runtime, b"x", "text/plain")["type"] == "bytes"
    assert _call(runtime, b"x", "image/jpeg")["accept"] == "application/jsonlines"
    assert _call(runtime, b"x", "image/jpeg", "*/*")["accept"] == "application/jsonlines"


def test_failing_handler_answers_500_with_message_and_traceback(sm):
    _, _, runtime, _ = sm
    _endpoint(sm, "ep-h", HANDLERS)
    with pytest.raises(runtime.exceptions.ModelError) as err:
        _call(runtime, b"x", "text/x-fail")
    resp = err.value.response
    assert resp["OriginalStatusCode"] == 500
    assert resp["OriginalMessage"].startswith("cannot score this\nTraceback (most recent call last):")
    assert 'raise ValueError("cannot score this")' in resp["OriginalMessage"]


def test_handler_error_with_a_status_and_a_wrong_arity_handler(sm):
    code = """
    class BadInput(Exception):  # shaped like sagemaker_inference.errors.BaseInferenceToolkitError
        def __init__(self, status_code, message, phrase):
            super().__init__(status_code, message, phrase)
            self.status_code, self.message, self.phrase = status_code, message, phrase

    def model_fn(model_dir):
        return {}

    def input_fn(body, content_type):
        if content_type == "text/x-bad":
            raise BadInput(415, "send JSON", "Unsupported Media Type")
        return body

    def predict_fn(data):
        return data
    """
    _, _, runtime, _ = sm
    assert _endpoint(sm, "ep-h", code)["EndpointStatus"] == "InService"
    with pytest.raises(runtime.exceptions.ModelError) as err:
        _call(runtime, b"x", "text/x-bad")
    assert err.value.response["OriginalStatusCode"] == 415
    assert err.value.response["OriginalMessage"].startswith("send JSON\n")
    with pytest.raises(runtime.exceptions.ModelError) as err:
        _call(runtime, b"{}", "application/json")
    assert err.value.response["OriginalStatusCode"] == 500
    assert err.value.response["OriginalMessage"].startswith("predict_fn takes 1 arguments but 2 were given.\n")
