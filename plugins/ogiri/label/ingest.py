"""Labeled outcomes → the caption table (and the ledger, for model captions).

* ``caption``: one item per distinct valid caption (``CaptionSource=human``, ``WorkerIds``,
  ``WorkerCount``, ``Agreement``, ``LabelingJob``), with the image's attributes (S3 URI, size, labels,
  ingest date) copied from an existing item of the image. A caption the image already has is not
  written again. ``BatchWriteItem`` puts, so a retry writes the same items.
* ``rate``: an accepted caption (``origin=audit``) gets ``RatingFit``/``RatingHumour``/``Rating``/
  ``RatingCount``/``RatingJob`` (``UpdateItem``, only if the item still exists); a model caption from
  ``ogiri_batch_caption`` (``origin=batch``) is not a caption item: its ratings go to its
  ``batch_captions`` row in the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from ogiri import catalog
from ogiri.aws import error_code
from ogiri.backoff import with_backoff
from ogiri.label.answers import Outcome

log = logging.getLogger(__name__)
#: Image attributes a human caption copies from the image's existing items.
IMAGE_ATTRIBUTES = (catalog.S3_URI, catalog.SOURCE_URL, catalog.WIDTH, catalog.HEIGHT, catalog.LABELS,
                    catalog.LABEL_NAMES, catalog.LABEL_MODEL_VERSION, catalog.INGEST_DATE)


def _num(value: float) -> dict[str, str]:
    return {"N": str(Decimal(str(round(float(value), 4))))}


def image_items(dynamodb: Any, table: str, image_key: str) -> list[dict[str, Any]]:
    """The typed items of one image (every caption it has)."""
    kwargs: dict[str, Any] = {"TableName": table, "KeyConditionExpression": "#k = :k",
                              "ExpressionAttributeNames": {"#k": catalog.IMAGE_KEY},
                              "ExpressionAttributeValues": {":k": {"S": image_key}}}
    items: list[dict[str, Any]] = []
    while True:
        page = dynamodb.query(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def human_caption_items(outcome: Outcome, existing: Sequence[dict[str, Any]], *, job: str,
                        run_key: str, bucket: str) -> list[dict[str, Any]]:
    """The new typed items of one labeled ``caption`` outcome."""
    have = {i[catalog.CAPTION_ID]["S"] for i in existing}
    base = {a: existing[0][a] for a in IMAGE_ATTRIBUTES if existing and a in existing[0]}
    base.setdefault(catalog.S3_URI, {"S": outcome.obj["source-ref"] or
                                     f"s3://{bucket}/{catalog.image_s3_key(outcome.obj['image_key'])}"})
    items = []
    for caption, workers in outcome.captions:
        cid = catalog.caption_id(caption)
        if cid in have:
            continue
        items.append({**base,
                      catalog.IMAGE_KEY: {"S": outcome.obj["image_key"]}, catalog.CAPTION_ID: {"S": cid},
                      catalog.CAPTION: {"S": caption}, catalog.CAPTION_SOURCE: {"S": catalog.SOURCE_HUMAN},
                      catalog.WORKER_IDS: {"SS": sorted(set(workers))}, catalog.WORKER_COUNT: _num(len(set(workers))),
                      catalog.AGREEMENT: _num(outcome.agreement if outcome.agreement is not None else 1.0),
                      catalog.LABELING_JOB: {"S": job}, catalog.SOURCE_REF: {"S": f"labeling/{job}#{outcome.obj['id']}"},
                      catalog.RUN_KEY: {"S": run_key}})
    return items


def batch_put(dynamodb: Any, table: str, items: Sequence[dict[str, Any]], attempts: int = 8) -> int:
    """Put ``items`` 25 at a time, retrying ``UnprocessedItems``; returns how many were written."""
    for start in range(0, len(items), 25):
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]}
        for _ in range(attempts):
            resp = with_backoff(lambda p=pending: dynamodb.batch_write_item(RequestItems=p))
            pending = resp.get("UnprocessedItems") or {}
            if not pending:
                break
        else:
            raise RuntimeError(f"BatchWriteItem on {table} left items unprocessed {attempts} times")
    return len(items)


def store_rating(dynamodb: Any, table: str, outcome: Outcome, *, job: str) -> bool:
    """Put the ratings on the accepted caption item; False when the item no longer exists."""
    try:
        dynamodb.update_item(
            TableName=table,
            Key=catalog.key_of((outcome.obj["image_key"], outcome.obj["caption_id"])),
            UpdateExpression="SET #f = :f, #h = :h, #r = :r, #c = :c, #j = :j",
            ConditionExpression="attribute_exists(#k)",
            ExpressionAttributeNames={"#f": catalog.RATING_FIT, "#h": catalog.RATING_HUMOUR, "#r": catalog.RATING,
                                      "#c": catalog.RATING_COUNT, "#j": catalog.RATING_JOB, "#k": catalog.IMAGE_KEY},
            ExpressionAttributeValues={":f": _num(outcome.fit), ":h": _num(outcome.humour),
                                       ":r": _num(outcome.rating), ":c": _num(len(outcome.ratings)),
                                       ":j": {"S": job}},
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def store_outcomes(outcomes: Sequence[Outcome], *, dynamodb: Any, table: str, ledger: Any, job: str,
                   run_key: str, bucket: str) -> dict[str, int]:
    """Write every labeled outcome; an audited caption that vanished meanwhile becomes a rejected object."""
    written = {"captions": 0, "ratings": 0, "model_ratings": 0}
    items: list[dict[str, Any]] = []
    model_ratings = []
    for out in (o for o in outcomes if o.status == "labeled"):
        if out.obj["task"] == "caption":
            items += human_caption_items(out, image_items(dynamodb, table, out.obj["image_key"]), job=job,
                                         run_key=run_key, bucket=bucket)
        elif out.obj.get("origin") == "batch":
            model_ratings.append(out)
        elif store_rating(dynamodb, table, out, job=job):
            written["ratings"] += 1
        else:
            out.status = "rejected"
            out.rejects.append({"id": out.obj["id"], "image_key": out.obj["image_key"], "level": "object",
                                "reason": "caption_missing", "worker_id": None})
    written["captions"] = batch_put(dynamodb, table, items)
    if model_ratings:
        written["model_ratings"] = ledger.rate_batch_captions([
            {"image_key": o.obj["image_key"], "model_name": o.obj.get("model_name") or "", "rating_fit": o.fit,
             "rating_humour": o.humour, "rating": o.rating, "rating_count": len(o.ratings), "rating_job": job}
            for o in model_ratings])
    log.info("labeling job %s: wrote %d human captions, %d ratings of captions, %d ratings of model captions",
             job, written["captions"], written["ratings"], written["model_ratings"])
    return written
