"""Endpoint state shared by the pipelines that deploy or use an endpoint: what it serves now, waiting
for it to settle, and pointing it back at a previous endpoint config."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from ogiri.aws import not_found

#: Endpoint states in which SageMaker is still changing the endpoint.
CHANGING = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


def serving(sm_client: Any, endpoint_name: str) -> dict[str, Any] | None:
    """What ``endpoint_name`` serves now: status, endpoint config, (first) variant, model name and artifact,
    and the config's ``DataCaptureConfig`` (None when capture is off); None if the endpoint is absent."""
    try:
        endpoint = sm_client.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as exc:
        if not_found(exc):
            return None
        raise
    config_name = endpoint["EndpointConfigName"]
    config = sm_client.describe_endpoint_config(EndpointConfigName=config_name)
    variant = config["ProductionVariants"][0]
    model_name = variant["ModelName"]
    model = sm_client.describe_model(ModelName=model_name)
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    return {
        "endpoint_name": endpoint_name,
        "status": endpoint["EndpointStatus"],
        "failure_reason": endpoint.get("FailureReason"),
        "endpoint_config": config_name,
        "model_name": model_name,
        "model_artifact": container.get("ModelDataUrl"),
        "image": container.get("Image"),
        "variant_name": variant.get("VariantName"),
        "data_capture": config.get("DataCaptureConfig"),
    }


def wait_in_service(sm_client: Any, endpoint_name: str, *, poll_s: float, timeout_s: float) -> dict[str, Any]:
    """Poll until the endpoint leaves Creating/Updating/RollingBack; returns the last description."""
    deadline = time.monotonic() + timeout_s
    while True:
        endpoint = sm_client.describe_endpoint(EndpointName=endpoint_name)
        if endpoint["EndpointStatus"] not in CHANGING:
            return endpoint
        if time.monotonic() > deadline:
            raise TimeoutError(f"endpoint {endpoint_name} still {endpoint['EndpointStatus']} after {timeout_s}s")
        time.sleep(poll_s)


def rollback(
    sm_client: Any, endpoint_name: str, previous_config: str, *, poll_s: float = 15, timeout_s: float = 3600
) -> dict[str, Any]:
    """Point the endpoint back at ``previous_config`` (unless it is already there) and wait for InService."""
    endpoint = wait_in_service(sm_client, endpoint_name, poll_s=poll_s, timeout_s=timeout_s)
    if endpoint["EndpointConfigName"] != previous_config:
        sm_client.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=previous_config)
        endpoint = wait_in_service(sm_client, endpoint_name, poll_s=poll_s, timeout_s=timeout_s)
    if endpoint["EndpointStatus"] != "InService" or endpoint["EndpointConfigName"] != previous_config:
        raise RuntimeError(
            f"rollback of {endpoint_name} to {previous_config} did not complete: status "
            f"{endpoint['EndpointStatus']}, config {endpoint['EndpointConfigName']}, "
            f"reason {endpoint.get('FailureReason')}"
        )
    return endpoint
