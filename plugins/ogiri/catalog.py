"""The caption table (DynamoDB): the one owner of its key schema, attribute names, index and item codec.

One item per (image, caption). Key: ``ImageKey`` (SHA-256 hex of the normalised JPEG) and
``CaptionId`` (:func:`caption_id`). Attributes: ``Caption``, ``SourceUrl``, ``S3Uri``, ``Width``,
``Height``, ``Labels`` (list of ``{Name, Confidence}``), ``LabelNames``, ``LabelModelVersion``,
``IngestDate`` (partition date, hash key of the ``IngestDateIndex`` GSI), ``SourceRef``
(``<csv key>#L<record number>``, the row that created the item), ``RunKey`` and ``CaptionSource``.
Labeling (issue 16) adds provenance (``WorkerIds``, ``WorkerCount``, ``Agreement``,
``LabelingJob``) and ratings (``RatingFit``, ``RatingHumour``, ``Rating``, ``RatingCount``,
``RatingJob``); see the labeling block below.

Writers build items with :class:`CaptionItem`; readers use the attribute constants and
:func:`from_typed` / :func:`labels_of`, never string literals of their own.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

IMAGE_KEY = "ImageKey"
CAPTION_ID = "CaptionId"
CAPTION = "Caption"
SOURCE_URL = "SourceUrl"
S3_URI = "S3Uri"
WIDTH = "Width"
HEIGHT = "Height"
LABELS = "Labels"
LABEL_NAMES = "LabelNames"
LABEL_MODEL_VERSION = "LabelModelVersion"
INGEST_DATE = "IngestDate"
SOURCE_REF = "SourceRef"
RUN_KEY = "RunKey"

# --- Labeling (issue 16): caption provenance and human ratings -------------------------------
#: Where a caption came from; a missing attribute means :data:`SOURCE_SUBMITTED`.
CAPTION_SOURCE = "CaptionSource"
SOURCE_SUBMITTED = "submitted"
SOURCE_HUMAN = "human"
SOURCE_MODEL = "model"
CAPTION_SOURCES = (SOURCE_SUBMITTED, SOURCE_HUMAN, SOURCE_MODEL)
#: Labeling workers of a human caption: ids only (string set), never personal data.
WORKER_IDS = "WorkerIds"
WORKER_COUNT = "WorkerCount"
#: Agreement of the workers on a human caption (N, 0..1).
AGREEMENT = "Agreement"
LABELING_JOB = "LabelingJob"
#: Ratings on a rated caption: medians (N, 1-5) of fit and humour, and their mean ``Rating``
#: (what ``min_rating`` / ``rating_weight`` of ``ogiri_train`` use).
RATING_FIT = "RatingFit"
RATING_HUMOUR = "RatingHumour"
RATING = "Rating"
RATING_COUNT = "RatingCount"
RATING_JOB = "RatingJob"
# --- end labeling ------------------------------------------------------------------------------

#: Global secondary index serving partitions and backfills: ``IngestDate`` (HASH), ``ImageKey`` (RANGE).
INGEST_DATE_INDEX = "IngestDateIndex"
TABLE_KEY_SCHEMA = [
    {"AttributeName": IMAGE_KEY, "KeyType": "HASH"},
    {"AttributeName": CAPTION_ID, "KeyType": "RANGE"},
]


def caption_id(caption: str) -> str:
    """Stable id of a caption: SHA-256 (first 32 hex digits) of its NFC form."""
    return hashlib.sha256(unicodedata.normalize("NFC", caption).encode("utf-8")).hexdigest()[:32]


def image_s3_key(sha256_hex: str) -> str:
    """The content-addressed S3 key of an ingested image: ``images/<sha[:2]>/<sha>.jpg``."""
    return f"images/{sha256_hex[:2]}/{sha256_hex}.jpg"


def table_definition(table: str) -> dict[str, Any]:
    """``CreateTable`` arguments of the captions table (on-demand billing, ingest-date GSI)."""
    return {
        "TableName": table,
        "KeySchema": TABLE_KEY_SCHEMA,
        "AttributeDefinitions": [
            {"AttributeName": IMAGE_KEY, "AttributeType": "S"},
            {"AttributeName": CAPTION_ID, "AttributeType": "S"},
            {"AttributeName": INGEST_DATE, "AttributeType": "S"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": INGEST_DATE_INDEX,
                "KeySchema": [
                    {"AttributeName": INGEST_DATE, "KeyType": "HASH"},
                    {"AttributeName": IMAGE_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


@dataclass(frozen=True)
class ImageLabels:
    """Labels of one image: ``(name, confidence 0-100)`` best first, and the model version."""

    labels: tuple[tuple[str, float], ...]
    model_version: str

    @property
    def names(self) -> list[str]:
        """Label names, best first."""
        return [name for name, _ in self.labels]

    def to_attribute(self) -> dict[str, Any]:
        """The typed ``Labels`` attribute (``L`` of ``M``)."""
        return {
            "L": [
                {"M": {"Name": {"S": name}, "Confidence": {"N": str(Decimal(str(round(conf, 3))))}}}
                for name, conf in self.labels
            ]
        }


def labels_of(item: Mapping[str, Any]) -> ImageLabels | None:
    """The labels of a typed item (``Labels`` + ``LabelModelVersion``), or None when it has none."""
    if LABELS not in item:
        return None
    labels = tuple(
        (entry["M"]["Name"]["S"], float(entry["M"]["Confidence"]["N"])) for entry in item[LABELS]["L"]
    )
    return ImageLabels(labels=labels, model_version=item.get(LABEL_MODEL_VERSION, {}).get("S", ""))


@dataclass(frozen=True)
class CaptionItem:
    """One caption of one image, as the ingestion writes it."""

    image_key: str
    caption: str
    source_url: str
    s3_uri: str
    ingest_date: str
    source_ref: str
    run_key: str
    labels: ImageLabels
    width: int
    height: int

    @property
    def key(self) -> tuple[str, str]:
        """``(ImageKey, CaptionId)``."""
        return self.image_key, caption_id(self.caption)

    def item(self) -> dict[str, Any]:
        """The typed DynamoDB item."""
        item: dict[str, Any] = {
            IMAGE_KEY: {"S": self.image_key},
            CAPTION_ID: {"S": caption_id(self.caption)},
            CAPTION: {"S": self.caption},
            SOURCE_URL: {"S": self.source_url},
            S3_URI: {"S": self.s3_uri},
            WIDTH: {"N": str(self.width)},
            HEIGHT: {"N": str(self.height)},
            LABELS: self.labels.to_attribute(),
            LABEL_MODEL_VERSION: {"S": self.labels.model_version},
            INGEST_DATE: {"S": self.ingest_date},
            SOURCE_REF: {"S": self.source_ref},
            RUN_KEY: {"S": self.run_key},
            CAPTION_SOURCE: {"S": SOURCE_SUBMITTED},
        }
        if self.labels.names:
            item[LABEL_NAMES] = {"L": [{"S": n} for n in self.labels.names]}
        return item


def key_of(key: tuple[str, str]) -> dict[str, Any]:
    """The typed primary key ``{ImageKey, CaptionId}`` of ``(image_key, caption_id)``."""
    image_key, cid = key
    return {IMAGE_KEY: {"S": image_key}, CAPTION_ID: {"S": cid}}


def from_typed(item: Mapping[str, Any]) -> dict[str, Any]:
    """A typed DynamoDB item as plain Python (``Decimal`` numbers)."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in item.items()}


def scan_items(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of ``table`` as plain Python (paginated Scan)."""
    items = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        items.extend(from_typed(raw) for raw in page.get("Items", []))
    return items
