"""Planning, collecting and recording a run against moto (S3, SageMaker, DynamoDB at the wire)."""

from __future__ import annotations

import json

import pytest

from ogiri.batch import layout
from ogiri.batch.planning import (
    ImageRef,
    PlanError,
    TransformOptions,
    list_prefix,
    read_manifest,
    write_input_sets,
)
from ogiri.batch.results import from_jsonl
from ogiri.batch.sources import images_ingested_on
from ogiri.batch.tasks import BatchRunFailed, collect_captions, plan_batch, record_captions, report_summary
from ogiri.config import get_settings
from ogiri.ledger import Deployment

BUCKET = "ogiri-mlops"  # the moto_aws fixture creates it
RUN = "ogiri_batch_caption:manual__2026-11-22T00:00:00+00:00"
OPTS = TransformOptions(model_name="m1", instance_type="ml.m5.xlarge", batch_size=2)


def put_images(s3, *keys):
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"\xff\xd8 not really a jpeg")


def create_model(sm, name="m1"):
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
        PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/models/model.tar.gz"},
    )


def test_list_prefix_takes_only_images_sorted(moto_aws):
    s3 = moto_aws["s3"]
    put_images(s3, "in/b.jpg", "in/a.PNG", "in/notes.txt", "in/sub/c.jpeg", "other/d.jpg")
    assert [r.key for r in list_prefix(s3, "in/", BUCKET)] == ["in/a.PNG", "in/b.jpg", "in/sub/c.jpeg"]
    assert list_prefix(s3, f"s3://{BUCKET}/empty/", BUCKET) == []
    with pytest.raises(PlanError, match="bucket 'nope' does not exist"):
        list_prefix(s3, "s3://nope/x/", BUCKET)


def test_read_manifest_from_s3_and_missing_manifest(moto_aws):
    s3 = moto_aws["s3"]
    s3.put_object(Bucket=BUCKET, Key="m.jsonl", Body=b'{"s3_uri": "s3://b/1.jpg"}\nimages/2.jpg\n')
    assert read_manifest(s3, "m.jsonl", BUCKET) == [ImageRef("b", "1.jpg"), ImageRef(BUCKET, "images/2.jpg")]
    with pytest.raises(PlanError, match="does not exist"):
        read_manifest(s3, "s3://ogiri-mlops/missing.jsonl", BUCKET)


def test_rewriting_a_plan_replaces_stale_request_files(moto_aws):
    s3 = moto_aws["s3"]
    refs = [ImageRef(BUCKET, f"i/{n}.jpg") for n in range(5)]
    first = write_input_sets(s3, bucket=BUCKET, run_key=RUN, sets=[refs[:3], refs[3:]], options=OPTS)
    assert [(s.name, s.items, s.files) for s in first] == [("set-000", 3, 2), ("set-001", 2, 1)]
    second = write_input_sets(s3, bucket=BUCKET, run_key=RUN, sets=[refs[:2]], options=OPTS)
    assert [(s.name, s.items, s.files) for s in second] == [("set-000", 2, 1)]
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{layout.run_prefix(RUN)}/input/")["Contents"]
    assert [o["Key"] for o in listed] == [layout.request_file_key(RUN, "set-000", 0)]


SHA_A, SHA_B, SHA_C = "aa" + "0" * 62, "bb" + "1" * 62, "cc" + "2" * 62


def make_caption_table(ddb, table="captions"):
    """The ingestion's table shape: (ImageKey, CaptionId) with the IngestDateIndex GSI; 3 images, 2 days."""
    ddb.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "ImageKey", "KeyType": "HASH"},
            {"AttributeName": "CaptionId", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("ImageKey", "CaptionId", "IngestDate")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "IngestDateIndex",
                "KeySchema": [
                    {"AttributeName": "IngestDate", "KeyType": "HASH"},
                    {"AttributeName": "ImageKey", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for sha, cid, day in [
        (SHA_A, "1", "2026-01-02"),
        (SHA_A, "2", "2026-01-02"),
        (SHA_B, "1", "2026-01-02"),
        (SHA_C, "1", "2026-01-03"),
    ]:
        ddb.put_item(
            TableName=table,
            Item={
                "ImageKey": {"S": sha},
                "CaptionId": {"S": cid},
                "IngestDate": {"S": day},
                "S3Uri": {"S": f"s3://{BUCKET}/images/{sha[:2]}/{sha}.jpg"},
            },
        )


def test_images_ingested_on_reads_the_ingest_date_index_once_per_image(moto_aws):
    ddb = moto_aws["dynamodb"]
    make_caption_table(ddb)
    got = images_ingested_on(ddb, "captions", "2026-01-02", BUCKET)
    assert [r.key for r in got] == [f"images/aa/{SHA_A}.jpg", f"images/bb/{SHA_B}.jpg"]
    with pytest.raises(PlanError, match="YYYY-MM-DD"):
        images_ingested_on(ddb, "captions", "02/01/2026", BUCKET)


def test_without_inputs_the_plan_captions_the_images_ingested_that_day(moto_aws, monkeypatch):
    s3, sm = moto_aws["s3"], moto_aws["sagemaker"]
    monkeypatch.setenv("OGIRI_TABLE", "captions")
    make_caption_table(moto_aws["dynamodb"])
    create_model(sm)
    kwargs = dict(
        run_key=RUN,
        settings=get_settings(),
        s3=s3,
        sagemaker=sm,
        dynamodb=moto_aws["dynamodb"],
        ledger_factory=None,
    )
    nightly = plan_batch({"model": "m1"}, partition_date="2026-01-02", **kwargs)
    assert [(s["name"], s["items"]) for s in nightly["sets"]] == [("set-000", 2)]
    assert nightly["sources"] == ["images ingested on 2026-01-02"]
    body = s3.get_object(Bucket=BUCKET, Key=layout.request_file_key(RUN, "set-000", 0))["Body"].read()
    assert [json.loads(line)["id"] for line in body.decode().splitlines()] == [
        f"images/aa/{SHA_A}.jpg",
        f"images/bb/{SHA_B}.jpg",
    ]
    backfill = plan_batch({"model": "m1", "ingest_date": "2026-01-03"}, partition_date="2026-01-02", **kwargs)
    assert [(s["name"], s["items"]) for s in backfill["sets"]] == [("set-000", 1)]
    quiet_day = plan_batch({"model": "m1"}, partition_date="2026-02-01", **kwargs)
    assert quiet_day["configs"] == [] and quiet_day["sets"] == []


def test_champion_on_a_brand_new_ledger_is_a_clear_error(moto_aws, tmp_path, monkeypatch):
    from ogiri.batch.tasks import resolve_model
    from ogiri.ledger import Ledger

    monkeypatch.setenv(
        "AIRFLOW_CONN_OGIRI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "new.db")})
    )
    with pytest.raises(PlanError, match="no champion model is recorded for endpoint 'ep'"):
        resolve_model("champion", ledger_factory=Ledger.from_connection, endpoint_name="ep")
    assert resolve_model(" my-model ", ledger_factory=None, endpoint_name="ep") == "my-model"


def test_plan_uses_the_ledger_champion_and_fails_clearly_without_one(moto_aws, sqlite_ledger):
    s3, sm = moto_aws["s3"], moto_aws["sagemaker"]
    put_images(s3, "a/1.jpg", "a/2.jpg", "b/3.jpg")
    settings = get_settings()
    kwargs = dict(
        run_key=RUN,
        partition_date=None,
        settings=settings,
        s3=s3,
        sagemaker=sm,
        dynamodb=moto_aws["dynamodb"],
        ledger_factory=lambda: sqlite_ledger,
    )
    params = {"input_prefixes": ["a/", f"s3://{BUCKET}/b/"], "model": "champion", "batch_size": 1}
    with pytest.raises(PlanError, match="no champion model"):
        plan_batch(params, **kwargs)
    sqlite_ledger.record_deployment(
        Deployment(
            run_key="t",
            endpoint_name=settings.endpoint_name,
            action="create",
            status="succeeded",
            model_name="champ-1",
        )
    )
    with pytest.raises(PlanError, match="SageMaker model 'champ-1' does not exist"):
        plan_batch(params, **kwargs)
    create_model(sm, "champ-1")
    plan = plan_batch(params, **kwargs)
    assert plan["model_name"] == "champ-1"
    assert [(s["name"], s["items"], s["files"]) for s in plan["sets"]] == [
        ("set-000", 2, 2),
        ("set-001", 1, 1),
    ]
    assert [c["TransformJobName"] for c in plan["configs"]] == [
        layout.transform_job_name(RUN, "set-000"),
        layout.transform_job_name(RUN, "set-001"),
    ]
    assert all(c["ModelName"] == "champ-1" for c in plan["configs"])
    with pytest.raises(PlanError, match="nothing to caption"):
        plan_batch({"model": "champ-1"}, **kwargs)


def _fake_transform(s3, sm, input_set, outputs_by_file, status_name="m1"):
    """Create the job in moto (moto marks it Completed) and write the given .out bodies."""
    sm.create_transform_job(
        TransformJobName=input_set["job_name"],
        ModelName=status_name,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://x/y"}}},
        TransformOutput={"S3OutputPath": "s3://x/z"},
        TransformResources={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    )
    for part, body in outputs_by_file.items():
        key = f"{input_set['output_prefix']}part-{part:05d}.jsonl.out"
        s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())


def test_collect_record_and_report_a_run_with_a_failed_item_and_a_missing_job(moto_aws, sqlite_ledger):
    s3, sm = moto_aws["s3"], moto_aws["sagemaker"]
    put_images(s3, "a/1.jpg", "a/2.jpg", "a/3.jpg", "b/4.jpg")
    create_model(sm)
    settings = get_settings()
    plan = plan_batch(
        {"input_prefixes": ["a/", "b/"], "model": "m1", "batch_size": 2},
        run_key=RUN,
        partition_date=None,
        settings=settings,
        s3=s3,
        sagemaker=sm,
        dynamodb=None,
        ledger_factory=lambda: sqlite_ledger,
    )
    set_a, set_b = plan["sets"]
    _fake_transform(
        s3,
        sm,
        set_a,
        {
            0: '{"id": "a/1.jpg", "caption": "一", "score": -0.5}\n{"id": "a/2.jpg", "error": "cannot decode image"}\n',
            1: '{"id": "a/3.jpg", "caption": "三", "score": -0.25}\n',
        },
    )
    # set b's job was never created (e.g. its mapped task failed before CreateTransformJob).
    summary = collect_captions(plan["configs"], run_key=RUN, bucket=BUCKET, s3=s3, sagemaker=sm)
    assert (summary["items"], summary["captioned"], summary["failed"]) == (4, 2, 2)
    assert summary["failed_jobs"] == ["set-001"]
    body = s3.get_object(Bucket=BUCKET, Key=layout.captions_key(RUN))["Body"].read()
    by_key = {r.image_key: r for r in from_jsonl(body)}
    assert by_key["a/1.jpg"].caption == "一" and by_key["a/1.jpg"].job_name == set_a["job_name"]
    assert by_key["a/2.jpg"].error == "cannot decode image"
    assert by_key["b/4.jpg"].error.startswith(f"transform job {set_b['job_name']} NotStarted")
    assert not by_key["b/4.jpg"].processed

    assert (
        record_captions(RUN, bucket=BUCKET, s3=s3, ledger=sqlite_ledger) == 3
    )  # the unprocessed item is not
    rows = {r["image_key"]: r for r in sqlite_ledger.batch_captions(set_a["job_name"])}
    assert rows["a/1.jpg"]["caption"] == "一" and rows["a/1.jpg"]["score"] == -0.5
    assert rows["a/2.jpg"]["error"] == "cannot decode image" and rows["a/2.jpg"]["caption"] is None
    assert set(rows) == {"a/1.jpg", "a/2.jpg", "a/3.jpg"}
    # Recording again (a rerun) upserts: still one row per (image, model).
    record_captions(RUN, bucket=BUCKET, s3=s3, ledger=sqlite_ledger)
    assert len(sqlite_ledger.batch_captions(set_a["job_name"])) == 3

    with pytest.raises(BatchRunFailed, match="set-001"):
        report_summary(summary, recorded=3, bucket=BUCKET, s3=s3)
    written = json.loads(s3.get_object(Bucket=BUCKET, Key=layout.summary_key(RUN))["Body"].read())
    assert written["ledger_rows"] == 3 and written["failed"] == 2
