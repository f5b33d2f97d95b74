"""Parse a WSGI request into what authorization needs: signer, service, operation, parameters."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from localaws.faults import operation_from_environ

# Bodies are read (and put back) only for these; S3 objects are never buffered here.
_MAX_PARSED_BODY = 8 * 1024 * 1024


@dataclass
class ApiRequest:
    """One AWS API call as authorization sees it."""

    environ: dict[str, Any]
    service: str  # SigV4 signing name (sagemaker-runtime signs as "sagemaker")
    region: str
    key_id: str | None
    session_token: str | None
    operation: str | None
    params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, list[str]] = field(default_factory=dict)
    protocol: str = "json"  # json | query | rest-json | s3

    @property
    def secure(self) -> bool:
        """Whether the request really came over TLS."""
        return self.environ.get("wsgi.url_scheme") == "https"

    def header(self, name: str) -> str | None:
        """A request header by name (case-insensitive)."""
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"))

    def path(self) -> str:
        """The request path, percent-decoded once (UTF-8), without the query string."""
        raw = self.environ.get("REQUEST_URI") or self.environ.get("RAW_URI")
        if raw:
            return unquote(urlsplit(raw).path)
        return (self.environ.get("PATH_INFO") or "/").encode("latin-1").decode("utf-8", "replace")


def drain(environ: dict[str, Any]) -> None:
    """Consume an unread request body (sized or chunked) so the keep-alive connection stays in sync."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    chunked = "chunked" in (environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    while chunked or length > 0:
        chunk = stream.read(65536 if chunked else min(length, 65536))
        if not chunk:
            break
        length -= len(chunk)


def _credential(environ: dict[str, Any], query: dict[str, list[str]]) -> list[str] | None:
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    if auth.startswith("AWS4-HMAC-SHA256"):
        scope = auth.partition("Credential=")[2].partition(",")[0].strip()
    elif "X-Amz-Credential" in query:
        scope = query["X-Amz-Credential"][0]
    else:
        return None
    parts = scope.split("/")
    return parts if len(parts) == 5 else None


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back so the wrapped app still sees it."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0 or length > _MAX_PARSED_BODY:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _params(environ: dict[str, Any], service: str, query: dict[str, list[str]]) -> tuple[dict[str, Any], str]:
    if service == "s3":
        return {}, "s3"
    content_type = environ.get("CONTENT_TYPE") or ""
    if content_type.startswith("application/x-www-form-urlencoded") or "Action" in query:
        form = parse_qs(read_body(environ).decode("utf-8", "replace"), keep_blank_values=True)
        merged = {k: v[0] for k, v in {**query, **form}.items()}
        return merged, "query"
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = read_body(environ)
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = {}
        return (data if isinstance(data, dict) else {}), "json"
    return {}, "rest-json"


def parse(environ: dict[str, Any]) -> ApiRequest | None:
    """The API request, or None when it is not SigV4-signed (anonymous)."""
    query = parse_qs(environ.get("QUERY_STRING") or "", keep_blank_values=True)
    credential = _credential(environ, query)
    if credential is None:
        return None
    key_id, _, region, service, _ = credential
    service = service.lower()
    token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN") or (query.get("X-Amz-Security-Token") or [None])[0]
    params, protocol = _params(environ, service, query)
    operation = params.get("Action") if protocol == "query" else None
    if operation is None:
        operation = operation_from_environ(environ, service)
    return ApiRequest(environ, service, region, key_id, token, operation, params, query, protocol)
