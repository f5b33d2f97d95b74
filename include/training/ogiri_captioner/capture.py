"""Read SageMaker data-capture files: (image, caption, score) records and counts of bad lines.

Each line is ``{"captureData": {"endpointInput": {"observedContentType", "mode", "data", "encoding"},
"endpointOutput": {...}}, "eventMetadata": {...}, "eventVersion": "0"}``; ``encoding`` is ``BASE64``
for binary bodies and ``JSON``/``CSV`` for text bodies kept as they are. Inputs are the endpoint's
request bodies (``image/*``/``application/x-image`` bytes, ``application/json`` ``{"image_b64"}``,
``application/jsonlines`` batches of those); outputs its ``{"caption", "score", ...}`` answers
(serving.output_fn). A bad line is counted, never raised and never logged:

* ``invalid_json``: the line is not JSON or not a capture record;
* ``undecodable``: a body, base64 string, image or endpoint output that cannot be decoded (per item
  of a batch);
* ``unsupported_content_type``: an input the monitor cannot read (other content types, ``s3_uri``
  requests).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .data import open_image
from .serving import IMAGE_TYPES, JSON_TYPES, JSONL_TYPES
from .statistics import thumbnail

BAD_KINDS = ("invalid_json", "undecodable", "unsupported_content_type")


class BadRecord(Exception):
    """A capture line (or batch item) that cannot be used; ``kind`` is one of ``BAD_KINDS``."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


@dataclass
class CapturedRecord:
    """One captured inference: its raw image bytes, original size and small thumbnail, caption and score.

    Only the thumbnail is kept decoded (a window may hold many large images); ``image()`` decodes again.
    """

    raw: bytes
    size: tuple[int, int]
    thumbnail: Image.Image
    caption: str
    score: float

    def image(self) -> Image.Image:
        return open_image(self.raw)


@dataclass
class Window:
    """Every usable record of a window and the count of bad ones per kind."""

    records: list[CapturedRecord] = field(default_factory=list)
    bad: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BAD_KINDS, 0))


def _media_type(value) -> str:
    return str(value or "").split(";")[0].strip().lower()


def _body(part) -> bytes:
    if not isinstance(part, dict) or not isinstance(part.get("data"), str):
        raise BadRecord("invalid_json")
    encoding = str(part.get("encoding") or "").upper()
    if encoding == "BASE64":
        try:
            return base64.b64decode(part["data"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRecord("undecodable") from None
    if encoding in ("JSON", "CSV", "NONE", ""):
        return part["data"].encode("utf-8")
    raise BadRecord("undecodable")


def _json(data: bytes):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRecord("undecodable") from None


def _request_image(obj) -> bytes:
    if isinstance(obj, dict) and isinstance(obj.get("image_b64"), str):
        try:
            return base64.b64decode(obj["image_b64"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRecord("undecodable") from None
    if isinstance(obj, dict) and "s3_uri" in obj:
        raise BadRecord("unsupported_content_type")
    raise BadRecord("undecodable")


def _lines(data: bytes) -> list[bytes]:
    return [ln for ln in data.splitlines() if ln.strip()]


def input_images(part) -> tuple[bool, list]:
    """``(batch, [image bytes or BadRecord per item])`` of one captured request."""
    ctype = _media_type(part.get("observedContentType") if isinstance(part, dict) else None)
    if ctype in IMAGE_TYPES or ctype.startswith("image/"):
        return False, [_body(part)]
    if ctype in JSON_TYPES:
        return False, [_request_image(_json(_body(part)))]
    if ctype in JSONL_TYPES:
        items: list = []
        for line in _lines(_body(part)):
            try:
                items.append(_request_image(_json(line)))
            except BadRecord as exc:
                items.append(exc)
        return True, items
    if isinstance(part, dict) and "observedContentType" in part:
        raise BadRecord("unsupported_content_type")
    raise BadRecord("invalid_json")


def _result(obj) -> tuple[str, float]:
    if (not isinstance(obj, dict) or not isinstance(obj.get("caption"), str)
            or isinstance(obj.get("score"), bool) or not isinstance(obj.get("score"), int | float)):
        raise BadRecord("undecodable")
    return obj["caption"], float(obj["score"])


def output_results(part, batch: bool) -> list:
    """``[(caption, score) or BadRecord per item]`` of one captured answer."""
    body = _body(part)
    if not batch:
        return [_result(_json(body))]
    out: list = []
    for line in _lines(body):
        try:
            out.append(_result(_json(line)))
        except BadRecord as exc:
            out.append(exc)
    return out


def parse_line(line: str) -> tuple[list[CapturedRecord], list[str]]:
    """The usable records of one capture line and the kinds of its bad items."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return [], ["invalid_json"]
    try:
        data = obj.get("captureData") if isinstance(obj, dict) else None
        if not isinstance(data, dict):
            raise BadRecord("invalid_json")
        batch, images = input_images(data.get("endpointInput"))
        results = output_results(data.get("endpointOutput"), batch)
        if len(results) != len(images):
            raise BadRecord("undecodable")
    except BadRecord as exc:
        return [], [exc.kind]
    records, bad = [], []
    for raw, res in zip(images, results, strict=True):
        if isinstance(raw, BadRecord) or isinstance(res, BadRecord):
            bad.append(raw.kind if isinstance(raw, BadRecord) else res.kind)
            continue
        try:
            img = open_image(raw)
            records.append(CapturedRecord(raw, img.size, thumbnail(img), res[0], res[1]))
        except ValueError:
            bad.append("undecodable")
    return records, bad


def read_capture(root: Path) -> Window:
    """Every ``*.jsonl`` under ``root`` (any depth, path order; a missing dir is an empty window)."""
    window = Window()
    files = sorted(root.rglob("*.jsonl")) if root.is_dir() else ([root] if root.is_file() else [])
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    continue
                records, bad = parse_line(line)
                window.records.extend(records)
                for kind in bad:
                    window.bad[kind] += 1
    return window
