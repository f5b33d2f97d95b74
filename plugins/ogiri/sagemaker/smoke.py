"""Endpoint smoke test (real invocations with held-out images) and rollback to the previous config."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Tokens a sane caption never shows (a decoder leaking its specials is broken).
SPECIAL_TOKENS = ("<unk>", "<pad>", "<bos>", "<eos>", "<s>", "</s>", "[UNK]", "[PAD]", "\ufffd")


def vocabulary_of(captions: Iterable[str]) -> frozenset[str]:
    """The character vocabulary of ``captions`` (Japanese captions have no spaces: characters it is)."""
    return frozenset(ch for caption in captions for ch in caption if not ch.isspace())


def caption_problems(caption: Any, vocabulary: frozenset[str] | None, max_chars: int = 280) -> list[str]:
    """Why ``caption`` is not a sane caption (empty list when it is)."""
    if not isinstance(caption, str):
        return [f"caption is {type(caption).__name__}, not text"]
    text = caption.strip()
    if not text:
        return ["caption is empty"]
    problems = []
    if len(text) > max_chars:
        problems.append(f"caption has {len(text)} characters (> {max_chars})")
    leaked = [t for t in SPECIAL_TOKENS if t in text]
    if leaked:
        problems.append(f"caption contains special tokens {leaked}")
    if vocabulary:
        unknown = sorted({ch for ch in text if not ch.isspace() and ch not in vocabulary})
        if unknown:
            problems.append(f"caption uses characters outside the training vocabulary: {''.join(unknown[:10])!r}")
    return problems


@dataclass
class SmokeResult:
    """Outcome of :func:`smoke_test`."""

    endpoint_name: str
    ok: bool
    failures: list[str] = field(default_factory=list)
    captions: list[dict[str, Any]] = field(default_factory=list)
    max_latency_s: float = 0.0
    mean_latency_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (XCom friendly)."""
        return asdict(self)


def smoke_test(
    runtime_client: Any,
    endpoint_name: str,
    samples: Sequence[tuple[str, bytes]],
    *,
    vocabulary: frozenset[str] | None,
    max_latency_s: float,
) -> SmokeResult:
    """Invoke the endpoint once per ``(id, image bytes)`` sample (``application/json`` with
    ``image_b64``, see docs/interfaces.md) and check every answer and its latency."""
    if not samples:
        raise ValueError("smoke test needs at least one held-out image")
    result = SmokeResult(endpoint_name=endpoint_name, ok=False)
    latencies = []
    for sample_id, body in samples:
        request = json.dumps({"image_b64": base64.b64encode(body).decode("ascii")})
        started = time.perf_counter()
        try:
            response = runtime_client.invoke_endpoint(
                EndpointName=endpoint_name, ContentType="application/json", Accept="application/json", Body=request
            )
            payload = json.loads(response["Body"].read().decode("utf-8"))
        except Exception as exc:  # any error answering is a smoke failure, reported with its cause
            result.failures.append(f"{sample_id}: invocation failed: {exc}")
            continue
        finally:
            latencies.append(time.perf_counter() - started)
        caption = payload.get("caption") if isinstance(payload, dict) else None
        problems = caption_problems(caption, vocabulary)
        result.captions.append({"id": sample_id, "caption": caption, "latency_s": round(latencies[-1], 3)})
        result.failures.extend(f"{sample_id}: {p}" for p in problems)
        if latencies[-1] > max_latency_s:
            result.failures.append(f"{sample_id}: latency {latencies[-1]:.2f}s > {max_latency_s:.2f}s")
    result.max_latency_s = round(max(latencies), 3)
    result.mean_latency_s = round(sum(latencies) / len(latencies), 3)
    result.ok = not result.failures
    return result


def serving(sm_client: Any, endpoint_name: str) -> dict[str, Any] | None:
    """What ``endpoint_name`` serves now: status, endpoint config, model name and artifact; None if absent."""
    from botocore.exceptions import ClientError

    try:
        endpoint = sm_client.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"ValidationException", "ResourceNotFound"}:
            return None
        raise
    config_name = endpoint["EndpointConfigName"]
    config = sm_client.describe_endpoint_config(EndpointConfigName=config_name)
    model_name = config["ProductionVariants"][0]["ModelName"]
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
    }


def wait_in_service(sm_client: Any, endpoint_name: str, *, poll_s: float, timeout_s: float) -> dict[str, Any]:
    """Poll until the endpoint leaves Creating/Updating/RollingBack; returns the last description."""
    deadline = time.monotonic() + timeout_s
    while True:
        endpoint = sm_client.describe_endpoint(EndpointName=endpoint_name)
        if endpoint["EndpointStatus"] not in {"Creating", "Updating", "SystemUpdating", "RollingBack"}:
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
