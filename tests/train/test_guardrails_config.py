"""The guarded-update requests ``ogiri_train`` builds: alarm names and requests, DeploymentConfig per strategy."""

from __future__ import annotations

import pytest

from ogiri.config import get_settings
from ogiri.train import guardrails
from ogiri.train.params import resolved_defaults

CONFIG = {"EndpointConfigName": "ogiri-epc-x", "ProductionVariants": [{"VariantName": "AllTraffic"}]}


def test_empty_form_fields_come_from_the_settings(monkeypatch):
    monkeypatch.setenv("OGIRI_DEPLOY_WAIT_INTERVAL_S", "12")
    monkeypatch.setenv("OGIRI_ALARM_MAX_5XX_RATE", "0.02")
    params = resolved_defaults(get_settings())
    assert params["deployment_strategy"] == "canary" and params["wait_interval_seconds"] == 12
    assert params["alarm_max_5xx_rate"] == 0.02 and params["alarm_max_p99_latency_ms"] == 5000.0


@pytest.mark.parametrize(("strategy", "size_key", "value"), [
    ("canary", "CanarySize", 10), ("linear", "LinearStepSize", 25), ("all_at_once", None, None)])
def test_deployment_config_per_strategy(strategy, size_key, value):
    params = resolved_defaults(get_settings(), deployment_strategy=strategy)
    config = guardrails.deployment_config(params, ["ogiri-a", "ogiri-b"])
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == strategy.upper() and routing["WaitIntervalInSeconds"] == 300
    assert set(routing) - {"Type", "WaitIntervalInSeconds"} == ({size_key} if size_key else set())
    if size_key:
        assert routing[size_key] == {"Type": "CAPACITY_PERCENT", "Value": value}
    assert config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] == 3600
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "ogiri-a"}, {"AlarmName": "ogiri-b"}]}


def test_alarms_watch_only_the_new_fleet_and_are_named_per_endpoint_and_variant():
    settings = get_settings()
    requests = guardrails.alarm_requests(resolved_defaults(settings), settings, CONFIG)
    assert [r["AlarmName"] for r in requests] == ["ogiri-captioner-AllTraffic-5xx-rate",
                                                  "ogiri-captioner-AllTraffic-p99-latency"]
    for r in requests:
        assert {"Name": "EndpointConfigName", "Value": "ogiri-epc-x"} in r["Dimensions"]
    rate, latency = requests
    assert (rate["MetricName"], rate["Statistic"], rate["Threshold"]) == ("Invocation5XXErrors", "Average", 0.05)
    assert (latency["MetricName"], latency["ExtendedStatistic"], latency["Threshold"]) == ("ModelLatency", "p99",
                                                                                           5_000_000)
    assert guardrails.alarm_name("captions", "v1", "5xx-rate") == "ogiri-captions-v1-5xx-rate"
    assert guardrails.tripped_alarm("… ALARM state during the deployment: ogiri-captioner-AllTraffic-5xx-rate.",
                                    [r["AlarmName"] for r in requests]) == "ogiri-captioner-AllTraffic-5xx-rate"
    assert guardrails.tripped_alarm("did not pass the ping health check", ["ogiri-a"]) is None
