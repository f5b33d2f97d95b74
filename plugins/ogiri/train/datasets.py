"""Dataset versions built from the DynamoDB caption table.

* Split: a deterministic hash of ``ImageKey`` (salted, percent buckets), so an image never moves
  between splits and all captions of one image stay together.
* Frozen test set: the first version's test split is written once to ``datasets/frozen-test/`` and every
  later version's ``test.jsonl`` is a byte copy of it, so scores stay comparable across versions. New
  images that hash into the test bucket are held out (in no split) until the test set is re-frozen.
* Version id: a hash of the (ImageKey, CaptionId, caption, image, rating) rows and of ``min_rating``
  (when set), so rebuilding the same data with the same filter gives the same version and S3 keys.
* Ratings (issue 16): a caption's human ``Rating`` (catalog) rides along as ``"rating"`` in every
  manifest. ``min_rating`` drops the train/val captions rated below it (unrated captions stay); the
  test split is never filtered (it is frozen), but its records carry the captions' current ratings
  (captions and images unchanged, so scores stay comparable) for the rated-test metric of evaluate.py.
* Skip: when fewer than ``min_new_images`` images are new since the previous version, unless the run
  was triggered by drift (:func:`required_new_images`).

Manifests follow docs/interfaces.md: ``{"image", "caption", "labels", "image_key"}`` plus ``"rating"``
where rated, with ``image`` relative to the images channel (``s3://<bucket>/images/``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ogiri import catalog
from ogiri.aws import get_if_exists

SPLITS = ("train", "val", "test")
SPLIT_SALT = "ogiri-split-v1"
IMAGES_PREFIX = "images/"
DATASETS_PREFIX = "datasets"
FROZEN_TEST_DIR = f"{DATASETS_PREFIX}/frozen-test"
LATEST_POINTER = f"{DATASETS_PREFIX}/latest.json"
#: What started a training run (``training_runs.triggered_by``, the dataset summary's ``triggered_by``).
TRIGGER_CAPTIONS, TRIGGER_DRIFT, TRIGGER_MANUAL = "captions", "drift", "manual"


def required_new_images(min_new_images: int, triggered_by: str) -> int:
    """New images a run needs before it trains: ``min_new_images``, except for a drift-triggered run,
    which retrains on whatever data there is (the serving model no longer fits its traffic)."""
    return 0 if triggered_by == TRIGGER_DRIFT else min_new_images


def split_of(image_key: str, *, val_pct: int = 10, test_pct: int = 10, salt: str = SPLIT_SALT) -> str:
    """``train``/``val``/``test`` for an image, from a salted SHA-256 of its key (stable forever)."""
    if not image_key:
        raise ValueError("image_key must be a non-empty string")
    if not (0 <= val_pct and 0 <= test_pct and val_pct + test_pct < 100):
        raise ValueError(f"bad split percentages val={val_pct} test={test_pct}")
    bucket = int(hashlib.sha256(f"{salt}:{image_key}".encode()).hexdigest()[:8], 16) % 100
    if bucket < test_pct:
        return "test"
    if bucket < test_pct + val_pct:
        return "val"
    return "train"


def _labels(raw: Any) -> list[str]:
    if not raw:
        return []
    out = []
    for label in raw:
        if isinstance(label, str):
            out.append(label)
        elif isinstance(label, Mapping) and label.get("Name"):
            out.append(str(label["Name"]))
    return out


def manifest_record(item: Mapping[str, Any], bucket: str) -> dict[str, Any]:
    """The manifest line of one DynamoDB item (already deserialized to plain Python)."""
    image_key = item.get(catalog.IMAGE_KEY)
    if not image_key:
        raise ValueError(f"DynamoDB item without {catalog.IMAGE_KEY}: {dict(item)!r}")
    uri = item.get(catalog.S3_URI)
    caption = item.get(catalog.CAPTION)
    if not uri or caption is None:
        raise ValueError(
            f"item {image_key}/{item.get(catalog.CAPTION_ID)} lacks {catalog.S3_URI} or {catalog.CAPTION}"
        )
    prefix = f"s3://{bucket}/{IMAGES_PREFIX}"
    if not str(uri).startswith(prefix):
        raise ValueError(f"item {image_key} image {uri} is not under {prefix}")
    record = {
        "image": str(uri)[len(prefix) :],
        "caption": str(caption),
        "labels": _labels(item.get(catalog.LABELS)),
        "image_key": str(image_key),
    }
    if item.get(catalog.RATING) is not None:
        record["rating"] = float(item[catalog.RATING])
    return record


def below_min_rating(record: Mapping[str, Any], min_rating: float | None) -> bool:
    """Whether ``min_rating`` drops this manifest record: rated below it (unrated records never are)."""
    return min_rating is not None and record.get("rating") is not None and record["rating"] < min_rating


def _jsonl(records: Iterable[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records).encode("utf-8")


def _parse_jsonl(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _rows(items: Iterable[Mapping[str, Any]], bucket: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = ((str(i.get(catalog.IMAGE_KEY)), str(i.get(catalog.CAPTION_ID)), manifest_record(i, bucket)) for i in items)
    return sorted(rows, key=lambda r: (r[0], r[1]))


def _version(rows: list[tuple[str, str, dict[str, Any]]], min_rating: float | None = None) -> str:
    def line(k: str, c: str, r: dict[str, Any]) -> str:
        rated = f"\x00{r['rating']!r}" if "rating" in r else ""  # unrated rows hash as before ratings existed
        return f"{k}\x00{c}\x00{r['caption']}\x00{r['image']}{rated}"

    text = "\n".join(line(k, c, r) for k, c, r in rows)
    if min_rating is not None:
        text += f"\nmin_rating\x00{float(min_rating)!r}"
    return "ds-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def dataset_version(items: Iterable[Mapping[str, Any]], bucket: str, min_rating: float | None = None) -> str:
    """``ds-<hash>`` of the (ImageKey, CaptionId, caption, image, rating) rows and ``min_rating``:
    same data and filter ⇒ same version."""
    return _version(_rows(items, bucket), min_rating)


def _with_current_ratings(frozen: list[dict[str, Any]], rows: list[tuple[str, str, dict[str, Any]]]) -> list[dict]:
    """The frozen test records, each with its caption's current rating (if any) in place of the frozen one."""
    ratings = {(r["image_key"], r["caption"]): r["rating"] for _, _, r in rows if "rating" in r}
    out = []
    for record in frozen:
        clean = {k: v for k, v in record.items() if k != "rating"}
        rating = ratings.get((clean.get("image_key"), clean.get("caption")))
        out.append(clean if rating is None else {**clean, "rating": rating})
    return out


@dataclass
class DatasetPlan:
    """What one dataset version holds (records per split) or why it was not built."""

    version: str
    splits: dict[str, list[dict[str, Any]]]
    total_images: int
    new_images: int
    held_out_images: int = 0
    min_rating: float | None = None
    dropped_captions: int = 0
    frozen_test_created: bool = False
    skip_reason: str | None = None
    image_keys: list[str] = field(default_factory=list)

    def summary(self, bucket: str) -> dict[str, Any]:
        """XCom-friendly description (no records): version, S3 URIs, counts, skip reason."""
        base = f"s3://{bucket}/{DATASETS_PREFIX}/{self.version}"
        return {
            "version": self.version,
            "skip_reason": self.skip_reason,
            "total_images": self.total_images,
            "new_images": self.new_images,
            "held_out_images": self.held_out_images,
            "min_rating": self.min_rating,
            "dropped_captions": self.dropped_captions,
            "frozen_test_created": self.frozen_test_created,
            "counts": {s: len(self.splits.get(s, [])) for s in SPLITS},
            "uris": {s: f"{base}/{s}.jsonl" for s in SPLITS},
            "channels": {s: f"{base}/{s}/" for s in SPLITS},
            "images_uri": f"s3://{bucket}/{IMAGES_PREFIX}",
        }


def _split_rows(rows: list[tuple[str, str, dict[str, Any]]], frozen_keys: set[str] | None,
                min_rating: float | None, val_pct: int, test_pct: int) -> tuple[dict[str, list], set[str], int]:
    """Records per split (test left empty when a frozen set exists), held-out image keys (new images of
    the test bucket), and how many train/val captions ``min_rating`` dropped."""
    splits: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    held_out: set[str] = set()
    dropped = 0
    for key, _, record in rows:
        split = split_of(key, val_pct=val_pct, test_pct=test_pct)
        if split == "test":
            if frozen_keys is not None:
                if key not in frozen_keys:
                    held_out.add(key)
                continue  # the frozen records are used as they were frozen
        elif below_min_rating(record, min_rating):
            dropped += 1
            continue
        splits[split].append(record)
    return splits, held_out, dropped


def plan_dataset(
    items: Iterable[Mapping[str, Any]],
    *,
    bucket: str,
    previous_image_keys: Iterable[str] | None,
    frozen_test: list[dict[str, Any]] | None,
    min_new_images: int,
    val_pct: int = 10,
    test_pct: int = 10,
    min_rating: float | None = None,
) -> DatasetPlan:
    """Pure planning: split the items, apply the frozen test set and ``min_rating`` (train/val only),
    decide whether to skip."""
    if min_new_images < 0:
        raise ValueError("min_new_images must be >= 0")
    if min_rating is not None and not 1 <= min_rating <= 5:
        raise ValueError(f"min_rating must be between 1 and 5 (or null), not {min_rating}")
    rows = _rows(items, bucket)
    version = _version(rows, min_rating)
    image_keys = sorted({k for k, _, _ in rows})
    previous = set(previous_image_keys or ())
    new_images = len(set(image_keys) - previous)

    frozen_keys = {r["image_key"] for r in frozen_test} if frozen_test is not None else None
    splits, held_out, dropped = _split_rows(rows, frozen_keys, min_rating, val_pct, test_pct)
    if frozen_test is not None:
        splits["test"] = _with_current_ratings(frozen_test, rows)

    plan = DatasetPlan(
        version=version,
        splits=splits,
        total_images=len(image_keys),
        new_images=new_images,
        held_out_images=len(held_out),
        min_rating=min_rating,
        dropped_captions=dropped,
        frozen_test_created=frozen_test is None,
        image_keys=image_keys,
    )
    if not rows:
        plan.skip_reason = "the caption table is empty"
    elif new_images < min_new_images:
        plan.skip_reason = (
            f"too little new data: {new_images} new image(s) since the last dataset version "
            f"(minimum {min_new_images}); {len(image_keys)} image(s) in total"
        )
    else:
        empty = [s for s in SPLITS if not splits[s]]
        if empty:
            plan.skip_reason = f"too few images to fill every split ({', '.join(empty)} empty) from {len(image_keys)} image(s)"
    return plan


def build_dataset_version(
    s3_client: Any,
    dynamodb_client: Any,
    *,
    bucket: str,
    table: str,
    min_new_images: int,
    val_pct: int = 10,
    test_pct: int = 10,
    run_key: str = "",
    min_rating: float | None = None,
    triggered_by: str = TRIGGER_MANUAL,
) -> dict[str, Any]:
    """Plan a version from the table and, unless it is skipped, write its manifests and its candidate
    pointer (``latest`` moves in :func:`mark_trained`, after training succeeds). Returns
    :meth:`DatasetPlan.summary`.

    New images are counted against the last *trained* version. When the data is exactly that
    version, a retry of the run that trained it (same ``run_key``) keeps its decision (counted
    against the version before), while any other run (a re-ingest or backfill that added nothing)
    sees 0 new images and skips: unchanged data is not retrained. ``min_rating`` (1-5 or None)
    drops train/val captions rated below it (see the module docstring). A drift-triggered run
    (``triggered_by="drift"``) trains below ``min_new_images``."""
    latest_raw = get_if_exists(s3_client, bucket, LATEST_POINTER)
    latest = json.loads(latest_raw) if latest_raw else None
    frozen_raw = get_if_exists(s3_client, bucket, f"{FROZEN_TEST_DIR}/test.jsonl")
    frozen = _parse_jsonl(frozen_raw) if frozen_raw is not None else None
    items = catalog.scan_items(dynamodb_client, table)
    version = dataset_version(items, bucket, min_rating)
    if latest is None:
        previous_keys = None
    elif latest.get("version") == version and run_key and latest.get("run_key") == run_key:
        previous_keys = latest.get("previous_image_keys")
    else:
        previous_keys = latest.get("image_keys", [])
    plan = plan_dataset(
        items,
        bucket=bucket,
        previous_image_keys=previous_keys,
        frozen_test=frozen,
        min_new_images=required_new_images(min_new_images, triggered_by),
        val_pct=val_pct,
        test_pct=test_pct,
        min_rating=min_rating,
    )
    summary = {**plan.summary(bucket), "triggered_by": triggered_by}
    if not plan.skip_reason:
        _write_version(s3_client, bucket, plan, summary, write_frozen=frozen is None,
                       previous_keys=previous_keys, run_key=run_key)
    return summary


def _write_version(s3_client: Any, bucket: str, plan: DatasetPlan, summary: dict[str, Any], *, write_frozen: bool,
                   previous_keys: list[str] | None, run_key: str) -> None:
    """The version's manifests, meta.json and candidate pointer (and the frozen test set, the first time)."""
    if write_frozen:  # frozen without ratings: they are attached afresh to every version's copy
        frozen_body = _jsonl({k: v for k, v in r.items() if k != "rating"} for r in plan.splits["test"])
        s3_client.put_object(Bucket=bucket, Key=f"{FROZEN_TEST_DIR}/test.jsonl", Body=frozen_body)
    base = f"{DATASETS_PREFIX}/{plan.version}"
    for split in SPLITS:
        body = _jsonl(plan.splits[split])
        # Flat file for people and the smoke test; a one-file prefix per split for SageMaker channels.
        s3_client.put_object(Bucket=bucket, Key=f"{base}/{split}.jsonl", Body=body)
        s3_client.put_object(Bucket=bucket, Key=f"{base}/{split}/{split}.jsonl", Body=body)
    meta = {k: v for k, v in summary.items() if k not in ("skip_reason", "triggered_by")}
    s3_client.put_object(Bucket=bucket, Key=f"{base}/meta.json", Body=json.dumps(meta, indent=1).encode())
    # The candidate pointer: it becomes ``latest`` only once a model was trained on this version
    # (:func:`mark_trained`), so a failed training run does not hide its data from the next one.
    pointer = {"version": plan.version, "image_keys": plan.image_keys, "previous_image_keys": previous_keys,
               "run_key": run_key}
    s3_client.put_object(Bucket=bucket, Key=f"{base}/pointer.json", Body=json.dumps(pointer).encode())


def mark_trained(s3_client: Any, bucket: str, version: str) -> None:
    """Make ``version`` the base that later versions count new images against (idempotent)."""
    s3_client.copy_object(
        Bucket=bucket,
        Key=LATEST_POINTER,
        CopySource={"Bucket": bucket, "Key": f"{DATASETS_PREFIX}/{version}/pointer.json"},
    )
