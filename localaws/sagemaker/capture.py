"""Endpoint data capture (``DataCaptureConfig``): validated as the API does, written as SageMaker does.

Validation (SageMaker API reference: DataCaptureConfig, CaptureOption, CaptureContentTypeHeader):
``InitialSamplingPercentage`` 0–100, ``DestinationS3Uri`` matching ``(https|s3)://([^/])/?(.*)``
(at most 512 characters), ``CaptureOptions`` 1–32 items with ``CaptureMode`` Input | Output |
InputAndOutput, ``CaptureContentTypeHeader`` Csv/JsonContentTypes 1–10 media types each,
``EnableCapture`` (default true). Refusals carry AWS's "1 validation error detected" wording.

Records (developer guide, "Capture data from real-time endpoint"): one JSON line per captured
request, ``{"captureData": {"endpointInput": {...}, "endpointOutput": {...}}, "eventMetadata":
{"eventId", "inferenceTime"[, "inferenceId"]}, "eventVersion": "0"}``; each side has
``observedContentType``, ``mode`` (INPUT/OUTPUT), ``data`` and ``encoding``: ``JSON`` or ``CSV``
when the observed media type is listed in ``CaptureContentTypeHeader`` (data is the body's text),
else ``BASE64`` (also for a listed type whose body is not UTF-8). Objects go to
``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl``, the hour path
and the name taken from the first record's inferenceTime (UTC); records of other hours go to
their own objects.

Emulator choices (documented in docs/interfaces.md): sampling is a proportional counter per
variant (request n is captured when ``floor(n*p/100)`` grows, so 0 captures none, 100 all, 50 every
second one); only requests the model answered (200) are captured; buffered records are flushed
every ``LOCALAWS_CAPTURE_FLUSH_SECONDS`` (default 5), on ``POST /_localaws/sagemaker/capture/flush``,
on UpdateEndpoint's swap and on DeleteEndpoint. Objects are written with the variant model's
execution role session (S3 PutObject through the emulator, so IAM enforcement applies); a refused
write drops those records, never fails the invocation, and is reported on stderr and in
``GET /_localaws/sagemaker/capture``. ``clock`` offsets inferenceTime (and so the hour path), so
tests and the demo can place records in a past hour.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.sagemaker.exceptions import ValidationError

MODES = ("Input", "Output", "InputAndOutput")
_URI = re.compile(r"^(https|s3)://([^/])/?(.*)$")
_MEDIA = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*\/[a-zA-Z0-9](-*[a-zA-Z0-9.])*$")
_BASE = "dataCaptureConfig"

_lock = threading.Lock()
_active: set[EndpointCapture] = set()
_clock = {"offset_seconds": 0.0}


# -- validation -------------------------------------------------------------------------------------
def _error(path: str, value: Any, rule: str) -> ValidationError:
    shown = "null" if value is None else f"'{value}'"
    return ValidationError(message=f"1 validation error detected: Value {shown} at '{path}' "
                           f"failed to satisfy constraint: {rule}")


def _length(items: Any, path: str, low: int, high: int) -> None:
    if len(items) < low:
        raise _error(path, items, f"Member must have length greater than or equal to {low}")
    if len(items) > high:
        raise _error(path, items, f"Member must have length less than or equal to {high}")


def _content_types(header: dict[str, Any]) -> None:
    for key in ("CsvContentTypes", "JsonContentTypes"):
        values = header.get(key)
        if values is None:
            continue
        path = f"{_BASE}.captureContentTypeHeader.{key[0].lower()}{key[1:]}"
        _length(values, path, 1, 10)
        for value in values:
            if not 1 <= len(value) <= 256 or not _MEDIA.match(value):
                raise _error(path, values, "Member must satisfy constraint: [Member must have length less than or "
                             "equal to 256, Member must have length greater than or equal to 1, Member must satisfy "
                             r"regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9])*\/[a-zA-Z0-9](-*[a-zA-Z0-9.])*]")


def validate(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """Refuse a DataCaptureConfig CreateEndpointConfig would refuse; returns it unchanged otherwise."""
    if not config:
        return None
    percent = config.get("InitialSamplingPercentage")
    if percent is None:
        raise _error(f"{_BASE}.initialSamplingPercentage", None, "Member must not be null")
    if not 0 <= int(percent) <= 100:
        rule = "greater than or equal to 0" if int(percent) < 0 else "less than or equal to 100"
        raise _error(f"{_BASE}.initialSamplingPercentage", percent, f"Member must have value {rule}")
    uri = config.get("DestinationS3Uri")
    if uri is None:
        raise _error(f"{_BASE}.destinationS3Uri", None, "Member must not be null")
    if len(uri) > 512:
        raise _error(f"{_BASE}.destinationS3Uri", uri, "Member must have length less than or equal to 512")
    if not _URI.match(uri):
        raise _error(f"{_BASE}.destinationS3Uri", uri,
                     "Member must satisfy regular expression pattern: (https|s3)://([^/])/?(.*)")
    options = config.get("CaptureOptions")
    if options is None:
        raise _error(f"{_BASE}.captureOptions", None, "Member must not be null")
    _length(options, f"{_BASE}.captureOptions", 1, 32)
    for number, option in enumerate(options, 1):
        mode = (option or {}).get("CaptureMode")
        if mode not in MODES:
            raise _error(f"{_BASE}.captureOptions.{number}.member.captureMode", mode,
                         f"Member must satisfy enum value set: [{', '.join(MODES)}]")
    _content_types(config.get("CaptureContentTypeHeader") or {})
    return config


def summary(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """DescribeEndpoint's DataCaptureConfig (shape DataCaptureConfigSummary) of the config in service."""
    if not config:
        return None
    enabled = bool(config.get("EnableCapture", True))
    found = {
        "EnableCapture": enabled,
        "CaptureStatus": "Started" if enabled else "Stopped",
        "CurrentSamplingPercentage": int(config["InitialSamplingPercentage"]),
        "DestinationS3Uri": config["DestinationS3Uri"],
    }
    if config.get("KmsKeyId"):
        found["KmsKeyId"] = config["KmsKeyId"]
    return found


# -- the clock and admin ------------------------------------------------------------------------------
def now() -> datetime:
    """The capture clock: UTC now plus the admin offset."""
    return datetime.now(UTC) + timedelta(seconds=_clock["offset_seconds"])


def set_offset(seconds: float) -> dict[str, float]:
    """Set the capture clock offset (seconds, may be negative)."""
    _clock["offset_seconds"] = float(seconds)
    return dict(_clock)


def clock() -> dict[str, float]:
    """The capture clock offset."""
    return dict(_clock)


def flush_all() -> dict[str, int]:
    """Write every buffered record now; counts of objects written and records dropped."""
    with _lock:
        captures = list(_active)
    totals = {"objects": 0, "records": 0, "dropped": 0}
    for capture in captures:
        for key, value in capture.flush().items():
            totals[key] += value
    return totals


def stats() -> dict[str, Any]:
    """Per endpoint and variant: captured, written and dropped record counts and the last error."""
    with _lock:
        captures = list(_active)
    return {"endpoints": {c.endpoint: c.stats() for c in captures}, **clock()}


def reset() -> None:
    """Forget every capture buffer and the clock offset (``/moto-api/reset``)."""
    with _lock:
        captures = list(_active)
        _active.clear()
    for capture in captures:
        capture.closed = True
    _clock["offset_seconds"] = 0.0


# -- records ------------------------------------------------------------------------------------------
def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def encode(body: bytes, content_type: str | None, header: dict[str, Any], mode: str) -> dict[str, str]:
    """One side of captureData: JSON/CSV text for a listed media type, else BASE64."""
    media = _media(content_type)
    kinds = {"JSON": header.get("JsonContentTypes") or [], "CSV": header.get("CsvContentTypes") or []}
    for encoding, listed in kinds.items():
        if media and media in {m.lower() for m in listed}:
            try:
                return {"observedContentType": content_type or "", "mode": mode,
                        "data": body.decode("utf-8"), "encoding": encoding}
            except UnicodeDecodeError:
                break
    return {"observedContentType": content_type or "", "mode": mode,
            "data": base64.b64encode(body).decode("ascii"), "encoding": "BASE64"}


def record(config: dict[str, Any], request: tuple[bytes, str | None], response: tuple[bytes, str | None],
           when: datetime, inference_id: str | None = None) -> dict[str, Any]:
    """One capture line (as a dict) for a request and its answer."""
    modes = {o["CaptureMode"] for o in config.get("CaptureOptions") or []}
    header = config.get("CaptureContentTypeHeader") or {}
    data: dict[str, Any] = {}
    if modes & {"Input", "InputAndOutput"}:
        data["endpointInput"] = encode(request[0], request[1], header, "INPUT")
    if modes & {"Output", "InputAndOutput"}:
        data["endpointOutput"] = encode(response[0], response[1], header, "OUTPUT")
    metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if inference_id:
        metadata["inferenceId"] = inference_id
    return {"captureData": data, "eventMetadata": metadata, "eventVersion": "0"}


def object_key(prefix: str, endpoint: str, variant: str, when: datetime) -> str:
    """``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl`` (prefix without slashes)."""
    name = f"{when:%M-%S}-{when.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
    parts = [p for p in (prefix.strip("/"), endpoint, variant, f"{when:%Y/%m/%d/%H}", name) if p]
    return "/".join(parts)


def _flush_seconds() -> float:
    return float(os.environ.get("LOCALAWS_CAPTURE_FLUSH_SECONDS", "5"))


class EndpointCapture:
    """The capture of one endpoint config: sampling counters and buffered lines per variant."""

    def __init__(self, endpoint: str, config: dict[str, Any]):
        self.endpoint, self.config = endpoint, config
        self.percent = int(config["InitialSamplingPercentage"])
        scheme, rest = config["DestinationS3Uri"].split("://", 1)
        self.bucket, _, self.prefix = rest.partition("/")
        self.scheme = scheme
        self._seen: dict[str, int] = {}
        self._buffer: list[tuple[str, Any, datetime, str]] = []  # (variant, role session, time, line)
        self._counts: dict[str, dict[str, Any]] = {}
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self.closed = False

    @classmethod
    def start(cls, endpoint: str, config: dict[str, Any] | None) -> EndpointCapture | None:
        """A capture for an enabled config (None when capture is off), registered for the admin flush."""
        if not config or not config.get("EnableCapture", True):
            return None
        capture = cls(endpoint, config)
        with _lock:
            _active.add(capture)
        return capture

    def _sampled(self, variant: str) -> bool:
        """Proportional counter: request n is captured when floor(n * p / 100) grows."""
        n = self._seen.get(variant, 0) + 1
        self._seen[variant] = n
        return (n * self.percent) // 100 > ((n - 1) * self.percent) // 100

    def _count(self, variant: str, key: str, by: int = 1) -> None:
        counts = self._counts.setdefault(variant, {"captured": 0, "written": 0, "dropped": 0, "last_error": None})
        counts[key] += by

    def capture(self, variant: str, session: Any, request: tuple[bytes, str | None],
                response: tuple[bytes, str | None], inference_id: str | None = None) -> bool:
        """Buffer one answered request if sampled; True when captured."""
        with self._lock:
            if self.closed or not self._sampled(variant):
                return False
            when = now()
            line = json.dumps(record(self.config, request, response, when, inference_id), ensure_ascii=False)
            self._buffer.append((variant, session, when, line))
            self._count(variant, "captured")
            if self._timer is None:
                self._timer = threading.Timer(_flush_seconds(), self.flush)
                self._timer.daemon = True
                self._timer.start()
        return True

    def flush(self) -> dict[str, int]:
        """Write the buffered lines, one object per variant, hour and role; counts written and dropped."""
        with self._lock:
            buffered, self._buffer = self._buffer, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        groups: dict[tuple[str, str, int], list[tuple[Any, datetime, str]]] = {}
        for variant, session, when, line in buffered:
            groups.setdefault((variant, f"{when:%Y%m%d%H}", id(session)), []).append((session, when, line))
        totals = {"objects": 0, "records": 0, "dropped": 0}
        for (variant, _, _), lines in groups.items():
            key = object_key(self.prefix, self.endpoint, variant, lines[0][1])
            error = self._write(lines[0][0], key, "".join(f"{line}\n" for _, _, line in lines))
            with self._lock:
                if error is None:
                    totals["objects"] += 1
                    totals["records"] += len(lines)
                    self._count(variant, "written", len(lines))
                else:
                    totals["dropped"] += len(lines)
                    self._count(variant, "dropped", len(lines))
                    self._counts[variant]["last_error"] = error
        return totals

    def _write(self, session: Any, key: str, body: str) -> str | None:
        """PutObject as the model's execution role; the reason when it could not (never raises)."""
        if self.closed:
            return "endpoint deleted or emulator reset"
        if self.scheme != "s3":
            return "localaws writes data capture to s3:// destinations only; the records were dropped"
        try:
            session.s3().put_object(Bucket=self.bucket, Key=key, Body=body.encode("utf-8"),
                                    ContentType="application/jsonlines")
            return None
        except Exception as exc:  # noqa: BLE001 - a failed capture never fails anything else
            code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
            reason = (f"could not write s3://{self.bucket}/{key} as {getattr(session, 'role_arn', None)}: {code}; "
                      "the records were dropped")
            print(f"localaws: data capture for endpoint {self.endpoint}: {reason}", file=sys.stderr, flush=True)
            return reason

    def stats(self) -> dict[str, Any]:
        """Counts per variant (for ``GET /_localaws/sagemaker/capture``)."""
        with self._lock:
            return {variant: dict(counts) for variant, counts in self._counts.items()}

    def close(self, flush: bool = True) -> None:
        """Flush what is buffered (unless told not to) and stop capturing."""
        if flush:
            self.flush()
        self.closed = True
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
        with _lock:
            _active.discard(self)
