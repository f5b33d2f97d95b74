"""UpdateEndpoint ``DeploymentConfig``: validation as the SageMaker API does it, and the traffic plan.

Shapes (SageMaker API reference: DeploymentConfig, BlueGreenUpdatePolicy, TrafficRoutingConfig,
CapacitySize, AutoRollbackConfig): ``TrafficRoutingConfiguration.Type`` ALL_AT_ONCE | CANARY |
LINEAR with ``WaitIntervalInSeconds`` 0–3600 (required); ``CanarySize`` (CANARY) at most 50% of
the variant's instances; ``LinearStepSize`` (LINEAR) 10–50%; ``CapacitySize.Type``
INSTANCE_COUNT | CAPACITY_PERCENT; ``MaximumExecutionTimeoutInSeconds`` 600–28800 and larger than
the waits; ``TerminationWaitInSeconds`` 0–3600; ``AutoRollbackConfiguration.Alarms`` 1–10 names.
``RollingUpdatePolicy`` is not emulated and is refused clearly.

Traffic plan (developer guide, deployment guardrails): the new fleet takes each step's share in
turn (canary: the canary, then all; linear: n equal steps; all at once: everything), and every
step, the last included, is followed by a baking period of ``WaitIntervalInSeconds`` during which
the alarms are watched. The emulator runs one model server per variant, so a share of capacity is a
share of requests, sampled per request.
"""

from __future__ import annotations

import math
from typing import Any

from moto.sagemaker.exceptions import ValidationError

TYPES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
CAPACITY_TYPES = ("INSTANCE_COUNT", "CAPACITY_PERCENT")
#: Used when the request names no MaximumExecutionTimeoutInSeconds (SageMaker's documented maximum).
DEFAULT_TIMEOUT_S = 28800


def _constraint(path: str, value: Any, rule: str) -> ValidationError:
    return ValidationError(
        message=f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy constraint: {rule}"
    )


def _int_in(value: Any, path: str, low: int, high: int) -> int:
    if value is None:
        return value
    number = int(value)
    if number < low:
        raise _constraint(path, value, f"Member must have value greater than or equal to {low}")
    if number > high:
        raise _constraint(path, value, f"Member must have value less than or equal to {high}")
    return number


def _share(size: dict[str, Any] | None, instances: int, path: str, low: float, high: float, what: str) -> float:
    """A CapacitySize as the fraction of the variant's capacity it turns on."""
    if not size:
        raise ValidationError(message=f"{what} must be specified for traffic routing type "
                              f"{'CANARY' if what == 'CanarySize' else 'LINEAR'}.")
    kind, value = size.get("Type"), int(size.get("Value") or 0)
    if kind not in CAPACITY_TYPES:
        raise _constraint(f"{path}.type", kind, f"Member must satisfy enum value set: [{', '.join(CAPACITY_TYPES)}]")
    if value < 1:
        raise _constraint(f"{path}.value", value, "Member must have value greater than or equal to 1")
    share = value / 100 if kind == "CAPACITY_PERCENT" else value / max(instances, 1)
    if not low - 1e-9 <= share <= high + 1e-9:
        bounds = f"less than or equal to {high:.0%}" if low == 0 else f"between {low:.0%} and {high:.0%}"
        raise ValidationError(message=f"{what} {kind} {value} must be {bounds} of the variant's total "
                              f"instance count ({instances}).")
    return share


def validate(config: dict[str, Any] | None, variants: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Refuse a DeploymentConfig SageMaker would refuse; returns it unchanged otherwise."""
    if not config:
        return None
    if config.get("RollingUpdatePolicy"):
        raise ValidationError(message="localaws emulates BlueGreenUpdatePolicy only; RollingUpdatePolicy "
                              "is not supported by the emulator.")
    policy = config.get("BlueGreenUpdatePolicy")
    alarms = (config.get("AutoRollbackConfiguration") or {}).get("Alarms")
    if alarms is not None and not 1 <= len(alarms) <= 10:
        raise _constraint("deploymentConfig.autoRollbackConfiguration.alarms", alarms,
                          "Member must have length less than or equal to 10 and greater than or equal to 1")
    if not policy:
        return config
    base = "deploymentConfig.blueGreenUpdatePolicy"
    routing = policy.get("TrafficRoutingConfiguration")
    if not routing:
        raise ValidationError(message=f"TrafficRoutingConfiguration must be specified in {base}.")
    kind = routing.get("Type")
    if kind not in TYPES:
        raise _constraint(f"{base}.trafficRoutingConfiguration.type", kind,
                          f"Member must satisfy enum value set: [{', '.join(TYPES)}]")
    if routing.get("WaitIntervalInSeconds") is None:
        raise ValidationError(message="WaitIntervalInSeconds must be specified in TrafficRoutingConfiguration.")
    wait = _int_in(routing["WaitIntervalInSeconds"], f"{base}.trafficRoutingConfiguration.waitIntervalInSeconds",
                   0, 3600)
    termination = _int_in(policy.get("TerminationWaitInSeconds"), f"{base}.terminationWaitInSeconds", 0, 3600) or 0
    timeout = _int_in(policy.get("MaximumExecutionTimeoutInSeconds"), f"{base}.maximumExecutionTimeoutInSeconds",
                      600, 28800)
    if timeout is not None and timeout <= wait + termination:
        raise ValidationError(message="MaximumExecutionTimeoutInSeconds must be larger than the total waiting "
                              "time specified in TerminationWaitInSeconds and WaitIntervalInSeconds.")
    steps(config, variants)  # the sizes against each variant's instance count
    return config


def steps(config: dict[str, Any] | None, variants: list[dict[str, Any]]) -> list[float]:
    """The new fleet's share of traffic after each step (the last is 1.0)."""
    routing = ((config or {}).get("BlueGreenUpdatePolicy") or {}).get("TrafficRoutingConfiguration") or {}
    kind = routing.get("Type", "ALL_AT_ONCE")
    instances = min((int(v.get("InitialInstanceCount") or 1) for v in variants), default=1)
    path = "deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration"
    if kind == "CANARY":
        return [_share(routing.get("CanarySize"), instances, f"{path}.canarySize", 0, 0.5, "CanarySize"), 1.0]
    if kind == "LINEAR":
        step = _share(routing.get("LinearStepSize"), instances, f"{path}.linearStepSize", 0.1, 0.5, "LinearStepSize")
        count = math.ceil(1 / step - 1e-9)
        return [min(step * (i + 1), 1.0) for i in range(count - 1)] + [1.0]
    return [1.0]


def timings(config: dict[str, Any] | None) -> tuple[float, float, float]:
    """(WaitIntervalInSeconds, TerminationWaitInSeconds, MaximumExecutionTimeoutInSeconds)."""
    policy = (config or {}).get("BlueGreenUpdatePolicy") or {}
    routing = policy.get("TrafficRoutingConfiguration") or {}
    return (float(routing.get("WaitIntervalInSeconds") or 0), float(policy.get("TerminationWaitInSeconds") or 0),
            float(policy.get("MaximumExecutionTimeoutInSeconds") or DEFAULT_TIMEOUT_S))


def alarm_names(config: dict[str, Any] | None) -> list[str]:
    """The auto-rollback alarms' names."""
    return [a["AlarmName"] for a in ((config or {}).get("AutoRollbackConfiguration") or {}).get("Alarms") or []]


def alarm_reason(names: list[str]) -> str:
    """FailureReason of a deployment an alarm rolled back (the emulator's wording; see the report)."""
    return (f"Endpoint update was rolled back because the following CloudWatch alarm(s) went into ALARM state "
            f"during the deployment: {', '.join(names)}.")


def timeout_reason(timeout_s: float) -> str:
    """FailureReason of a deployment that ran past MaximumExecutionTimeoutInSeconds."""
    return (f"Endpoint update was rolled back because the deployment did not complete within "
            f"MaximumExecutionTimeoutInSeconds ({int(timeout_s)} seconds).")


class AlarmsUnreadable(Exception):
    """SageMaker could not read the auto-rollback alarms (the message says why)."""


class AlarmReader:
    """Reads the auto-rollback alarms as SageMaker does: DescribeAlarms as the new fleet's execution role
    (the developer guide: the role needs ``cloudwatch:DescribeAlarms`` on them), through the emulator
    itself, so IAM enforcement and the IAM call tally see the call."""

    def __init__(self, account: str, region: str, role_arn: str | None, model_arn: str):
        self.account, self.region, self.role_arn, self.model_arn = account, region, role_arn, model_arn
        self._client: Any = None

    def _cloudwatch(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            from localaws.sagemaker import roles
            from localaws.sagemaker.common import endpoint_url

            try:
                creds = roles.credentials(self.role_arn, self.account, self.region, self.model_arn)
            except roles.RoleUnusable as exc:
                raise AlarmsUnreadable(str(exc)) from exc
            self._client = boto3.client(
                "cloudwatch", endpoint_url=endpoint_url(), region_name=self.region,
                aws_access_key_id=creds["AWS_ACCESS_KEY_ID"], aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=creds.get("AWS_SESSION_TOKEN"),
                config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30),
            )
        return self._client

    def tripped(self, names: list[str]) -> list[str]:
        """The named alarms that are in ALARM now."""
        from botocore.exceptions import ClientError

        if not names:
            return []
        try:
            alarms = self._cloudwatch().describe_alarms(AlarmNames=names)["MetricAlarms"]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise AlarmsUnreadable(
                f"Unable to describe the AutoRollbackConfiguration alarms with the execution role {self.role_arn}: "
                f"{error.get('Code')}: {error.get('Message')}"
            ) from exc
        return [a["AlarmName"] for a in alarms if a["StateValue"] == "ALARM"]
