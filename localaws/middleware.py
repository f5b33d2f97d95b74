"""WSGI middleware around moto's app: ``/_localaws/*`` admin routes and fault injection.

Routes:
  ``GET /_localaws/health``          -> ``{"status": "ok"}``
  ``GET /_localaws/faults``          -> ``{"rules": [...]}`` with ``fired``/``matched`` counters
  ``POST /_localaws/faults``         -> add one rule (JSON object) or several (JSON list)
  ``DELETE /_localaws/faults``       -> remove every rule
  ``DELETE /_localaws/faults/<id>``  -> remove one rule
  ``GET /_localaws/iam``             -> ``{"enforce": bool}``
  ``POST /_localaws/iam``            -> ``{"enforce": bool}`` turns IAM enforcement on/off
  ``GET /_localaws/iam/calls``       -> ``{"calls": [{"principal", "action", "allowed", "denied",
                                        "resources"}]}``: every decision under enforcement;
                                        ``DELETE`` clears it
  ``GET|POST|DELETE /_localaws/workforce`` -> the simulated Ground Truth workforce's configurations
                                        (``localaws.sagemaker.labeling.workforce``)
  ``GET /_localaws/sagemaker/capture``        -> data capture counts per endpoint/variant + clock offset
  ``POST /_localaws/sagemaker/capture/flush``  -> write every buffered capture record now
  ``GET|POST /_localaws/sagemaker/capture/clock`` -> ``{"offset_seconds": n}``: the capture clock offset
  ``GET /_localaws/sagemaker/<kind>/<name>`` -> an HTML page of one job or endpoint (Describe + log),
                                        where the Airflow tasks' extra links point locally
  ``GET /_localaws/sns/published[?topic_arn=ARN]`` -> ``{"topics": {arn: [{"message_id", "subject",
                                        "message", "message_attributes", "group_id"}]}}``: what was
                                        published to each topic (localaws.sns)
Every other request goes to moto, unless IAM enforcement denies it or a fault rule fires for it
first. After ``POST /moto-api/reset`` the ``reset_hooks`` run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

from localaws.faults import (
    FaultRuleError,
    FaultStore,
    error_response,
    operation_from_environ,
    service_from_environ,
)
from localaws.iam import IamSwitch
from localaws.iam.requests import drain as _drain

ADMIN_PREFIX = "/_localaws"
_MAX_ADMIN_BODY = 1024 * 1024


class LocalAwsMiddleware:
    """Wraps a WSGI app (moto's dispatcher) with admin routes and fault injection."""

    def __init__(self, app: Callable, faults: FaultStore | None = None, iam: IamSwitch | None = None):
        self.app = app
        self.faults = faults if faults is not None else FaultStore()
        self.iam = iam if iam is not None else IamSwitch()
        # Called after moto's state is reset (``POST /moto-api/reset``), e.g. to stop running jobs.
        self.reset_hooks: list[Callable[[], Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            return self._admin(environ, start_response, path[len(ADMIN_PREFIX) :])
        if path.rstrip("/") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            result = self.app(environ, start_response)
            for hook in self.reset_hooks:
                try:
                    hook()
                except Exception as e:  # a failing hook must not break the reset itself
                    print(f"localaws: reset hook failed: {e!r}", file=sys.stderr, flush=True)
            return result
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        if self.iam.enforce:
            return self.iam.handle(environ, start_response, self._serve)
        return self._serve(environ, start_response)

    def _serve(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        """Fault injection, then moto."""
        service = service_from_environ(environ)
        if self.faults.covers(service):  # no rule for it: leave the request untouched
            operation = operation_from_environ(environ, service)
            rule = self.faults.check(service, operation)
            if rule is not None:
                _drain(environ)
                status, headers, body = error_response(rule, environ, service)
                headers.append(("Content-Length", str(len(body))))
                start_response(status, headers)
                return [body]
        return self.app(environ, start_response)

    # --- admin API ---------------------------------------------------------------------------

    def _admin(self, environ: dict[str, Any], start_response: Callable, route: str) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        route = route.rstrip("/")
        if route == "/health" and method in ("GET", "HEAD"):
            return _json(start_response, 200, {"status": "ok"})
        if route == "/faults":
            if method == "GET":
                return _json(start_response, 200, {"rules": self.faults.snapshot()})
            if method == "DELETE":
                return _json(start_response, 200, {"removed": self.faults.clear()})
            if method == "POST":
                data, error = _json_body(environ)
                if error:
                    return _json(start_response, 400, {"error": error})
                try:
                    if isinstance(data, list):
                        rules = [self.faults.add(item) for item in data]
                        return _json(start_response, 201, {"rules": [r.to_json() for r in rules]})
                    return _json(start_response, 201, self.faults.add(data).to_json())
                except FaultRuleError as e:
                    return _json(start_response, 400, {"error": str(e)})
            return _json(
                start_response, 405, {"error": f"method {method} not allowed on {ADMIN_PREFIX}/faults"}
            )
        if route == "/iam":
            return self._admin_iam(environ, start_response, method)
        if route == "/iam/calls" and method in ("GET", "DELETE"):
            if method == "GET":
                return _json(start_response, 200, {"calls": self.iam.calls.snapshot()})
            return _json(start_response, 200, {"removed": self.iam.calls.clear()})
        if route == "/workforce":
            return _admin_workforce(environ, start_response, method)
        if route == "/sagemaker/capture" or route.startswith("/sagemaker/capture/"):
            return _admin_capture(environ, start_response, method, route)
        if route.startswith("/sagemaker/") and method in ("GET", "HEAD"):
            from localaws import job_pages

            return job_pages.respond(start_response, route, environ.get("QUERY_STRING", ""))
        if route == "/sns/published" and method == "GET":
            from localaws import sns

            return _json(start_response, *sns.respond(environ.get("QUERY_STRING", "")))
        if route.startswith("/faults/") and method == "DELETE":
            rule_id = route.split("/", 2)[2]
            if self.faults.remove(rule_id):
                return _json(start_response, 200, {"removed": 1})
            return _json(start_response, 404, {"error": f"no fault rule with id {rule_id!r}"})
        return _json(
            start_response, 404, {"error": f"unknown localaws admin route {method} {ADMIN_PREFIX}{route}"}
        )

    def _admin_iam(self, environ: dict[str, Any], start_response: Callable, method: str) -> Iterable[bytes]:
        if method == "GET":
            return _json(start_response, 200, self.iam.state())
        if method != "POST":
            return _json(start_response, 405, {"error": f"method {method} not allowed on {ADMIN_PREFIX}/iam"})
        data, error = _json_body(environ)
        if error:
            return _json(start_response, 400, {"error": error})
        if not isinstance(data, dict) or set(data) != {"enforce"} or not isinstance(data["enforce"], bool):
            return _json(start_response, 400, {"error": 'body must be {"enforce": true} or {"enforce": false}'})
        self.iam.set(data["enforce"])
        return _json(start_response, 200, self.iam.state())


def _admin_workforce(environ: dict[str, Any], start_response: Callable, method: str) -> Iterable[bytes]:
    """GET: every configuration; POST: set one (a job's or the default); DELETE: clear them."""
    from localaws.sagemaker.labeling.workforce import STORE, WorkforceConfigError

    if method == "GET":
        return _json(start_response, 200, {"configs": STORE.snapshot()})
    if method == "DELETE":
        return _json(start_response, 200, {"removed": STORE.clear()})
    if method != "POST":
        return _json(start_response, 405, {"error": f"method {method} not allowed on {ADMIN_PREFIX}/workforce"})
    data, error = _json_body(environ)
    if error:
        return _json(start_response, 400, {"error": error})
    try:
        return _json(start_response, 201, STORE.set(data))
    except WorkforceConfigError as e:
        return _json(start_response, 400, {"error": str(e)})


def _admin_capture(environ: dict[str, Any], start_response: Callable, method: str, route: str) -> Iterable[bytes]:
    """Endpoint data capture controls (``localaws.sagemaker.capture``)."""
    from localaws.sagemaker import capture

    if route == "/sagemaker/capture" and method == "GET":
        return _json(start_response, 200, capture.stats())
    if route == "/sagemaker/capture/flush" and method == "POST":
        return _json(start_response, 200, capture.flush_all())
    if route == "/sagemaker/capture/clock" and method == "GET":
        return _json(start_response, 200, capture.clock())
    if route == "/sagemaker/capture/clock" and method == "POST":
        data, error = _json_body(environ)
        if error:
            return _json(start_response, 400, {"error": error})
        offset = data.get("offset_seconds") if isinstance(data, dict) else None
        if not isinstance(data, dict) or set(data) != {"offset_seconds"} or isinstance(offset, bool) \
                or not isinstance(offset, (int, float)):
            return _json(start_response, 400, {"error": 'body must be {"offset_seconds": <number>}'})
        return _json(start_response, 200, capture.set_offset(offset))
    return _json(start_response, 404, {"error": f"unknown localaws admin route {method} {ADMIN_PREFIX}{route}"})


def _json_body(environ: dict[str, Any]) -> tuple[Any, str | None]:
    """An admin request's JSON body (``None`` when empty), or the 400 message when it is not JSON."""
    try:
        return json.loads(_read_body(environ) or b"null"), None
    except (ValueError, UnicodeDecodeError) as e:
        return None, f"body is not valid JSON: {e}"


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > _MAX_ADMIN_BODY:
        raise ValueError(f"admin request body over {_MAX_ADMIN_BODY} bytes")
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _json(start_response: Callable, status: int, payload: Any) -> list[bytes]:
    from http import HTTPStatus

    body = json.dumps(payload).encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
