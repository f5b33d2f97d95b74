"""``GET /_localaws/sagemaker/<kind>/<name>?region=…``: a read-only HTML page for one SageMaker job
or endpoint, so that Airflow's extra links have somewhere local to point (the AWS console locally).

It shows what ``Describe*`` answers and the resource's CloudWatch log lines, read from the emulator's
own state (no request is signed, so it is an admin route like the rest of ``/_localaws``). An unknown
kind is a 404; an unknown name is a 404 with the Describe call's own wording.
"""

from __future__ import annotations

import html
import json
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

#: kind → (Describe method of moto's SageMaker backend, CloudWatch log group or None)
KINDS = {
    "training": ("describe_training_job", "/aws/sagemaker/TrainingJobs"),
    "processing": ("describe_processing_job", "/aws/sagemaker/ProcessingJobs"),
    "transform": ("describe_transform_job", "/aws/sagemaker/TransformJobs"),
    "endpoint": ("describe_endpoint", "/aws/sagemaker/Endpoints/{name}"),
    "tuning": ("describe_hyper_parameter_tuning_job", None),  # its training jobs have their own pages
    "labeling": ("describe_labeling_job", "/aws/sagemaker/LabelingJobs"),
}
DEFAULT_ACCOUNT = "123456789012"
_MAX_LOG_LINES = 2000


def page(route: str, query: str) -> tuple[int, str]:
    """(HTTP status, HTML) for ``/sagemaker/<kind>/<name>``."""
    parts = route.strip("/").split("/", 2)
    if len(parts) != 3 or parts[1] not in KINDS:
        return 404, _html("not found", f"<p>Unknown page. Kinds: {', '.join(sorted(KINDS))}.</p>")
    kind, name = parts[1], urllib.parse.unquote(parts[2])
    params = urllib.parse.parse_qs(query)
    region = (params.get("region") or ["us-east-1"])[0]
    account = (params.get("account") or [DEFAULT_ACCOUNT])[0]
    describe, log_group = KINDS[kind]
    try:
        description = getattr(_sagemaker(account, region), describe)(name)
    except Exception as exc:  # moto's ValidationError etc.: the Describe call's own wording
        message = getattr(exc, "message", None) or str(exc)
        return 404, _html(f"{kind} {name}", f"<p>{html.escape(message)}</p>")
    status = _status(description)
    lines = _log_lines(account, region, log_group.format(name=name), name) if log_group else []
    body = (
        f"<p>Status: <strong>{html.escape(str(status))}</strong> · region {html.escape(region)}</p>"
        f"<h2>Describe</h2><pre>{html.escape(json.dumps(description, indent=2, default=str))}</pre>"
        f"<h2>Log ({len(lines)} lines)</h2><pre>{html.escape(chr(10).join(lines)) or '(no log lines yet)'}</pre>"
    )
    return 200, _html(f"SageMaker {kind} {name}", body)


def respond(start_response: Callable, route: str, query: str) -> Iterable[bytes]:
    """WSGI answer for :func:`page`."""
    status, text = page(route, query)
    data = text.encode("utf-8")
    phrase = "OK" if status == 200 else "Not Found"
    start_response(
        f"{status} {phrase}",
        [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(data)))],
    )
    return [data]


def _status(description: dict[str, Any]) -> str | None:
    for key in ("TrainingJobStatus", "ProcessingJobStatus", "TransformJobStatus", "EndpointStatus",
                "HyperParameterTuningJobStatus", "LabelingJobStatus"):
        if key in description:
            return description[key]
    return None


def _sagemaker(account: str, region: str) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[account][region]


def _log_lines(account: str, region: str, group: str, name: str) -> list[str]:
    """Messages of the job's streams (``<name>/…``; every stream of an endpoint's own group)."""
    from moto.logs.models import logs_backends

    log_group = logs_backends[account][region].groups.get(group)
    if log_group is None:
        return []
    lines: list[str] = []
    for stream_name in sorted(log_group.streams):
        if group.startswith("/aws/sagemaker/Endpoints/") or stream_name.startswith(f"{name}/"):
            stream = log_group.streams[stream_name]
            lines.extend(f"[{stream_name.split('/', 1)[-1]}] {e.message}" for e in stream.events)
    return lines[-_MAX_LOG_LINES:]


def _html(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)} · localaws</title>"
        "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em;overflow:auto}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
