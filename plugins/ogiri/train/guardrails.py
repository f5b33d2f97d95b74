"""Guarded endpoint updates: the auto-rollback alarms and the ``DeploymentConfig`` of one run.

Pure functions of (settings, run parameters, run names): no AWS calls. Per endpoint and variant the
run puts two CloudWatch alarms on the *new* fleet — the metrics' ``EndpointConfigName`` dimension is
this run's endpoint config, so the old fleet's traffic never trips them:

* ``<endpoint>-<variant>-5xx-rate``: Average of ``Invocation5XXErrors`` (1 per failed request, 0
  per answered one) above ``alarm_max_5xx_rate``;
* ``<endpoint>-<variant>-p99-latency``: p99 of ``ModelLatency`` (microseconds) above
  ``alarm_max_p99_latency_ms``.

Names start with ``ogiri-`` (the worker's IAM grant is scoped to that prefix) and are the same for
every run, so PutMetricAlarm updates them in place: idempotent, one pair per endpoint and variant.
"""

from __future__ import annotations

from typing import Any

ALARM_KINDS = ("5xx-rate", "p99-latency")
STRATEGIES = ("all_at_once", "canary", "linear")


def alarm_name(endpoint: str, variant: str, kind: str) -> str:
    """``ogiri-…`` name of one alarm of ``endpoint``/``variant`` (≤ 255 chars, CloudWatch's limit)."""
    base = endpoint if endpoint.startswith("ogiri-") else f"ogiri-{endpoint}"
    return f"{base}-{variant}-{kind}"[:255]


def variants(endpoint_config: dict[str, Any]) -> list[str]:
    """Variant names of a CreateEndpointConfig request."""
    return [v["VariantName"] for v in endpoint_config["ProductionVariants"]]


def alarm_requests(params: dict[str, Any], settings: Any, endpoint_config: dict[str, Any]) -> list[dict[str, Any]]:
    """PutMetricAlarm requests watching the new fleet of ``endpoint_config`` (one pair per variant)."""
    endpoint, config = settings.endpoint_name, endpoint_config["EndpointConfigName"]
    requests = []
    for variant in variants(endpoint_config):
        dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant},
                {"Name": "EndpointConfigName", "Value": config}]
        common = {"Namespace": "AWS/SageMaker", "Dimensions": dims, "Period": int(settings.alarm_period_s),
                  "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "ComparisonOperator": "GreaterThanThreshold",
                  "TreatMissingData": "notBreaching"}
        rate = float(params["alarm_max_5xx_rate"])
        latency_ms = float(params["alarm_max_p99_latency_ms"])
        requests.append({
            "AlarmName": alarm_name(endpoint, variant, "5xx-rate"), "MetricName": "Invocation5XXErrors",
            "Statistic": "Average", "Threshold": rate, **common,
            "AlarmDescription": f"ogiri: roll back a deployment of {endpoint} when more than {rate:.1%} of the "
                                f"new fleet's requests fail (5XX)",
        })
        requests.append({
            "AlarmName": alarm_name(endpoint, variant, "p99-latency"), "MetricName": "ModelLatency",
            "ExtendedStatistic": "p99", "Unit": "Microseconds", "Threshold": latency_ms * 1000, **common,
            "AlarmDescription": f"ogiri: roll back a deployment of {endpoint} when the new fleet's p99 model "
                                f"latency exceeds {latency_ms:g} ms",
        })
    return requests


def deployment_config(params: dict[str, Any], alarms: list[str]) -> dict[str, Any]:
    """UpdateEndpoint ``DeploymentConfig``: blue/green with the run's traffic shifting and timings,
    rolled back automatically when one of ``alarms`` fires."""
    strategy = params["deployment_strategy"]
    if strategy not in STRATEGIES:
        raise ValueError(f"deployment_strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    routing: dict[str, Any] = {"Type": strategy.upper(), "WaitIntervalInSeconds": int(params["wait_interval_seconds"])}
    if strategy == "canary":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": int(params["canary_percent"])}
    elif strategy == "linear":
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": int(params["linear_step_percent"])}
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": int(params["termination_wait_seconds"]),
            "MaximumExecutionTimeoutInSeconds": int(params["max_execution_timeout_seconds"]),
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in alarms]},
    }


def describe_strategy(params: dict[str, Any]) -> str:
    """One line for the log: how the update shifts traffic."""
    strategy, wait = params["deployment_strategy"], params["wait_interval_seconds"]
    if strategy == "canary":
        return f"canary {params['canary_percent']}% then the rest, baking {wait}s after each step"
    if strategy == "linear":
        return f"linear steps of {params['linear_step_percent']}%, baking {wait}s after each step"
    return f"all at once, then baking {wait}s"


def tripped_alarm(failure_reason: str | None, alarms: list[str]) -> str | None:
    """Which of ``alarms`` a rolled-back endpoint's FailureReason names (None: not an alarm rollback)."""
    reason = failure_reason or ""
    return next((a for a in sorted(alarms, key=len, reverse=True) if a in reason), None)
