"""Denials as AWS sends them: S3 ``AccessDenied`` 403 XML, query services' ``ErrorResponse`` 403,
JSON services' ``AccessDeniedException`` 400; and S3's 404-becomes-403 for a key the caller may
not know is missing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from localaws.faults import FaultRule, error_response, operation_is_query
from localaws.iam.enforcer import Denial

# (protocol, code) -> (code, status) where AWS names or numbers an error differently.
_RENAMED = {
    ("s3", "InvalidClientTokenId"): ("InvalidAccessKeyId", 403),
    ("s3", "ExpiredToken"): ("ExpiredToken", 400),
    ("json", "InvalidClientTokenId"): ("UnrecognizedClientException", 400),
    ("json", "ExpiredToken"): ("ExpiredTokenException", 400),
    ("json", "AccessDenied"): ("AccessDeniedException", 400),
    ("json", "SignatureDoesNotMatch"): ("InvalidSignatureException", 400),
}

#: (service, code) -> (code, status) for a service that names a denial its own way: SNS answers
#: ``AuthorizationError`` 403 where other query services say ``AccessDenied``.
_SERVICE_RENAMED = {("sns", "AccessDenied"): ("AuthorizationError", 403)}


def _protocol(environ: dict[str, Any], service: str | None) -> str:
    if service == "s3":
        return "s3"
    if not environ.get("HTTP_X_AMZ_TARGET") and operation_is_query(environ):
        return "query"
    return "json"


def shaped(denial: Denial, environ: dict[str, Any], service: str | None) -> tuple[str, list, bytes]:
    """Status line, headers and body of a denial in the request's protocol."""
    protocol = _protocol(environ, service)
    code, status = _SERVICE_RENAMED.get((service, denial.code)) or _RENAMED.get(
        (protocol, denial.code), (denial.code, denial.status or 403))
    rule = FaultRule(service=service or "", error=code, status=status, message=denial.message)
    status_line, headers, body = error_response(rule, environ, service)
    if environ.get("REQUEST_METHOD") == "HEAD":
        body = b""
    headers.append(("Content-Length", str(len(body))))
    return status_line, headers, body


def deny(denial: Denial, environ: dict[str, Any], service: str | None, start_response: Callable) -> list[bytes]:
    """Answer the denial (the request body is drained by the caller)."""
    status, headers, body = shaped(denial, environ, service)
    start_response(status, headers)
    return [body]


def missing_key_as_denied(app: Callable, denial: Denial, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    """Run ``app``; a 404 answer becomes ``denial`` (S3 without s3:ListBucket)."""
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    result = app(environ, capture)
    if not captured.get("status", "").startswith("404"):
        start_response(captured["status"], captured["headers"])
        return result
    if hasattr(result, "close"):
        result.close()
    return deny(denial, environ, "s3", start_response)
