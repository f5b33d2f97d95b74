"""Dataset versions: deterministic split, frozen test set, skip on too little new data (moto S3/DynamoDB)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from ogiri.train.datasets import (
    FROZEN_TEST_DIR,
    build_dataset_version,
    dataset_version,
    manifest_record,
    mark_trained,
    plan_dataset,
    split_of,
)

BUCKET, TABLE = "ogiri-data", "captions"


def item(i: int, caption_id: str = "c0", caption: str | None = None) -> dict:
    key = f"{i:064x}"
    return {
        "ImageKey": key,
        "CaptionId": caption_id,
        "S3Uri": f"s3://{BUCKET}/images/{key[:2]}/{key}.jpg",
        "Caption": caption or f"猫が{i}匹",
        "Labels": [{"Name": "Cat", "Confidence": Decimal("99.0")}],
    }


def test_split_is_deterministic_and_roughly_proportional():
    keys = [f"{i:064x}" for i in range(2000)]
    splits = [split_of(k) for k in keys]
    assert splits == [split_of(k) for k in keys]
    assert 150 < splits.count("test") < 250 and 150 < splits.count("val") < 250
    with pytest.raises(ValueError):
        split_of("")
    with pytest.raises(ValueError):
        split_of("k", val_pct=60, test_pct=50)


def test_all_captions_of_an_image_share_its_split():
    items = [item(i, c) for i in range(60) for c in ("a", "b")]
    plan = plan_dataset(items, bucket=BUCKET, previous_image_keys=None, frozen_test=None, min_new_images=0)
    for split, records in plan.splits.items():
        for r in records:
            assert split_of(r["image_key"]) == split


def test_manifest_record_shape_and_errors():
    rec = manifest_record(item(1), BUCKET)
    assert rec["image"] == f"{1:064x}"[:2] + f"/{1:064x}.jpg" and rec["labels"] == ["Cat"]
    assert rec["caption"] == "猫が1匹"
    with pytest.raises(ValueError, match="not under"):
        manifest_record({**item(1), "S3Uri": "s3://elsewhere/x.jpg"}, BUCKET)
    with pytest.raises(ValueError, match="without ImageKey"):
        manifest_record({"Caption": "x"}, BUCKET)


def test_version_depends_only_on_content():
    items = [item(i) for i in range(30)]
    a = plan_dataset(items, bucket=BUCKET, previous_image_keys=None, frozen_test=None, min_new_images=0)
    b = plan_dataset(list(reversed(items)), bucket=BUCKET, previous_image_keys=None, frozen_test=None,
                     min_new_images=0)
    c = plan_dataset(items[:-1], bucket=BUCKET, previous_image_keys=None, frozen_test=None, min_new_images=0)
    assert a.version == b.version != c.version


@pytest.fixture
def aws():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "ImageKey", "KeyType": "HASH"},
                       {"AttributeName": "CaptionId", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "ImageKey", "AttributeType": "S"},
                                  {"AttributeName": "CaptionId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield s3, boto3.resource("dynamodb", region_name="us-east-1").Table(TABLE), ddb


def put(table, items):
    with table.batch_writer() as batch:
        for i in items:
            batch.put_item(Item=i)


def build(s3, ddb, min_new=5, run_key="ogiri_train:r1"):
    return build_dataset_version(s3, ddb, bucket=BUCKET, table=TABLE, min_new_images=min_new, run_key=run_key)


def read(s3, key):
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_first_version_writes_manifests_and_freezes_test(aws):
    s3, table, ddb = aws
    put(table, [item(i) for i in range(40)])
    summary = build(s3, ddb)
    assert summary["skip_reason"] is None and summary["new_images"] == 40
    assert sum(summary["counts"].values()) == 40
    base = f"datasets/{summary['version']}"
    train = [json.loads(x) for x in read(s3, f"{base}/train.jsonl").decode().splitlines()]
    assert len(train) == summary["counts"]["train"]
    assert read(s3, f"{base}/train/train.jsonl") == read(s3, f"{base}/train.jsonl")
    assert read(s3, f"{FROZEN_TEST_DIR}/test.jsonl") == read(s3, f"{base}/test.jsonl")
    assert summary["channels"]["train"] == f"s3://{BUCKET}/{base}/train/"


def test_too_little_new_data_skips_then_enough_builds_with_frozen_test(aws):
    s3, table, ddb = aws
    put(table, [item(i) for i in range(40)])
    first = build(s3, ddb)
    mark_trained(s3, BUCKET, first["version"])  # what record_training does when the job completed
    frozen = read(s3, f"{FROZEN_TEST_DIR}/test.jsonl")

    put(table, [item(i) for i in range(40, 43)])  # 3 new images < 5
    skipped = build(s3, ddb)
    assert skipped["skip_reason"].startswith("too little new data: 3 new image(s)")
    assert not s3.list_objects_v2(Bucket=BUCKET, Prefix=f"datasets/{skipped['version']}/").get("Contents")

    put(table, [item(i) for i in range(43, 140)])
    second = build(s3, ddb)
    assert second["skip_reason"] is None and second["version"] != first["version"]
    assert second["new_images"] == 100
    # The test split is byte-identical to the frozen one; new test-bucket images are held out of training.
    assert read(s3, f"datasets/{second['version']}/test.jsonl") == frozen
    assert second["held_out_images"] > 0
    trained = {json.loads(x)["image_key"] for x in read(s3, f"datasets/{second['version']}/train.jsonl").decode().splitlines()}
    assert all(split_of(k) == "train" for k in trained)


def test_a_version_that_was_never_trained_does_not_hide_its_data(aws):
    s3, table, ddb = aws
    put(table, [item(i) for i in range(40)])
    trained = build(s3, ddb)
    mark_trained(s3, BUCKET, trained["version"])
    put(table, [item(i) for i in range(40, 50)])
    failed = build(s3, ddb)  # built, but its training job failed: never marked
    assert failed["skip_reason"] is None and failed["new_images"] == 10
    put(table, [item(i) for i in range(50, 52)])  # only 2 more: still 12 new since the trained version
    retry = build(s3, ddb)
    assert retry["skip_reason"] is None and retry["new_images"] == 12
    mark_trained(s3, BUCKET, retry["version"])
    again = build(s3, ddb)  # the same run retried after training: same version, same decision
    assert again["version"] == retry["version"] and again["skip_reason"] is None
    put(table, [item(i) for i in range(52, 54)])
    assert build(s3, ddb)["skip_reason"].startswith("too little new data: 2 new image(s)")


def test_rebuilding_the_same_data_is_idempotent(aws):
    s3, table, ddb = aws
    put(table, [item(i) for i in range(40)])
    first = build(s3, ddb)
    again = build(s3, ddb)  # rerun of the same run: same version, same decision
    assert {k: v for k, v in again.items() if k != "frozen_test_created"} == {
        k: v for k, v in first.items() if k != "frozen_test_created"
    }
    assert first["frozen_test_created"] and not again["frozen_test_created"]


def test_empty_table_and_tiny_table_skip(aws):
    s3, table, ddb = aws
    assert build(s3, ddb, min_new=0)["skip_reason"] == "the caption table is empty"
    put(table, [item(1)])
    assert "too few images" in build(s3, ddb, min_new=0)["skip_reason"]


def test_reingesting_unchanged_data_does_not_retrain(aws):
    """Issue 13: a backfill that re-ingests old nights emits asset events, but the data is the
    version already trained: a new training run counts 0 new images and skips."""
    s3, table, ddb = aws
    put(table, [item(i) for i in range(40)])
    trained = build(s3, ddb, run_key="ogiri_train:asset-1")
    mark_trained(s3, BUCKET, trained["version"])
    put(table, [item(i) for i in range(40)])  # the re-ingest rewrites the same items
    later = build(s3, ddb, run_key="ogiri_train:asset-2")
    assert later["version"] == trained["version"] and later["new_images"] == 0
    assert later["skip_reason"].startswith("too little new data: 0 new image(s)")
    retry = build(s3, ddb, run_key="ogiri_train:asset-1")  # the training run itself, retried
    assert retry["skip_reason"] is None and retry["new_images"] == 40


# -- issue 16: ratings ------------------------------------------------------------------------------


def rated(i: int, caption_id: str, rating: str | None) -> dict:
    out = item(i, caption_id, caption=f"猫が{i}匹 ({caption_id})")
    if rating is not None:
        out.update({"Rating": Decimal(rating), "RatingFit": Decimal(rating), "RatingHumour": Decimal(rating),
                    "RatingCount": Decimal(3), "RatingJob": "ogiri-rate-1", "CaptionSource": "submitted"})
    return out


def _rated_table() -> list[dict]:
    """60 images, each with a low-rated (1.5), a threshold (3) and an unrated caption."""
    return [rated(i, c, r) for i in range(60) for c, r in (("low", "1.5"), ("mid", "3"), ("none", None))]


def _lines(s3, key) -> list[dict]:
    return [json.loads(x) for x in read(s3, key).decode().splitlines()]


def test_min_rating_drops_captions_rated_below_it_from_train_and_val_only(aws):
    s3, table, ddb = aws
    put(table, _rated_table())
    summary = build_dataset_version(s3, ddb, bucket=BUCKET, table=TABLE, min_new_images=0, min_rating=3)
    base = f"datasets/{summary['version']}"
    kept = _lines(s3, f"{base}/train.jsonl") + _lines(s3, f"{base}/val.jsonl")
    assert {r["caption"].split("(")[1] for r in kept} == {"mid)", "none)"}  # unrated and rating == 3 stay
    assert all(r["rating"] == 3.0 for r in kept if r["caption"].endswith("(mid)"))
    assert all("rating" not in r for r in kept if r["caption"].endswith("(none)"))
    assert summary["dropped_captions"] == len(kept) // 2 > 0 and summary["min_rating"] == 3
    test = _lines(s3, f"{base}/test.jsonl")  # the frozen test set is never filtered, and carries ratings
    assert len(test) == summary["counts"]["test"] == 3 * len({r["image_key"] for r in test})
    assert sorted({r.get("rating") for r in test}, key=str) == [1.5, 3.0, None]
    assert all("rating" not in r for r in _lines(s3, f"{FROZEN_TEST_DIR}/test.jsonl"))  # frozen: no ratings


def test_version_changes_with_min_rating_and_ratings_but_not_for_unrated_data():
    items = _rated_table()

    def plan(rows, m=None):
        return plan_dataset(rows, bucket=BUCKET, previous_image_keys=None, frozen_test=None, min_new_images=0,
                            min_rating=m)

    versions = {m: plan(items, m).version for m in (None, 2, 3, 3.0)}
    assert len({versions[None], versions[2], versions[3]}) == 3 and versions[3] == versions[3.0]
    assert plan(items, 2).dropped_captions > 0 and plan(items, 1).dropped_captions == 0
    rerated = [{**i, "Rating": Decimal("4")} if "Rating" in i else i for i in items]
    assert plan(rerated).version != versions[None]  # a changed rating is changed content
    unrated = [item(i) for i in range(30)]  # data without ratings keeps the version it had before ratings
    assert plan(unrated).version == dataset_version(unrated, BUCKET) == "ds-" + hashlib.sha256(
        "\n".join(_legacy_line(i) for i in range(30)).encode()
    ).hexdigest()[:12]
    with pytest.raises(ValueError, match="min_rating must be between 1 and 5"):
        plan(items, 6)


def _legacy_line(i: int) -> str:
    key = f"{i:064x}"
    return f"{key}\x00c0\x00猫が{i}匹\x00{key[:2]}/{key}.jpg"


def test_frozen_test_records_carry_the_current_rating(aws):
    s3, table, ddb = aws
    put(table, [rated(i, "a", None) for i in range(40)])
    first = build(s3, ddb, min_new=0)
    assert all("rating" not in r for r in _lines(s3, f"datasets/{first['version']}/test.jsonl"))
    put(table, [rated(i, "a", "4.5") for i in range(40)])  # a rating job rates every caption
    second = build(s3, ddb, min_new=0)
    assert second["version"] != first["version"]
    test = _lines(s3, f"datasets/{second['version']}/test.jsonl")
    assert test and all(r["rating"] == 4.5 for r in test)
    assert [{k: v for k, v in r.items() if k != "rating"} for r in test] == _lines(s3, f"{FROZEN_TEST_DIR}/test.jsonl")
