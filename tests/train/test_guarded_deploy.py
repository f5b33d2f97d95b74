"""Issue 15: ``ogiri_train``'s guarded endpoint update on the emulator, as the worker of
``infra/ogiri.yaml`` (IAM enforced) with the template's SageMaker execution role.

The DAG's own pieces run: the alarm requests and DeploymentConfig (``ogiri.train.guardrails``),
PutMetricAlarm with the worker's keys, and :class:`~ogiri.jobs.ReattachingEndpointOperator` for the
create, the update and a retry of the update.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from ogiri.config import Settings
from ogiri.jobs import ReattachingEndpointOperator
from ogiri.train import guardrails
from ogiri.train.params import form_defaults

sys.path.insert(0, str(Path(__file__).parents[1] / "emulator" / "fixtures"))
from sm_helpers import model_tarball  # noqa: E402

PARAMS = {"EnvironmentName": "test", "BucketName": "ogiri-test", "TableName": "ogiri-test-captions"}
ENDPOINT = Settings().endpoint_name
REGION = "us-east-1"


@pytest.fixture
def deploy(aws, stack):
    """The stack deployed; ``aws_default`` signs as its worker."""
    outputs = stack(PARAMS).outputs
    return {"aws": aws, "bucket": outputs["OgiriBucket"], "role": outputs["OgiriSageMakerRoleArn"]}


def _worker_client(aws, deploy, service):
    """A client with the worker's keys (the ``aws_default`` connection the stack fixture set)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id="aws_default", client_type=service, region_name=REGION).get_conn()


def _model(deploy, name: str, model: dict) -> str:
    """Upload a handler model and create it (with its endpoint config) as the worker does."""
    aws = deploy["aws"]
    aws.client("s3").put_object(Bucket=deploy["bucket"], Key=f"models/{name}/model.tar.gz", Body=model_tarball(model))
    sm = _worker_client(aws, deploy, "sagemaker")
    sm.create_model(ModelName=name, ExecutionRoleArn=deploy["role"], PrimaryContainer={
        "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311",
        "ModelDataUrl": f"s3://{deploy['bucket']}/models/{name}/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
    })
    config = f"{name.replace('ogiri-model', 'ogiri-epc')}"
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    return config


def _params(**overrides):
    params = form_defaults(**{"wait_interval_seconds": 30, "canary_percent": 20, **overrides})
    params.update(alarm_max_5xx_rate=0.05, alarm_max_p99_latency_ms=300.0)
    return params


def _put_alarms(deploy, params, config) -> list[str]:
    """What ``put_rollback_alarms`` does, with the worker's keys (PutMetricAlarm under enforcement)."""
    request = {"EndpointConfigName": config, "ProductionVariants": [{"VariantName": "AllTraffic"}]}
    cloudwatch = _worker_client(deploy["aws"], deploy, "cloudwatch")
    requests = guardrails.alarm_requests(params, Settings(), request)
    for r in requests:
        cloudwatch.put_metric_alarm(**r)
    return [r["AlarmName"] for r in requests]


def _operator(op: str, config: str, deployment: dict | None = None) -> ReattachingEndpointOperator:
    request = {"EndpointName": ENDPOINT, "EndpointConfigName": config}
    if deployment:
        request["DeploymentConfig"] = deployment
    return ReattachingEndpointOperator(task_id=f"{op}_endpoint", config=request, operation=op, check_interval=0.2,
                                       max_ingestion_time=300, aws_conn_id="aws_default", region_name=REGION)


def _first_deploy(deploy, capfd) -> str:
    old = _model(deploy, "ogiri-model-old", {"scale": 3})
    result = _operator("create", old).execute({})
    assert result["Endpoint"]["EndpointStatus"] == "InService"
    assert "no traffic to shift" in _logged(capfd)
    return old


def _logged(capfd) -> str:
    """What the operators logged so far (Airflow's structlog task logger writes to the console)."""
    out, err = capfd.readouterr()
    return out + err


class Traffic:
    """Requests sent throughout (as the worker); answers and errors kept."""

    def __init__(self, runtime):
        self.runtime, self.answers, self.errors = runtime, [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                out = self.runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=json.dumps({"x": 1}),
                                                   ContentType="application/json", Accept="application/json")
                self.answers.append(json.loads(out["Body"].read()))
            except Exception as exc:  # noqa: BLE001 - counted and asserted
                self.errors.append((time.monotonic(), type(exc).__name__))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)


def test_a_model_failing_real_requests_is_rolled_back_by_the_alarm_during_the_canary(deploy, capfd, monkeypatch,
                                                                                       tmp_path):
    old = _first_deploy(deploy, capfd)
    params = _params()
    bad = _model(deploy, "ogiri-model-bad", {"scale": 5, "fail_requests": True})
    alarms = _put_alarms(deploy, params, bad)
    runtime = _worker_client(deploy["aws"], deploy, "sagemaker-runtime")
    started = time.monotonic()
    with Traffic(runtime) as traffic:
        result = _operator("update", bad, guardrails.deployment_config(params, alarms)).execute({})
    elapsed = time.monotonic() - started
    endpoint = result["Endpoint"]
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"] == old
    assert guardrails.tripped_alarm(endpoint["FailureReason"], alarms) == guardrails.alarm_name(
        ENDPOINT, "AllTraffic", "5xx-rate")
    logged = _logged(capfd)
    assert "20% of traffic on the new fleet (step 1 of 2)" in logged  # the shift, in the task log
    assert "rolled the update of" in logged
    # The old model kept serving; the failed share stayed within the canary's 20%.
    assert traffic.answers and all(a == {"y": 3, "text": ""} for a in traffic.answers)
    assert traffic.errors
    total = len(traffic.answers) + len(traffic.errors)
    share = len(traffic.errors) / total
    assert share <= 0.20
    _smoke_test_records_the_alarm_rollback(monkeypatch, tmp_path, old, alarms)
    print(f"\nDAG-level canary 20%: failed share {share:.4f} ({len(traffic.errors)}/{total}); rollback "
          f"{time.monotonic() - traffic.errors[0][0]:.2f}s after the first failure; update task {elapsed:.1f}s")


def _smoke_test_records_the_alarm_rollback(monkeypatch, tmp_path, old: str, alarms: list[str]) -> None:
    """smoke_test_endpoint after SageMaker rolled the update back: ledger outcome and a loud failure."""
    from ogiri.train import steps

    monkeypatch.setenv("AIRFLOW_CONN_OGIRI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "l.db")}))
    run = steps.run_for_key("ogiri_train:guarded-test", poll_seconds=0.2)
    previous = {"endpoint_config": old, "model_name": "ogiri-model-old", "model_artifact": "s3://ogiri-test/old"}
    plan = {"operation": "update", "model_artifact": "s3://ogiri-test/bad", "previous": previous,
            "previous_champion": None, "guardrails": {"strategy": "canary", "alarms": alarms}}
    with pytest.raises(AirflowFailException, match="alarm ogiri-captioner-AllTraffic-5xx-rate fired"):
        steps.smoke_test_endpoint(run, plan, {})
    row = run.ledger.deployment_history(ENDPOINT)[0]
    assert (row["outcome"], row["outcome_alarm"]) == ("rolled_back_by_alarm", "ogiri-captioner-AllTraffic-5xx-rate")
    assert row["action"] == "rollback" and row["endpoint_config"] == old


def test_a_slow_model_trips_the_latency_alarm(deploy, capfd):
    old = _first_deploy(deploy, capfd)
    params = _params(deployment_strategy="linear", linear_step_percent=50)
    slow = _model(deploy, "ogiri-model-slow", {"scale": 5, "delay": 0.6})
    alarms = _put_alarms(deploy, params, slow)
    runtime = _worker_client(deploy["aws"], deploy, "sagemaker-runtime")
    with Traffic(runtime) as traffic:
        endpoint = _operator("update", slow, guardrails.deployment_config(params, alarms)).execute({})["Endpoint"]
    assert endpoint["EndpointConfigName"] == old
    assert guardrails.tripped_alarm(endpoint["FailureReason"], alarms) == guardrails.alarm_name(
        ENDPOINT, "AllTraffic", "p99-latency")
    assert not traffic.errors


def test_a_good_model_completes_the_shift_and_a_retry_during_updating_waits(deploy, capfd):
    _first_deploy(deploy, capfd)
    params = _params(wait_interval_seconds=3)  # long enough that both retries below find it Updating
    good = _model(deploy, "ogiri-model-good", {"scale": 5})
    other = _model(deploy, "ogiri-model-other", {"scale": 7})
    alarms = _put_alarms(deploy, params, good)
    _put_alarms(deploy, params, good)  # idempotent: PutMetricAlarm updates the same two alarms
    cloudwatch = deploy["aws"].client("cloudwatch")
    assert sorted(a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]) == sorted(alarms)
    sm = deploy["aws"].client("sagemaker")
    # The first try called UpdateEndpoint and died; its retry finds the endpoint Updating to this config.
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=good,
                       DeploymentConfig=guardrails.deployment_config(params, alarms))
    with pytest.raises(AirflowFailException, match="another deployment"):
        _operator("update", other, guardrails.deployment_config(params, alarms)).execute({})
    endpoint = _operator("update", good, guardrails.deployment_config(params, alarms)).execute({})["Endpoint"]
    logged = _logged(capfd)
    assert "waiting for it, not calling again" in logged
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"] == good
    assert "100% of traffic on the new fleet (step 2 of 2)" in logged
    out = _worker_client(deploy["aws"], deploy, "sagemaker-runtime").invoke_endpoint(
        EndpointName=ENDPOINT, Body=json.dumps({"x": 1}), ContentType="application/json")
    assert json.loads(out["Body"].read()) == {"y": 5, "text": ""}
    last = sm.describe_endpoint(EndpointName=ENDPOINT)["LastDeploymentConfig"]
    assert last["AutoRollbackConfiguration"]["Alarms"] == [{"AlarmName": a} for a in alarms]
