"""Fault injection: rule semantics (pure) and AWS-shaped errors seen by real boto3 clients."""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image

from localaws.faults import (
    FaultRule,
    FaultRuleError,
    FaultStore,
    operation_from_environ,
    service_from_environ,
)

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})  # one attempt, no retry


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


# --- pure rule semantics -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ({"error": "X"}, "service"),
        ({"service": "s3"}, "error"),
        ({"service": "s3", "error": "X", "count": 0}, "count"),
        ({"service": "s3", "error": "X", "rate": 1.5}, "rate"),
        ({"service": "s3", "error": "X", "rate": 0.5, "count": 2}, "not both"),
        ({"service": "s3", "error": "X", "status": 200}, "status"),
        ({"service": "s3", "error": "X", "colour": "red"}, "colour"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(rule, needle):
    with pytest.raises(FaultRuleError, match=needle):
        FaultRule.from_json(rule)


def test_count_rule_fires_n_times_then_stops():
    store = FaultStore()
    store.add(
        {"service": "rekognition", "operation": "DetectLabels", "error": "ThrottlingException", "count": 2}
    )
    fired = [store.check("rekognition", "DetectLabels") is not None for _ in range(4)]
    assert fired == [True, True, False, False]
    assert store.check("rekognition", "DetectText") is None
    assert store.check("s3", "DetectLabels") is None
    (snap,) = store.snapshot()
    assert (snap["fired"], snap["matched"], snap["remaining"]) == (2, 4, 0)


def test_count_rule_is_exact_under_concurrency():
    store = FaultStore()
    store.add({"service": "s3", "error": "SlowDown", "status": 503, "count": 50})
    hits: list[bool] = []

    def worker() -> None:
        for _ in range(100):
            hits.append(store.check("s3", "PutObject") is not None)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(hits) == 50 and len(hits) == 800
    assert store.snapshot()[0]["matched"] == 800


def test_rate_rule_is_reproducible_with_a_seed():
    def pattern(seed: int) -> list[bool]:
        store = FaultStore()
        store.add(
            {
                "service": "dynamodb",
                "error": "ProvisionedThroughputExceededException",
                "rate": 0.3,
                "seed": seed,
            }
        )
        return [store.check("dynamodb", "PutItem") is not None for _ in range(200)]

    first = pattern(7)
    assert first == pattern(7)
    assert first != pattern(8)
    assert 0.2 < sum(first) / len(first) < 0.4


def test_wildcard_operation_and_env_list():
    store = FaultStore()
    rules = store.load_json('[{"service": "S3", "error": "SlowDown", "status": 503, "operation": "*"}]')
    assert rules[0].operation is None and rules[0].service == "s3"
    assert store.check("s3", "PutObject") is rules[0]
    assert store.check("s3", None) is rules[0]
    with pytest.raises(FaultRuleError, match="JSON"):
        store.load_json("[{")


def test_service_and_operation_from_request():
    auth = (
        "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    environ = {"HTTP_AUTHORIZATION": auth, "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"}
    assert service_from_environ(environ) == "dynamodb"
    assert operation_from_environ(environ, "dynamodb") == "PutItem"
    assert service_from_environ({}) is None
    query = {"QUERY_STRING": "", "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8"}
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    query.update(CONTENT_LENGTH=str(len(body)), **{"wsgi.input": io.BytesIO(body)})
    assert operation_from_environ(query, "sts") == "GetCallerIdentity"
    assert query["wsgi.input"].read() == body  # the body is still there for moto
    s3_put = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/bucket/some/key.jpg", "HTTP_HOST": "127.0.0.1:1"}
    assert operation_from_environ(s3_put, "s3") == "PutObject"
    s3_list = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/bucket",
        "QUERY_STRING": "list-type=2",
        "HTTP_HOST": "h",
    }
    assert operation_from_environ(s3_list, "s3") == "ListObjectsV2"
    virtual = {"REQUEST_METHOD": "GET", "PATH_INFO": "/key.jpg", "HTTP_HOST": "bucket.s3.amazonaws.com"}
    assert operation_from_environ(virtual, "s3") == "GetObject"
    virtual_root = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_HOST": "bucket.localhost:4566"}
    assert operation_from_environ(virtual_root, "s3") == "ListObjects"
    invoke = {"REQUEST_METHOD": "POST", "PATH_INFO": "/endpoints/ep/invocations"}
    assert operation_from_environ(invoke, "sagemaker") == "InvokeEndpoint"


# --- through the emulator ------------------------------------------------------------------------


def faults(aws) -> list[dict]:
    with urllib.request.urlopen(f"{aws.url}/_localaws/faults", timeout=10) as r:
        return json.load(r)["rules"]


def test_count_throttle_seen_without_retries(aws):
    aws.inject(
        service="rekognition", operation="DetectLabels", error="ThrottlingException", status=400, count=3
    )
    client = aws.client("rekognition", config=NO_RETRIES)
    for _ in range(3):
        with pytest.raises(ClientError) as info:
            client.detect_labels(Image={"Bytes": png()})
        assert info.value.response["Error"]["Code"] == "ThrottlingException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Red" in [lb["Name"] for lb in client.detect_labels(Image={"Bytes": png()})["Labels"]]
    (rule,) = faults(aws)
    assert (rule["fired"], rule["remaining"], rule["matched"]) == (3, 0, 4)


def test_count_throttle_survived_with_standard_retries(aws):
    aws.inject(service="rekognition", operation="DetectLabels", error="ThrottlingException", count=3)
    client = aws.client("rekognition", config=Config(retries={"max_attempts": 10, "mode": "standard"}))
    resp = client.detect_labels(Image={"Bytes": png()})
    assert resp["ResponseMetadata"]["RetryAttempts"] == 3  # botocore classified it as retryable
    assert resp["Labels"]
    assert faults(aws)[0]["fired"] == 3


def test_rate_throughput_exceeded_on_dynamodb(aws):
    ddb_setup = aws.client("dynamodb")
    ddb_setup.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    error = "ProvisionedThroughputExceededException"
    aws.inject(service="dynamodb", operation="PutItem", error=error, rate=0.3, seed=11)
    aws.inject(service="dynamodb", operation="BatchWriteItem", error=error, rate=0.3, seed=12)

    bare = aws.client("dynamodb", config=NO_RETRIES)
    outcomes = []
    for i in range(30):
        try:
            bare.put_item(TableName="t", Item={"k": {"S": f"bare-{i}"}})
            outcomes.append(False)
        except ClientError as e:
            assert e.response["Error"]["Code"] == error
            outcomes.append(True)
    assert 0 < sum(outcomes) < 30

    # botocore's default DynamoDB retries (legacy, 10 attempts) ride through every fault.
    retrying = aws.client("dynamodb")
    for i in range(20):
        retrying.put_item(TableName="t", Item={"k": {"S": f"put-{i}"}})
    for b in range(6):
        items = [{"PutRequest": {"Item": {"k": {"S": f"batch-{b}-{j}"}}}} for j in range(5)]
        assert retrying.batch_write_item(RequestItems={"t": items})["UnprocessedItems"] == {}

    keys = {item["k"]["S"] for item in ddb_setup.scan(TableName="t")["Items"]}
    assert {f"put-{i}" for i in range(20)} <= keys
    assert {f"batch-{b}-{j}" for b in range(6) for j in range(5)} <= keys
    assert len([k for k in keys if k.startswith("bare-")]) == outcomes.count(False)
    put_rule, batch_rule = faults(aws)
    assert put_rule["fired"] >= sum(outcomes) and put_rule["fired"] > 0
    assert batch_rule["fired"] > 0 and batch_rule["matched"] == 6 + batch_rule["fired"]
    assert put_rule["matched"] == 30 + 20 + (put_rule["fired"] - sum(outcomes))


def test_rate_pattern_repeats_after_reinjecting(aws):
    aws.client("dynamodb").create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    bare = aws.client("dynamodb", config=NO_RETRIES)

    def run() -> list[bool]:
        aws.inject(
            service="dynamodb", operation="PutItem", error="ProvisionedThroughputExceededException", rate=0.3
        )
        out = []
        for i in range(25):
            try:
                bare.put_item(TableName="t", Item={"k": {"S": str(i)}})
                out.append(False)
            except ClientError:
                out.append(True)
        urllib.request.urlopen(urllib.request.Request(f"{aws.url}/_localaws/faults", method="DELETE")).close()
        return out

    assert run() == run()


def test_s3_rest_xml_error_only_for_named_operation(aws):
    s3 = aws.client("s3", config=NO_RETRIES)
    s3.create_bucket(Bucket="fault-bucket")
    s3.put_object(Bucket="fault-bucket", Key="k", Body=b"v")
    aws.inject(service="s3", operation="PutObject", error="SlowDown", status=503, count=1)
    assert s3.get_object(Bucket="fault-bucket", Key="k")["Body"].read() == b"v"  # other operations untouched
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="fault-bucket", Key="k2", Body=b"w")
    assert info.value.response["Error"]["Code"] == "SlowDown"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    s3.put_object(Bucket="fault-bucket", Key="k2", Body=b"w")
    assert s3.get_object(Bucket="fault-bucket", Key="k2")["Body"].read() == b"w"


def test_query_protocol_error(aws):
    aws.inject(service="sts", operation="GetCallerIdentity", error="Throttling", count=1)
    sts = aws.client("sts", config=NO_RETRIES)
    with pytest.raises(ClientError) as info:
        sts.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "Throttling"
    assert sts.get_caller_identity()["Account"]


def test_admin_routes(aws):
    def call(method: str, path: str, body: object = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{aws.url}{path}", data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    status, body = call("POST", "/_localaws/faults", {"service": "s3", "error": "SlowDown", "rate": 2})
    assert status == 400 and "rate" in body["error"]
    status, created = call(
        "POST", "/_localaws/faults", [{"service": "s3", "error": "A"}, {"service": "s3", "error": "B"}]
    )
    assert status == 201 and [r["error"] for r in created["rules"]] == ["A", "B"]
    first_id = created["rules"][0]["id"]
    assert call("DELETE", f"/_localaws/faults/{first_id}") == (200, {"removed": 1})
    assert call("DELETE", f"/_localaws/faults/{first_id}")[0] == 404
    assert [r["error"] for r in faults(aws)] == ["B"]
    assert call("DELETE", "/_localaws/faults") == (200, {"removed": 1})
    assert faults(aws) == []
    assert call("GET", "/_localaws/nope")[0] == 404


def test_rest_json_error_for_sagemaker_runtime(aws):
    # sagemaker-runtime signs as "sagemaker"; the fault fires before any endpoint lookup.
    aws.inject(service="sagemaker", operation="InvokeEndpoint", error="ThrottlingException", count=1)
    runtime = aws.client("sagemaker-runtime", config=NO_RETRIES)
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName="nope", Body=b"{}", ContentType="application/json")
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    assert faults(aws)[0]["fired"] == 1
