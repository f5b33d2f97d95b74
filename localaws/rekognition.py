"""Rekognition ``DetectLabels`` answered from the image itself (moto's version returns a canned label).

``install()`` replaces ``RekognitionResponse.detect_labels`` in moto. The handler validates the
request like AWS does, reads the image from ``Image.Bytes`` or from moto's in-process S3
(``Image.S3Object``), and answers with ``localaws.image_labels.labels_for_image``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

from moto.core.exceptions import JsonRESTError
from PIL import Image, UnidentifiedImageError

from localaws.image_labels import image_properties, labels_for_image

LABEL_MODEL_VERSION = "3.0"
MAX_BYTES_IMAGE = 5 * 1024 * 1024  # AWS limit for images passed as bytes
MAX_S3_IMAGE = 15 * 1024 * 1024  # AWS limit for images read from S3
DEFAULT_MIN_CONFIDENCE = 55.0  # AWS default
_FORMATS = {"JPEG", "PNG"}  # the only formats Rekognition accepts
_FEATURES = {"GENERAL_LABELS", "IMAGE_PROPERTIES"}


class RekognitionError(JsonRESTError):
    """A Rekognition client error (HTTP 400, JSON body with ``__type``)."""

    code = 400


def _invalid_parameter(message: str) -> RekognitionError:
    return RekognitionError("InvalidParameterException", message)


def parse_detect_labels_request(params: dict[str, Any]) -> tuple[dict[str, Any], int | None, float, set[str]]:
    """Validate DetectLabels parameters: (image spec, MaxLabels, MinConfidence, features)."""
    image = params.get("Image")
    if not isinstance(image, dict) or ("Bytes" in image) == ("S3Object" in image):
        raise _invalid_parameter("Image must contain exactly one of Bytes or S3Object")
    max_labels = params.get("MaxLabels")
    if max_labels is not None and (
        isinstance(max_labels, bool) or not isinstance(max_labels, int) or max_labels < 0
    ):
        raise _invalid_parameter(f"MaxLabels must be an integer >= 0, got {max_labels!r}")
    min_confidence = params.get("MinConfidence", DEFAULT_MIN_CONFIDENCE)
    if (
        isinstance(min_confidence, bool)
        or not isinstance(min_confidence, int | float)
        or not 0 <= min_confidence <= 100
    ):
        raise _invalid_parameter(f"MinConfidence must be a number between 0 and 100, got {min_confidence!r}")
    features = params.get("Features") or ["GENERAL_LABELS"]
    if not isinstance(features, list) or not set(features) <= _FEATURES:
        raise _invalid_parameter(f"Features must be a list of {sorted(_FEATURES)}, got {features!r}")
    return image, max_labels, float(min_confidence), set(features)


def _image_bytes(image: dict[str, Any], account_id: str, region: str) -> bytes:
    if "Bytes" in image:
        raw = image["Bytes"]
        if not isinstance(raw, str):
            raise _invalid_parameter("Image.Bytes must be base64-encoded")
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as e:
            raise _invalid_parameter(f"Image.Bytes is not valid base64: {e}") from e
        if len(data) > MAX_BYTES_IMAGE:
            raise RekognitionError(
                "ImageTooLargeException",
                f"Image size {len(data)} bytes exceeds the {MAX_BYTES_IMAGE}-byte limit for Image.Bytes",
            )
        return data
    s3_object = image["S3Object"]
    if not isinstance(s3_object, dict) or not s3_object.get("Bucket") or not s3_object.get("Name"):
        raise _invalid_parameter("Image.S3Object needs Bucket and Name")
    data = read_s3_object(
        account_id, region, s3_object["Bucket"], s3_object["Name"], s3_object.get("Version")
    )
    if len(data) > MAX_S3_IMAGE:
        raise RekognitionError(
            "ImageTooLargeException", f"Image size {len(data)} bytes exceeds the {MAX_S3_IMAGE}-byte limit"
        )
    return data


def read_s3_object(account_id: str, region: str, bucket: str, key: str, version: str | None = None) -> bytes:
    """Bytes of an object in moto's in-process S3; InvalidS3ObjectException when it is not there."""
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    backend = s3_backends[account_id][get_partition(region)]
    try:
        obj = backend.get_object(bucket, key, version_id=version)
    except Exception as e:  # moto raises MissingBucket / AccessDenied / MissingVersion ...
        raise RekognitionError(
            "InvalidS3ObjectException",
            f"Unable to get object metadata from S3. Check object key, region and/or access permissions. ({e})",
        ) from e
    if obj is None:
        raise RekognitionError(
            "InvalidS3ObjectException",
            "Unable to get object metadata from S3. Check object key, region and/or access permissions.",
        )
    return bytes(obj.value)


def open_image(data: bytes) -> Image.Image:
    """Decode JPEG/PNG bytes; InvalidImageFormatException for anything else, ImageTooLargeException for
    a decompression bomb (more pixels than Pillow's safety limit)."""
    try:
        img = Image.open(io.BytesIO(data))
        if img.format not in _FORMATS:
            raise RekognitionError(
                "InvalidImageFormatException",
                f"Request has unsupported image format {img.format or 'unknown'}",
            )
        img.load()
    except RekognitionError:
        raise
    except Image.DecompressionBombError as e:  # tiny file, enormous canvas: refuse before decoding
        raise RekognitionError("ImageTooLargeException", f"Image dimensions are too large: {e}") from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise RekognitionError("InvalidImageFormatException", "Request has invalid image format") from e
    return img


def detect_labels_response(params: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
    """The DetectLabels response for decoded request parameters (raises RekognitionError)."""
    image_spec, max_labels, min_confidence, features = parse_detect_labels_request(params)
    img = open_image(_image_bytes(image_spec, account_id, region))
    response: dict[str, Any] = {}
    if "GENERAL_LABELS" in features:
        labels = [lb for lb in labels_for_image(img) if lb["Confidence"] >= min_confidence]
        if max_labels is not None:
            labels = labels[:max_labels]
        response["Labels"] = labels
    if "IMAGE_PROPERTIES" in features:
        response["ImageProperties"] = image_properties(img)
    response["LabelModelVersion"] = LABEL_MODEL_VERSION
    return response


def _detect_labels(self: Any) -> str:
    """Replacement for moto's ``RekognitionResponse.detect_labels``."""
    try:
        params = json.loads(self.body or "{}")
    except (ValueError, TypeError) as e:
        raise RekognitionError("SerializationException", f"request body is not JSON: {e}") from e
    if not isinstance(params, dict):
        raise _invalid_parameter("request body must be a JSON object")
    return json.dumps(detect_labels_response(params, self.current_account, self.region))


def install() -> None:
    """Patch moto's Rekognition so DetectLabels looks at the image (idempotent)."""
    from moto.rekognition.responses import RekognitionResponse

    RekognitionResponse.detect_labels = _detect_labels  # type: ignore[method-assign]
