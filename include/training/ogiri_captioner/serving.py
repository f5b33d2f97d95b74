"""SageMaker PyTorch serving handlers (re-exported by ``code/inference.py``).

Content types: ``application/x-image`` / ``image/jpeg`` / ``image/png`` (raw bytes),
``application/json`` (``{"image_b64": ...}`` or ``{"s3_uri": ...}``, optional ``"beam_width"``),
``application/jsonlines`` (one such object per line, optional ``"id"``; a bad line gives
``{"id", "error"}`` and the others still succeed). A bad payload raises ``ValueError`` naming
the problem.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging

from .artifacts import Captioner, load_model_dir
from .data import open_image

log = logging.getLogger(__name__)

IMAGE_TYPES = {"application/x-image", "image/jpeg", "image/jpg", "image/png"}
JSON_TYPES = {"application/json"}
JSONL_TYPES = {"application/jsonlines", "application/x-jsonlines", "application/jsonl"}
MAX_BEAM_WIDTH = 16
MAX_IMAGE_BYTES = 20 * 1024 * 1024


def _media_type(value: str | None, default: str) -> str:
    return (value or default).split(";")[0].strip().lower() or default


def _as_bytes(body) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if hasattr(body, "read"):
        return body.read()
    raise ValueError(f"unsupported request body type {type(body).__name__}")


def _fetch_s3(uri: str) -> bytes:
    if not uri.startswith("s3://") or "/" not in uri[5:] or uri.endswith("/"):
        raise ValueError(f"s3_uri must look like s3://bucket/key, got {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        raise ValueError(f"cannot read {uri}: {exc.response.get('Error', {}).get('Code', 'error')}") from None
    except BotoCoreError as exc:
        raise ValueError(f"cannot read {uri}: {exc}") from None


def _beam_width(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BEAM_WIDTH:
        raise ValueError(f"beam_width must be an integer from 1 to {MAX_BEAM_WIDTH}, got {value!r}")
    return value


def _image_bytes(data: bytes):
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"image is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES}")
    return open_image(data)


def _parse_object(obj) -> dict:
    if not isinstance(obj, dict):
        raise ValueError(f"request must be a JSON object, got {type(obj).__name__}")
    width = _beam_width(obj.get("beam_width"))
    if "image_b64" in obj:
        if not isinstance(obj["image_b64"], str):
            raise ValueError("image_b64 must be a base64 string")
        try:
            raw = base64.b64decode(obj["image_b64"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("image_b64 is not valid base64") from None
        return {"image": _image_bytes(raw), "beam_width": width}
    if "s3_uri" in obj:
        if not isinstance(obj["s3_uri"], str):
            raise ValueError("s3_uri must be a string")
        return {"image": _image_bytes(_fetch_s3(obj["s3_uri"])), "beam_width": width}
    raise ValueError("request needs 'image_b64' or 's3_uri'")


def model_fn(model_dir: str, context=None) -> Captioner:  # noqa: ARG001 - toolkit may pass a context
    """Load the model from the unpacked ``model.tar.gz`` (GPU when available, else CPU)."""
    return load_model_dir(model_dir)


def input_fn(body, content_type: str | None = "application/json", context=None) -> dict:  # noqa: ARG001
    """Decode a request into ``{"batch": bool, "items": [{"id", "image", "beam_width", "error"}]}``."""
    ctype = _media_type(content_type, "application/json")
    data = _as_bytes(body)
    if not data.strip():
        raise ValueError("request body is empty")
    if ctype in IMAGE_TYPES:
        return {"batch": False, "items": [{"id": None, "image": _image_bytes(data), "beam_width": None}]}
    if ctype in JSON_TYPES:
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"request body is not valid UTF-8 JSON: {exc}") from None
        return {"batch": False, "items": [{"id": obj.get("id") if isinstance(obj, dict) else None,
                                            **_parse_object(obj)}]}
    if ctype in JSONL_TYPES:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("JSON Lines body is not valid UTF-8") from None
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            item = {"id": None, "image": None, "beam_width": None}
            try:
                obj = json.loads(line)
                if isinstance(obj, dict):
                    item["id"] = obj.get("id")
                item.update(_parse_object(obj))
            except json.JSONDecodeError as exc:
                item["error"] = f"line {n}: not valid JSON ({exc.msg})"
            except ValueError as exc:
                item["error"] = f"line {n}: {exc}"
            items.append(item)
        return {"batch": True, "items": items}
    raise ValueError(f"unsupported content type {content_type!r}; use application/x-image, image/jpeg, "
                     "image/png, application/json or application/jsonlines")


def predict_fn(data: dict, model: Captioner, context=None) -> dict:  # noqa: ARG001
    """Caption every valid item, batched per beam width; failed items keep their error."""
    if not isinstance(data, dict) or "items" not in data:
        raise ValueError("predict_fn expects the output of input_fn")
    results: list[dict | None] = [None] * len(data["items"])
    groups: dict[int, list[int]] = {}
    for i, item in enumerate(data["items"]):
        if item.get("error"):
            results[i] = {"id": item.get("id"), "error": item["error"]}
        else:
            width = item.get("beam_width") or model.default_beam_width
            groups.setdefault(width, []).append(i)
    for width, idx in groups.items():
        for i, res in zip(idx, model.caption([data["items"][i]["image"] for i in idx], width), strict=True):
            item_id = data["items"][i].get("id")
            results[i] = {**({"id": item_id} if item_id is not None or data["batch"] else {}), **res}
    return {"batch": data["batch"], "results": results}


def output_fn(prediction: dict, accept: str | None = "application/json", context=None) -> str:  # noqa: ARG001
    """JSON for a single request; JSON Lines (one line per input line, same order) for a JSON Lines batch.

    A batch always answers JSON Lines (even when the client accepts only ``application/json``) so
    batch transform output stays line-aligned with its input.
    """
    atype = _media_type(accept, "application/json")
    if atype not in JSON_TYPES | JSONL_TYPES | {"*/*"}:
        raise ValueError(f"unsupported accept type {accept!r}; use application/json or application/jsonlines")
    results = prediction["results"]
    if not prediction["batch"]:
        return json.dumps(results[0], ensure_ascii=False)
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
