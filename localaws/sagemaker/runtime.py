"""sagemaker-runtime InvokeEndpoint that calls the named endpoint's real model server.

Replaces moto's `SageMakerRuntimeResponse.invoke_endpoint` (which parses the endpoint name as
None and returns a fixed body). A handler error becomes `ModelError` (HTTP 424) with
`OriginalStatusCode` and `OriginalMessage`; an unknown or not-in-service endpoint is a
`ValidationError`, as in AWS. Every request a model server answers (or fails to) publishes the
endpoint invocation metrics (`metrics.py`) for the variant and fleet that took it.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any
from urllib.parse import unquote

from moto.core.exceptions import ServiceException

from localaws.sagemaker import metrics
from localaws.sagemaker.endpoints import EndpointNotReady

_PATH = re.compile(r"/endpoints/([^/]+)/invocations")
SERVING_STATUSES = ("InService", "Updating", "RollingBack", "SystemUpdating")


class RuntimeValidationError(ServiceException):
    """sagemaker-runtime's ValidationError (HTTP 400)."""

    code = "ValidationError"


class ModelError(ServiceException):
    """The model's handlers answered with an error (HTTP 424)."""

    code = "ModelError"

    def __init__(self, message: str, original_status: int, original_message: str, log_stream_arn: str):
        super().__init__(message)
        self.OriginalStatusCode = original_status
        self.OriginalMessage = original_message
        self.LogStreamArn = log_stream_arn
        self.answered = 0  #: the model server's HTTP status; 0 when it did not answer


def invoke_endpoint(self: Any) -> tuple[int, dict[str, str], bytes]:
    """Handler installed on moto's SageMakerRuntimeResponse."""
    from moto.sagemaker.models import sagemaker_backends

    started = time.perf_counter()  # OverheadLatency: everything but the model server's own time
    match = _PATH.search(self.path or "")
    name = unquote(match.group(1)) if match else None
    backend = sagemaker_backends[self.current_account][self.region]
    endpoint = backend.endpoints.get(name) if name else None
    if endpoint is None:
        raise RuntimeValidationError(f"Endpoint {name} of account {self.current_account} not found.")
    if endpoint.endpoint_status not in SERVING_STATUSES:
        raise RuntimeValidationError(
            f"Endpoint {name} of account {self.current_account} is in status {endpoint.endpoint_status}; "
            "it serves invocations once InService."
        )
    runtime = backend.endpoint_runtime(name)
    try:
        if runtime is None:
            raise EndpointNotReady(f"Endpoint {name} has no running model server")
        variant, worker = runtime.pick(self.headers.get("X-Amzn-SageMaker-Target-Variant"))
    except EndpointNotReady as exc:
        raise RuntimeValidationError(str(exc)) from exc
    body = self.raw_body if isinstance(self.raw_body, bytes) else (self.raw_body or "").encode("utf-8")
    status, model_us = 0, None
    before = time.perf_counter()
    try:
        status, content_type, out = _call(worker, variant, body, self.headers, self.region, self.current_account, name)
        model_us = (time.perf_counter() - before) * 1e6
    except ModelError as exc:
        status = exc.answered
        model_us = (time.perf_counter() - before) * 1e6 if status else None
        raise
    finally:
        total_us = (time.perf_counter() - started) * 1e6
        metrics.invocation(self.current_account, self.region, name, variant, getattr(worker, "config_name", ""),
                           status, model_us, max(total_us - (model_us or 0), 0.0))
    _capture(runtime, variant, worker, (body, self.headers.get("Content-Type")), (out, content_type),
             self.headers.get("X-Amzn-SageMaker-Inference-Id"))
    headers = {"Content-Type": content_type or "application/octet-stream", "x-Amzn-Invoked-Production-Variant": variant}
    custom = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
    if custom:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = custom
    return 200, headers, out


def _capture(runtime: Any, variant: str, worker: Any, request: tuple[bytes, str | None],
             response: tuple[bytes, str | None], inference_id: str | None) -> None:
    """Data capture of an answered request (``capture.py``); a capture problem never fails the invocation."""
    capture, session = runtime.capture, getattr(worker, "session", None)
    if capture is None or session is None:
        return
    try:
        capture.capture(variant, session, request, response, inference_id)
    except Exception as exc:  # noqa: BLE001
        print(f"localaws: data capture for endpoint {runtime.name} failed: {type(exc).__name__}", file=sys.stderr,
              flush=True)


def _call(worker: Any, variant: str, body: bytes, headers: Any, region: str, account: str,
          name: str) -> tuple[int, str | None, bytes]:
    """The model server's answer; an error answer (or none) raises ModelError, as sagemaker-runtime does."""
    log_arn = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{name}"
    try:
        status, content_type, out = worker.invoke(body, headers.get("Content-Type"), headers.get("Accept"))
    except OSError as exc:
        raise ModelError(  # no answer: counted as a 5XX error, without a ModelLatency
            f"Received server error (0) from {variant} with message \"{exc}\". See {log_arn} for more information.",
            500,
            str(exc),
            log_arn,
        ) from exc
    if status != 200:
        text = out.decode("utf-8", "replace")
        kind = "client" if 400 <= status < 500 else "server"
        error = ModelError(
            f"Received {kind} error ({status}) from {variant} with message \"{text}\". "
            f"See {log_arn} for more information.",
            status,
            text,
            log_arn,
        )
        error.answered = status
        raise error
    return status, content_type, out
