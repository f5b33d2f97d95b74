"""Provisioning, labels and DynamoDB records against the emulator (through the provider hooks)."""

from __future__ import annotations

import threading

import pytest
from ingest_dag_env import BUCKET, TABLE

from ogiri.aws import put_if_absent, put_if_changed
from ogiri.backoff import TokenBucket
from ogiri.catalog import INGEST_DATE_INDEX, CaptionItem, ImageLabels, caption_id
from ogiri.ingest.labels import Labeler, known_labels
from ogiri.ingest.records import RecordWriter
from ogiri.provision import ensure_bucket, ensure_table

LABELS = ImageLabels((("Red", 91.5), ("Circle", 80.25)), "3.0")


def _record(i: int, caption: str = "赤い丸がひとつ", source: str = "landing/dt=2026-01-01/a.csv", **kw):
    defaults = dict(
        image_key=f"{i:064x}",
        caption=caption,
        source_url=f"http://127.0.0.1/img/{i}.jpg",
        s3_uri=f"s3://{BUCKET}/images/00/{i:064x}.jpg",
        ingest_date="2026-01-01",
        source_ref=f"{source}#L{i + 1}",
        run_key="ogiri_ingest:2026-01-02T02:00:00+00:00",
        labels=LABELS,
        width=64,
        height=48,
    )
    defaults.update(kw)
    return CaptionItem(**defaults)


def test_provisioning_is_idempotent_with_ingest_date_gsi(account):
    assert ensure_bucket(account.clients.s3, BUCKET) is False
    assert ensure_table(account.clients.dynamodb, TABLE) is False
    desc = account.clients.dynamodb.describe_table(TableName=TABLE)["Table"]
    gsi = {g["IndexName"]: g for g in desc["GlobalSecondaryIndexes"]}
    assert gsi[INGEST_DATE_INDEX]["KeySchema"][0] == {"AttributeName": "IngestDate", "KeyType": "HASH"}
    assert ensure_table(account.clients.dynamodb, "another-table") is True


def test_records_are_written_once_and_reruns_change_nothing(account):
    writer = RecordWriter(account.clients.dynamodb, TABLE)
    records = [_record(i) for i in range(130)]  # > one BatchGet (100) and one transaction (100)
    out = writer.write(records)
    assert (len(out.accepted), len(out.duplicates), out.written) == (130, 0, 130)
    before = account.items()
    assert len(before) == 130
    item = before[0]
    assert item["Caption"]["S"] == "赤い丸がひとつ"
    assert item["CaptionId"]["S"] == caption_id("赤い丸がひとつ")
    assert item["LabelModelVersion"]["S"] == "3.0"
    assert [lab["M"]["Name"]["S"] for lab in item["Labels"]["L"]] == ["Red", "Circle"]
    assert item["IngestDate"]["S"] == "2026-01-01" and item["SourceRef"]["S"].endswith("#L1")
    assert item["CaptionSource"]["S"] == "submitted"  # issue 16: labeling writes "human"

    again = writer.write(records)  # the same rows (a retry / a rerun of the date)
    assert (len(again.accepted), len(again.duplicates), again.written) == (130, 0, 0)
    assert account.items() == before

    by_date = account.clients.dynamodb.query(
        TableName=TABLE,
        IndexName=INGEST_DATE_INDEX,
        KeyConditionExpression="IngestDate = :d",
        ExpressionAttributeValues={":d": {"S": "2026-01-01"}},
        Select="COUNT",
    )
    assert by_date["Count"] == 130


def test_same_image_and_caption_again_is_a_duplicate_not_a_rewrite(account):
    writer = RecordWriter(account.clients.dynamodb, TABLE)
    writer.write([_record(1)])
    before = account.items()
    later = _record(1, source="landing/dt=2026-01-05/b.csv", ingest_date="2026-01-05")
    batch = [later, _record(2), _record(2), _record(1, caption="別のキャプション")]
    out = writer.write(batch)
    assert out.accepted == [1, 3] and out.duplicates == [0, 2]
    after = {(i["ImageKey"]["S"], i["CaptionId"]["S"]): i for i in account.items()}
    assert after[(before[0]["ImageKey"]["S"], before[0]["CaptionId"]["S"])] == before[0]
    assert len(after) == 3


def test_caption_id_is_unicode_normalised():
    assert caption_id("が") == caption_id("か\u3099")  # NFC vs NFD
    assert caption_id("a") != caption_id("b") and len(caption_id("x")) == 32


def test_concurrent_writers_of_one_key_leave_one_item_and_reruns_settle(account):
    rows = [_record(7, source=f"landing/dt=2026-01-01/{n}.csv") for n in range(6)]
    by_row = {}

    def write(n, rec):
        by_row[n] = RecordWriter(account.clients.dynamodb, TABLE).write([rec])

    threads = [threading.Thread(target=write, args=(n, r)) for n, r in enumerate(rows)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    # Every row is counted once; at least one wins (a race may let more than one count as accepted,
    # see the RecordWriter docstring), and the table holds exactly one item from an accepted row.
    assert sorted(by_row) == list(range(6))
    assert all(len(o.accepted) + len(o.duplicates) == 1 for o in by_row.values())
    (item,) = account.items()
    winners = {rows[n].source_ref for n, o in by_row.items() if o.accepted}
    assert item["SourceRef"]["S"] in winners  # the last put reads back its own row
    # Written sequentially again (a rerun), exactly the stored row is accepted and nothing changes.
    rerun = RecordWriter(account.clients.dynamodb, TABLE).write(rows)
    assert len(rerun.accepted) == 1 and len(rerun.duplicates) == 5 and rerun.written == 0
    assert rows[rerun.accepted[0]].source_ref == item["SourceRef"]["S"]
    assert account.items() == [item]


def test_unprocessed_items_and_keys_are_retried():
    """DynamoDB may return UnprocessedKeys/UnprocessedItems under load (the emulator never does)."""
    import boto3
    from botocore.stub import ANY, Stubber

    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    rec = _record(1)
    key = {"ImageKey": {"S": rec.image_key}, "CaptionId": {"S": rec.key[1]}}
    stored = dict(key, SourceRef={"S": rec.source_ref})
    with Stubber(client) as stub:
        stub.add_response(
            "batch_get_item",
            {"Responses": {TABLE: []}, "UnprocessedKeys": {TABLE: {"Keys": [key]}}},
            {"RequestItems": ANY},
        )
        stub.add_response("batch_get_item", {"Responses": {TABLE: []}}, {"RequestItems": ANY})
        stub.add_response(
            "batch_write_item",
            {"UnprocessedItems": {TABLE: [{"PutRequest": {"Item": rec.item()}}]}},
            {"RequestItems": ANY},
        )
        stub.add_response("batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": ANY})
        stub.add_response("batch_get_item", {"Responses": {TABLE: [stored]}}, {"RequestItems": ANY})
        out = RecordWriter(client, TABLE, base_s=0.001).write([rec])
        stub.assert_no_pending_responses()
    assert out.accepted == [0] and out.written == 1


def test_throttled_dynamodb_writes_lose_no_row(account):
    account.emulator.inject(
        service="dynamodb", error="ProvisionedThroughputExceededException", status=400, rate=0.3, seed=7
    )
    writer = RecordWriter(account.clients.dynamodb, TABLE, base_s=0.001)
    outcomes = [writer.write([_record(i + 10 * b) for i in range(10)]) for b in range(8)]
    assert sum(len(o.accepted) for o in outcomes) == 80
    assert len(account.items()) == 80


def _stored_image(account, site, i=0):
    from ogiri.ingest.images import normalise_image

    img = normalise_image((site.root / site.images[i][0]).read_bytes(), max_pixels=10**7, max_side=512)
    assert put_if_absent(account.clients.s3, BUCKET, img.key, img.jpeg, "image/jpeg") is True
    return img


def test_labels_detect_with_confidence_floor_and_known_labels(account, site):
    img = _stored_image(account, site)
    labeler = Labeler(account.clients.rekognition, tps=0, min_confidence=50)
    labels = labeler.detect(BUCKET, img.key)
    assert labels.labels and labels.model_version
    assert all(conf >= 50 for _, conf in labels.labels) and len(labels.labels) <= 10
    assert labeler.calls == 1 and labeler.labelled == 1
    assert known_labels(account.clients.dynamodb, TABLE, img.sha256) is None
    RecordWriter(account.clients.dynamodb, TABLE).write([_record(0, image_key=img.sha256, labels=labels)])
    found = known_labels(account.clients.dynamodb, TABLE, img.sha256)
    assert found.names == labels.names and found.model_version == labels.model_version


def test_labels_retry_throttling_and_every_attempt_takes_a_token(account, site):
    img = _stored_image(account, site)
    account.emulator.inject(
        service="rekognition", operation="DetectLabels", error="ThrottlingException", count=3
    )
    taken = []

    class CountingBucket(TokenBucket):
        def acquire(self):
            taken.append(1)
            return 0.0

    labeler = Labeler(account.clients.rekognition, tps=5, min_confidence=0, limiter=CountingBucket(5))
    labeler.detect(BUCKET, img.key)
    assert labeler.throttled == 3 and labeler.calls == 4 and len(taken) == 4


def test_labels_rate_limit_spaces_calls(account, site):
    img = _stored_image(account, site)
    slept = []
    clock = [0.0]

    def sleep(s):
        slept.append(s)
        clock[0] += s

    labeler = Labeler(
        account.clients.rekognition,
        tps=5,
        min_confidence=0,
        limiter=TokenBucket(5, burst=1, clock=lambda: clock[0], sleep=sleep),
    )
    for _ in range(6):
        labeler.detect(BUCKET, img.key)
    assert sum(slept) == pytest.approx(1.0)  # 5 waits of 1/5 s


def test_put_if_absent_and_put_if_changed_leave_existing_objects_alone(account):
    s3 = account.clients.s3
    assert put_if_absent(s3, BUCKET, "images/ab/x.jpg", b"one", "image/jpeg") is True
    first = account.objects("images/")
    assert put_if_absent(s3, BUCKET, "images/ab/x.jpg", b"one", "image/jpeg") is False
    assert account.objects("images/") == first
    assert put_if_changed(s3, BUCKET, "rejects/a.jsonl", b'{"a": 1}\n', "application/x-ndjson") is True
    before = account.objects("rejects/")
    assert put_if_changed(s3, BUCKET, "rejects/a.jsonl", b'{"a": 1}\n', "application/x-ndjson") is False
    assert account.objects("rejects/") == before
    assert put_if_changed(s3, BUCKET, "rejects/a.jsonl", b'{"a": 2}\n', "application/x-ndjson") is True


def test_put_if_absent_retries_a_409_conflict_and_creates_the_key(account):
    """409 ConditionalRequestConflict means a conflicting operation was in flight, not that the key
    exists: the write is retried, and only its outcome says whether this call created the key."""
    s3 = account.clients.s3
    account.emulator.inject(service="s3", operation="PutObject", error="ConditionalRequestConflict",
                            status=409, count=1)
    assert put_if_absent(s3, BUCKET, "images/cd/y.jpg", b"two", "image/jpeg") is True
    assert s3.get_object(Bucket=BUCKET, Key="images/cd/y.jpg")["Body"].read() == b"two"
    assert put_if_absent(s3, BUCKET, "images/cd/y.jpg", b"two", "image/jpeg") is False


def test_delete_keys_deletes_in_batches_and_raises_on_per_key_errors(account):
    """DeleteObjects answers 200 with per-key ``Errors`` (e.g. AccessDenied); those must not pass silently."""
    import boto3
    from botocore.stub import Stubber

    from ogiri.aws import delete_keys

    s3 = account.clients.s3
    keys = [f"tmp/{i:04d}" for i in range(1003)]  # more than one DeleteObjects call
    for key in keys[:3] + keys[-2:]:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    assert delete_keys(s3, BUCKET, keys) == 1003
    assert account.objects("tmp/") == {}
    assert delete_keys(s3, BUCKET, []) == 0

    client = boto3.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    with Stubber(client) as stub:
        stub.add_response(
            "delete_objects",
            {"Errors": [{"Key": "tmp/a", "Code": "AccessDenied", "Message": "Access Denied"}]},
            {"Bucket": BUCKET, "Delete": {"Objects": [{"Key": "tmp/a"}, {"Key": "tmp/b"}], "Quiet": True}},
        )
        with pytest.raises(RuntimeError, match=r"could not delete 1 object\(s\).*tmp/a: AccessDenied"):
            delete_keys(client, BUCKET, ["tmp/a", "tmp/b"])
