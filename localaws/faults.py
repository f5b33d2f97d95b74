"""Fault injection: rules that make matching AWS calls fail with an AWS-shaped error.

A rule (JSON, see docs/interfaces.md) names a ``service`` (the SigV4 signing name, e.g.
``rekognition``, ``dynamodb``, ``s3``, ``sagemaker``), an optional ``operation`` (``DetectLabels``;
omitted or ``"*"`` matches every operation), the ``error`` code, an optional HTTP ``status``
(default 400) and ``message``, and how often it fires: ``count`` (the next N matching calls),
``rate`` (that fraction of matching calls, drawn from a generator seeded with ``seed``, default 0,
so a run is reproducible) or neither (every matching call).
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

_RULE_KEYS = {"service", "operation", "error", "status", "message", "count", "rate", "seed"}


class FaultRuleError(ValueError):
    """A fault rule that cannot be used (the message says why)."""


@dataclass
class FaultRule:
    """One fault rule and how many times it has fired."""

    service: str
    error: str
    operation: str | None = None
    status: int = 400
    message: str | None = None
    count: int | None = None
    rate: float | None = None
    seed: int = 0
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    fired: int = 0
    matched: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def from_json(cls, data: Any) -> FaultRule:
        """Validate a decoded JSON rule and build it; raises FaultRuleError on bad input."""
        if not isinstance(data, dict):
            raise FaultRuleError(f"a fault rule must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - _RULE_KEYS
        if unknown:
            raise FaultRuleError(
                f"unknown fault rule field(s) {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}"
            )
        for key in ("service", "error"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise FaultRuleError(f"fault rule needs a non-empty string {key!r}")
        operation = data.get("operation")
        if operation is not None and not isinstance(operation, str):
            raise FaultRuleError("fault rule 'operation' must be a string")
        status = data.get("status", 400)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise FaultRuleError(f"fault rule 'status' must be an HTTP error status 400-599, got {status!r}")
        count, rate = data.get("count"), data.get("rate")
        if count is not None and rate is not None:
            raise FaultRuleError("give a fault rule either 'count' or 'rate', not both")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise FaultRuleError(f"fault rule 'count' must be an integer >= 1, got {count!r}")
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0
        ):
            raise FaultRuleError(f"fault rule 'rate' must be a number in [0, 1], got {rate!r}")
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise FaultRuleError(f"fault rule 'seed' must be an integer, got {seed!r}")
        message = data.get("message")
        if message is not None and not isinstance(message, str):
            raise FaultRuleError("fault rule 'message' must be a string")
        return cls(
            service=data["service"].lower(),
            operation=None if operation in (None, "", "*") else operation,
            error=data["error"],
            status=status,
            message=message,
            count=count,
            rate=None if rate is None else float(rate),
            seed=seed,
        )

    def matches(self, service: str | None, operation: str | None) -> bool:
        """Whether a call to ``service``/``operation`` is one this rule is about."""
        if service is None or service.lower() != self.service:
            return False
        return self.operation is None or (
            operation is not None and operation.lower() == self.operation.lower()
        )

    def decide(self) -> bool:
        """For a matching call: whether it fails now (updates the counters). Caller holds the lock."""
        self.matched += 1
        if self.count is not None:
            fire = self.fired < self.count
        elif self.rate is not None:
            fire = self._rng.random() < self.rate
        else:
            fire = True
        if fire:
            self.fired += 1
        return fire

    def to_json(self) -> dict[str, Any]:
        """The rule as the admin API reports it."""
        out: dict[str, Any] = {
            "id": self.id,
            "service": self.service,
            "operation": self.operation or "*",
            "error": self.error,
            "status": self.status,
            "fired": self.fired,
            "matched": self.matched,
        }
        if self.message is not None:
            out["message"] = self.message
        if self.count is not None:
            out["count"] = self.count
            out["remaining"] = max(0, self.count - self.fired)
        if self.rate is not None:
            out["rate"] = self.rate
            out["seed"] = self.seed
        return out


class FaultStore:
    """Thread-safe list of fault rules."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, data: Any) -> FaultRule:
        """Validate and add one rule (decoded JSON)."""
        rule = FaultRule.from_json(data)
        with self._lock:
            self._rules.append(rule)
        return rule

    def load_json(self, text: str) -> list[FaultRule]:
        """Add the rules of a JSON list (or a single JSON object), e.g. from ``LOCALAWS_FAULTS``."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise FaultRuleError(f"fault rules are not valid JSON: {e}") from e
        items = data if isinstance(data, list) else [data]
        rules = [FaultRule.from_json(item) for item in items]
        with self._lock:
            self._rules.extend(rules)
        return rules

    def clear(self) -> int:
        """Remove every rule; returns how many there were."""
        with self._lock:
            n = len(self._rules)
            self._rules.clear()
        return n

    def remove(self, rule_id: str) -> bool:
        """Remove one rule by id; False if there is none."""
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def snapshot(self) -> list[dict[str, Any]]:
        """The rules and their counters, as JSON-ready dicts."""
        with self._lock:
            return [r.to_json() for r in self._rules]

    def covers(self, service: str | None) -> bool:
        """Whether any rule is about ``service`` (lets callers skip parsing other requests)."""
        if service is None:
            return False
        service = service.lower()
        with self._lock:
            return any(r.service == service for r in self._rules)

    def check(self, service: str | None, operation: str | None) -> FaultRule | None:
        """The rule that makes this call fail, if any (first matching rule that fires)."""
        if service is None:
            return None
        with self._lock:
            for rule in self._rules:
                if rule.matches(service, operation) and rule.decide():
                    return rule
        return None


# --- reading service/operation from a WSGI request -------------------------------------------------


def service_from_environ(environ: dict[str, Any]) -> str | None:
    """The SigV4 signing name from the Authorization header's credential scope, if signed."""
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    try:
        credential = auth.split(",")[0].split()[1]  # Credential=AKID/20240101/us-east-1/s3/aws4_request
        _, _, _, service, _ = credential.split("=", 1)[1].split("/")
    except (IndexError, ValueError):
        return None
    return service.lower()


def _form_body(environ: dict[str, Any]) -> bytes | None:
    """Read (and put back) a form-encoded body, for query-protocol ``Action`` parameters."""
    if not (environ.get("CONTENT_TYPE") or "").startswith("application/x-www-form-urlencoded"):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= 0:
        return None
    import io

    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


_S3_BUCKET_OPS = {"GET": "ListObjects", "PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}
_S3_OBJECT_OPS = {"GET": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject", "HEAD": "HeadObject"}


def _s3_operation(environ: dict[str, Any], query: dict[str, list[str]]) -> str | None:
    """A best-effort S3 operation name from method and path (path-style or virtual-host)."""
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/").lstrip("/")
    host = (environ.get("HTTP_HOST") or "").split(":")[0]
    # bucket.s3.amazonaws.com / bucket.localhost are virtual-host style; IPs and s3.* hosts are path style.
    is_ip = all(part.isdigit() for part in host.split(".")) or host.startswith("[")
    virtual_host = "." in host and not is_ip and not host.startswith(("s3.", "s3-"))
    parts = [p for p in path.split("/", 1) if p]
    has_key = len(parts) >= 1 if virtual_host else len(parts) == 2
    if not parts and not virtual_host:
        return "ListBuckets" if method == "GET" else None
    if method == "POST":
        if "delete" in query:
            return "DeleteObjects"
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        return "PostObject"
    if has_key:
        if method == "PUT" and "partNumber" in query:
            return "UploadPart"
        if method == "PUT" and environ.get("HTTP_X_AMZ_COPY_SOURCE"):
            return "CopyObject"
        return _S3_OBJECT_OPS.get(method)
    if method == "GET" and query.get("list-type") == ["2"]:
        return "ListObjectsV2"
    return _S3_BUCKET_OPS.get(method)


def operation_from_environ(environ: dict[str, Any], service: str | None) -> str | None:
    """The API operation of a request: X-Amz-Target suffix, ``Action`` param, or a REST guess."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING") or "", keep_blank_values=True)
    if "Action" in query:
        return query["Action"][0]
    body = _form_body(environ)
    if body:
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        if "Action" in form:
            return form["Action"][0]
    path = environ.get("PATH_INFO") or ""
    if service == "sagemaker":
        if path.endswith("/async-invocations"):
            return "InvokeEndpointAsync"
        if path.endswith("/invocations"):
            return "InvokeEndpoint"
    if service == "s3":
        return _s3_operation(environ, query)
    return None


def error_response(rule: FaultRule, environ: dict[str, Any], service: str | None) -> tuple[str, list, bytes]:
    """Status line, headers and body of the AWS error for ``rule``, in the request's protocol."""
    from http import HTTPStatus

    message = rule.message or f"Injected fault: {rule.error} (localaws fault rule {rule.id})"
    request_id = str(uuid.uuid4())
    try:
        reason = HTTPStatus(rule.status).phrase
    except ValueError:
        reason = "Error"
    status = f"{rule.status} {reason}"
    common = [("x-amzn-RequestId", request_id), ("x-amz-request-id", request_id)]
    if service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{_xml(rule.error)}</Code><Message>{_xml(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        return status, [("Content-Type", "application/xml"), *common], body
    if not environ.get("HTTP_X_AMZ_TARGET") and operation_is_query(environ):
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<ErrorResponse><Error><Type>{'Receiver' if rule.status >= 500 else 'Sender'}</Type>"
            f"<Code>{_xml(rule.error)}</Code><Message>{_xml(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        return status, [("Content-Type", "text/xml"), *common], body
    # JSON (X-Amz-Target) and REST-JSON protocols.
    body = json.dumps({"__type": rule.error, "message": message}).encode()
    content_type = environ.get("CONTENT_TYPE") or ""
    if not content_type.startswith("application/x-amz-json"):
        content_type = "application/json"
    return status, [("Content-Type", content_type), ("x-amzn-ErrorType", rule.error), *common], body


def operation_is_query(environ: dict[str, Any]) -> bool:
    """Whether the request uses the AWS query protocol (form body or ``Action`` in the URL)."""
    if (environ.get("CONTENT_TYPE") or "").startswith("application/x-www-form-urlencoded"):
        return True
    return "Action=" in (environ.get("QUERY_STRING") or "")


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
