"""``DeleteObjects`` as S3 authorizes it: ``s3:DeleteObject`` per key, and a key that is denied
comes back as an ``<Error>`` entry (``AccessDenied``) of a 200 answer while the others are deleted."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from localaws.iam.requests import read_body

_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _without(body: bytes, denied: set[str]) -> tuple[bytes, int]:
    """The request body without the denied keys' ``<Object>`` entries, and how many remain."""
    root = ElementTree.fromstring(body)
    ElementTree.register_namespace("", _NS)  # serialize S3's namespace as the default one again
    kept = 0
    for obj in [el for el in list(root) if _local(el.tag) == "Object"]:
        key = next((c.text or "" for c in obj if _local(c.tag) == "Key"), "")
        if key in denied:
            root.remove(obj)
        else:
            kept += 1
    return ElementTree.tostring(root, encoding="utf-8"), kept


def _errors(denied: dict[str, str]) -> bytes:
    return "".join(
        f"<Error><Key>{escape(key)}</Key><Code>AccessDenied</Code><Message>{escape(msg)}</Message></Error>"
        for key, msg in denied.items()
    ).encode()


def serve(app: Callable, denied: dict[str, str], environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    """Delete the allowed keys through ``app``; report ``denied`` (key -> message) as errors."""
    body, kept = _without(read_body(environ), set(denied))
    if kept == 0:
        payload = (f'<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="{_NS}">').encode()
        payload += _errors(denied) + b"</DeleteResult>"
        start_response("200 OK", [("Content-Type", "application/xml"), ("Content-Length", str(len(payload)))])
        return [payload]
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
    for header in [h for h in environ if h in ("HTTP_CONTENT_MD5",) or h.startswith("HTTP_X_AMZ_CHECKSUM_")]:
        del environ[header]
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    result = app(environ, capture)
    answer = b"".join(result)
    if hasattr(result, "close"):
        result.close()
    if captured["status"].startswith("200") and b"</DeleteResult>" in answer:
        answer = answer.replace(b"</DeleteResult>", _errors(denied) + b"</DeleteResult>")
    headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
    start_response(captured["status"], headers + [("Content-Length", str(len(answer)))])
    return [answer]
