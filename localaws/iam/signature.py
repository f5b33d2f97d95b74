"""SigV4 signature check for keys the emulator issued (as AWS: a wrong secret is refused).

The canonical request is rebuilt from the raw request line and the signed headers and signed with
the key's secret by botocore's own signer (S3's variant for S3), like moto's ``IAMRequestBase``.
Presigned URLs (query-string auth) are not verified.
"""

from __future__ import annotations

import hmac
from typing import Any

from localaws.iam.requests import ApiRequest, read_body

_SPECIAL = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


def _header(environ: dict[str, Any], name: str) -> str | None:
    return environ.get(_SPECIAL.get(name) or "HTTP_" + name.upper().replace("-", "_"))


def _field(auth: str, name: str) -> str:
    return auth.partition(f"{name}=")[2].partition(",")[0].strip()


def signature_matches(req: ApiRequest, secret: str, token: str | None) -> bool:
    """Whether the request's ``Authorization`` signature is the one ``secret`` gives."""
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    environ = req.environ
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    if not auth.startswith("AWS4-HMAC-SHA256"):
        return True  # presigned URL: not verified here
    signed = [h for h in _field(auth, "SignedHeaders").split(";") if h]
    headers = {name: _header(environ, name) or "" for name in signed}
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI") or environ.get("PATH_INFO") or "/"
    body = b"" if req.service == "s3" else read_body(environ)
    request = AWSRequest(method=environ.get("REQUEST_METHOD", "GET"), url=raw, data=body, headers=headers)
    request.context["timestamp"] = headers.get("x-amz-date") or _header(environ, "x-amz-date") or ""
    signer_cls = S3SigV4Auth if req.service == "s3" else SigV4Auth
    signer = signer_cls(Credentials(req.key_id or "", secret, token), req.service, req.region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return hmac.compare_digest(expected, _field(auth, "Signature"))
