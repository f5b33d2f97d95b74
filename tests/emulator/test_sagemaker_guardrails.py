"""Deployment guardrails in the emulator: endpoint metrics in CloudWatch, alarms that are evaluated,
and blue/green updates that shift traffic step by step and roll back when an alarm fires."""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from sm_helpers import ROLE, make_bucket, make_role, model_tarball, poll  # noqa: E402

DIMS = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]


@pytest.fixture
def sm(aws):
    s3 = aws.client("s3")
    bucket = make_bucket(s3)
    make_role(aws.client("iam"))
    return s3, aws.client("sagemaker"), aws.client("sagemaker-runtime"), aws.client("cloudwatch"), bucket


def _config(s3, client, bucket, name, model):
    s3.put_object(Bucket=bucket, Key=f"models/{name}/model.tar.gz", Body=model_tarball(model))
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
            {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    )
    return f"{name}-cfg"


def _serving(sm, model=None):
    s3, client, _, _, bucket = sm
    client.create_endpoint(EndpointName="ep", EndpointConfigName=_config(s3, client, bucket, "old", model or {"scale": 3}))
    desc, _ = poll(lambda: client.describe_endpoint(EndpointName="ep"), "EndpointStatus", until={"InService", "Failed"})
    assert desc["EndpointStatus"] == "InService", desc.get("FailureReason")


def _alarm(cw, name, metric, threshold, config=None, *, statistic=None, extended=None, period=60, **extra):
    dims = DIMS + ([{"Name": "EndpointConfigName", "Value": config}] if config else [])
    stat = {"ExtendedStatistic": extended} if extended else {"Statistic": statistic or "Average"}
    cw.put_metric_alarm(AlarmName=name, Namespace="AWS/SageMaker", MetricName=metric, Dimensions=dims,
                        Period=period, EvaluationPeriods=extra.pop("periods", 1), Threshold=threshold,
                        ComparisonOperator="GreaterThanThreshold", **stat, **extra)


def _guarded(canary_percent, wait, alarms, kind="CANARY"):
    size = {"Type": "CAPACITY_PERCENT", "Value": canary_percent}
    routing = {"Type": kind, "WaitIntervalInSeconds": wait}
    if kind == "CANARY":
        routing["CanarySize"] = size
    elif kind == "LINEAR":
        routing["LinearStepSize"] = size
    return {
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, "MaximumExecutionTimeoutInSeconds": 600,
                                  "TerminationWaitInSeconds": 0},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in alarms]},
    }


class Traffic:
    """Requests sent continuously while an update runs; each answer or error is kept with its time."""

    def __init__(self, runtime):
        self.runtime, self.answers, self.errors = runtime, [], []
        self.marks = {}  #: first time each status was seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self):
        while not self._stop.is_set():
            try:
                body = self.runtime.invoke_endpoint(EndpointName="ep", Body=json.dumps({"x": 1}),
                                                    ContentType="application/json", Accept="application/json")
                self.answers.append((time.monotonic(), json.loads(body["Body"].read())))
            except ClientError as exc:
                self.errors.append((time.monotonic(), exc.response["Error"]["Code"]))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _update_under_traffic(sm, config, deployment):
    _, client, runtime, _, _ = sm
    started = time.monotonic()
    with Traffic(runtime) as traffic:
        client.update_endpoint(EndpointName="ep", EndpointConfigName=config, DeploymentConfig=deployment)
        pending = []

        def describe():
            desc = client.describe_endpoint(EndpointName="ep")
            if "PendingDeploymentSummary" in desc:
                pending.append(desc["PendingDeploymentSummary"])
                status = desc["PendingDeploymentSummary"]["ProductionVariants"][0]["VariantStatus"][0]["Status"]
                traffic.marks.setdefault(status, time.monotonic())
            traffic.marks.setdefault(desc["EndpointStatus"], time.monotonic())
            return desc

        desc, seen = poll(describe, "EndpointStatus", until={"InService", "Failed"}, interval=0.05)
    return desc, seen, traffic, pending, started


# -- CloudWatch -------------------------------------------------------------------------------------
def test_alarms_are_evaluated_on_statistic_percentile_and_datapoints(sm):
    *_, cw, _ = sm
    _alarm(cw, "avg", "M", 0.5, statistic="Average", period=10)
    _alarm(cw, "p99", "L", 1000, extended="p99", period=60)
    _alarm(cw, "two-of-three", "M", 0.5, statistic="Maximum", period=60, periods=3, DatapointsToAlarm=2)
    _alarm(cw, "missing-breaches", "Other", 1, statistic="Sum", TreatMissingData="breaching")
    states = {a["AlarmName"]: a["StateValue"] for a in cw.describe_alarms()["MetricAlarms"]}
    assert states == {"avg": "INSUFFICIENT_DATA", "p99": "INSUFFICIENT_DATA", "two-of-three": "INSUFFICIENT_DATA",
                      "missing-breaches": "ALARM"}

    cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[
        {"MetricName": "M", "Dimensions": DIMS, "Value": v} for v in (0, 0, 1)
    ] + [{"MetricName": "L", "Dimensions": DIMS, "Value": v, "Unit": "Microseconds"} for v in [10] * 98 + [5000] * 2])
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=["avg", "p99", "two-of-three"])["MetricAlarms"]}
    assert alarms["avg"]["StateValue"] == "OK"  # average 1/3 is not > 0.5
    assert alarms["p99"]["StateValue"] == "ALARM"  # the 99th of 100 samples is 5000
    assert "Threshold Crossed" in alarms["p99"]["StateReason"]
    assert alarms["two-of-three"]["StateValue"] == "OK"  # one breaching datapoint of the two needed

    cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{"MetricName": "M", "Dimensions": DIMS, "Value": 1}] * 3)
    assert cw.describe_alarms(AlarmNames=["avg"])["MetricAlarms"][0]["StateValue"] == "ALARM"  # 4/6 > 0.5
    # A metric with other dimensions is another metric.
    cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{"MetricName": "M", "Value": 9, "Dimensions": DIMS[:1]}])
    assert cw.describe_alarms(AlarmNames=["avg"])["MetricAlarms"][0]["StateValue"] == "ALARM"


def test_get_metric_statistics_matches_exact_dimensions_in_periods_aligned_on_start_time(sm):
    *_, cw, _ = sm
    start = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    data = [{"MetricName": "Invocations", "Dimensions": DIMS, "Value": 1, "Timestamp": start + timedelta(seconds=s)}
            for s in (3, 12, 15)]
    data.append({"MetricName": "Invocations", "Dimensions": [*DIMS, {"Name": "EndpointConfigName", "Value": "c"}],
                 "Value": 1, "Timestamp": start + timedelta(seconds=17)})
    cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data)
    points = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=DIMS,
                                      StartTime=start, EndTime=start + timedelta(seconds=60), Period=10,
                                      Statistics=["Sum"])["Datapoints"]
    assert sorted((p["Timestamp"], p["Sum"]) for p in points) == [(start, 1.0), (start + timedelta(seconds=10), 2.0)]


def test_put_metric_alarm_is_validated(sm):
    *_, cw, _ = sm
    bad = [
        ({"Period": 45}, "Period must be 10, 30 or a multiple of 60"),
        ({"ExtendedStatistic": "p99", "Statistic": "Average"}, "cannot both be specified"),
        ({"DatapointsToAlarm": 3}, "DatapointsToAlarm"),
        ({"TreatMissingData": "sometimes"}, "TreatMissingData"),
    ]
    for change, wording in bad:
        request = {"AlarmName": "a", "Namespace": "N", "MetricName": "M", "Period": 60, "EvaluationPeriods": 2,
                   "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold", "Statistic": "Sum", **change}
        with pytest.raises(ClientError) as err:
            cw.put_metric_alarm(**request)
        assert wording in err.value.response["Error"]["Message"], change
    assert cw.describe_alarms()["MetricAlarms"] == []


def test_invoke_endpoint_publishes_the_endpoint_metrics(sm):
    _serving(sm)
    _, client, runtime, cw, _ = sm
    for x in (1, 2, "boom"):
        try:
            runtime.invoke_endpoint(EndpointName="ep", Body=json.dumps({"x": x}), ContentType="application/json")
        except runtime.exceptions.ModelError:
            pass
    now = time.time()

    def stat(metric, dims, statistic="Sum"):
        points = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName=metric, Dimensions=dims,
                                          StartTime=now - 600, EndTime=now + 60, Period=60,
                                          Statistics=[statistic])["Datapoints"]
        return sum(p[statistic] for p in points), {p.get("Unit") for p in points}

    for dims in (DIMS, DIMS + [{"Name": "EndpointConfigName", "Value": "old-cfg"}]):
        assert stat("Invocations", dims)[0] == 3
        assert stat("Invocation5XXErrors", dims)[0] == 1  # the handler raised: the container answered 500
        assert stat("Invocation4XXErrors", dims)[0] == 0
        assert stat("ModelLatency", dims, "SampleCount")[0] == 3
        assert stat("OverheadLatency", dims, "SampleCount")[0] == 3
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/SageMaker")["Metrics"]}
    assert {"Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency", "OverheadLatency"} <= names


# -- UpdateEndpoint with DeploymentConfig ---------------------------------------------------------------
def test_deployment_config_is_validated_as_the_api_does(sm):
    _serving(sm)
    s3, client, _, _, bucket = sm
    new = _config(s3, client, bucket, "new", {"scale": 5})
    routing = {"Type": "CANARY", "WaitIntervalInSeconds": 1, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}
    # (minimums are checked by botocore before the request is sent)
    bad = [
        ({**routing, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 60}}, {}, "CanarySize"),
        ({**routing, "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}, {}, "50%"),
        ({"Type": "CANARY", "WaitIntervalInSeconds": 1}, {}, "CanarySize must be specified"),
        ({"Type": "LINEAR", "WaitIntervalInSeconds": 1, "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 5}},
         {}, "LinearStepSize"),
        ({**routing, "WaitIntervalInSeconds": 3601}, {}, "less than or equal to 3600"),
        ({**routing, "Type": "SOMETIMES"}, {}, "ALL_AT_ONCE, CANARY, LINEAR"),
        (routing, {"MaximumExecutionTimeoutInSeconds": 28801}, "less than or equal to 28800"),
        ({**routing, "WaitIntervalInSeconds": 700}, {"MaximumExecutionTimeoutInSeconds": 600}, "must be larger"),
        (routing, {"TerminationWaitInSeconds": 3601}, "less than or equal to 3600"),
    ]
    for traffic, policy, wording in bad:
        with pytest.raises(ClientError) as err:
            client.update_endpoint(EndpointName="ep", EndpointConfigName=new, DeploymentConfig={
                "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": traffic, **policy}})
        assert err.value.response["Error"]["Code"] == "ValidationException", traffic
        assert wording in err.value.response["Error"]["Message"], (traffic, policy)
    desc = client.describe_endpoint(EndpointName="ep")
    assert desc["EndpointStatus"] == "InService" and desc["EndpointConfigName"] == "old-cfg"


def test_canary_of_a_model_failing_real_requests_is_rolled_back_by_its_alarm(sm):
    _serving(sm)
    s3, client, _, cw, bucket = sm
    new = _config(s3, client, bucket, "new", {"scale": 5, "fail_requests": True})
    _alarm(cw, "ogiri-ep-5xx", "Invocation5XXErrors", 0.05, new)
    canary = 20
    desc, seen, traffic, pending, started = _update_under_traffic(sm, new, _guarded(canary, 30, ["ogiri-ep-5xx"]))

    assert seen[0] == "Updating" and "RollingBack" in seen and seen[-1] == "InService"
    assert desc["EndpointConfigName"] == "old-cfg"
    assert "ogiri-ep-5xx" in desc["FailureReason"] and "ALARM" in desc["FailureReason"]
    assert desc["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert "PendingDeploymentSummary" not in desc
    baking = [p for p in pending if p["ProductionVariants"][0]["VariantStatus"][0]["Status"] == "Baking"]
    assert baking and baking[0]["EndpointConfigName"] == new
    assert "20% of traffic on the new fleet (step 1 of 2)" in baking[0]["ProductionVariants"][0]["VariantStatus"][0][
        "StatusMessage"]
    # The old model answered every request that did not fail; the canary's failures are bounded by its size.
    assert traffic.answers and all(a == {"y": 3, "text": ""} for _, a in traffic.answers)
    assert traffic.errors and {code for _, code in traffic.errors} == {"ModelError"}
    total = len(traffic.answers) + len(traffic.errors)
    failed_share = len(traffic.errors) / total
    assert failed_share <= canary / 100
    rolled_back_after = time.monotonic() - traffic.errors[0][0]
    bake, back = traffic.marks["Baking"], traffic.marks["RollingBack"]
    in_canary = [t for t, _ in traffic.answers + traffic.errors if bake <= t <= back]
    failed_in_canary = [t for t, _ in traffic.errors if bake <= t <= back]
    print(f"\ncanary {canary}%: failed share {failed_share:.4f} ({len(traffic.errors)}/{total} requests during the "
          f"update; {len(failed_in_canary)}/{len(in_canary)} between the canary step and RollingBack); rollback "
          f"{rolled_back_after:.2f}s after the first failed request (RollingBack seen "
          f"{back - traffic.errors[0][0]:.2f}s after it); update took {time.monotonic() - started:.2f}s")
    answer = client.describe_endpoint(EndpointName="ep")
    assert answer["EndpointStatus"] == "InService"


def test_a_slow_model_trips_the_latency_alarm(sm):
    _serving(sm)
    s3, client, _, cw, bucket = sm
    new = _config(s3, client, bucket, "slow", {"scale": 5, "delay": 0.6})
    _alarm(cw, "ogiri-ep-p99", "ModelLatency", 300_000, new, extended="p99")  # 0.3 s in microseconds
    _alarm(cw, "ogiri-ep-5xx", "Invocation5XXErrors", 0.05, new)
    desc, seen, traffic, _, _ = _update_under_traffic(sm, new, _guarded(50, 30, ["ogiri-ep-5xx", "ogiri-ep-p99"]))
    assert "RollingBack" in seen and desc["EndpointConfigName"] == "old-cfg"
    assert "ogiri-ep-p99" in desc["FailureReason"] and "ogiri-ep-5xx" not in desc["FailureReason"]
    assert not traffic.errors  # slow, not failing: every request was answered
    assert {a["y"] for _, a in traffic.answers} <= {3, 5}


def test_a_good_model_completes_a_linear_shift(sm):
    _serving(sm)
    s3, client, _, cw, bucket = sm
    new = _config(s3, client, bucket, "good", {"scale": 5})
    _alarm(cw, "ogiri-ep-5xx", "Invocation5XXErrors", 0.05, new)
    desc, seen, traffic, pending, _ = _update_under_traffic(sm, new, _guarded(50, 1, ["ogiri-ep-5xx"], "LINEAR"))
    assert seen == ["Updating", "InService"], desc.get("FailureReason")
    assert desc["EndpointConfigName"] == new and "FailureReason" not in desc
    messages = {p["ProductionVariants"][0]["VariantStatus"][0]["StatusMessage"].split(";")[0] for p in pending}
    assert {"50% of traffic on the new fleet (step 1 of 2)", "100% of traffic on the new fleet (step 2 of 2)"} <= messages
    assert not traffic.errors and {a["y"] for _, a in traffic.answers} == {3, 5}
    assert cw.describe_alarms(AlarmNames=["ogiri-ep-5xx"])["MetricAlarms"][0]["StateValue"] == "OK"


def test_the_execution_role_must_be_allowed_to_describe_the_alarms(sm, aws):
    _serving(sm)
    s3, client, _, cw, bucket = sm
    iam = aws.client("iam")
    no_alarms = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "cloudwatch:DescribeAlarms", "Resource": "*"},
    ]}
    iam.put_role_policy(RoleName="sagemaker", PolicyName="job", PolicyDocument=json.dumps(no_alarms))
    new = _config(s3, client, bucket, "new", {"scale": 5})
    _alarm(cw, "ogiri-ep-5xx", "Invocation5XXErrors", 0.05, new)
    client.update_endpoint(EndpointName="ep", EndpointConfigName=new, DeploymentConfig=_guarded(20, 1, ["ogiri-ep-5xx"]))
    desc, seen = poll(lambda: client.describe_endpoint(EndpointName="ep"), "EndpointStatus",
                      until={"InService", "Failed"}, interval=0.05)
    assert "RollingBack" in seen and desc["EndpointConfigName"] == "old-cfg"
    assert "Unable to describe the AutoRollbackConfiguration alarms" in desc["FailureReason"]
    assert "AccessDenied" in desc["FailureReason"]
