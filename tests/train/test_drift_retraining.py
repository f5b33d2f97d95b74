"""Issue 14: ``ogiri_train`` retrains on drift. A run triggered by an ``ogiri_drift`` event trains even
below ``min_new_images`` and says so in its ledger rows; a captions-triggered run still skips
(in-process moto for S3/DynamoDB, SQLite ledger)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from moto_env import use_inprocess_moto

BUCKET, TABLE = "ogiri-drift-retrain", "ogiri-drift-captions"
DRIFT_EXTRA = {"endpoint": "ogiri-captioner", "window_start": "2026-12-07T14:00:00+00:00",
               "report_uri": f"s3://{BUCKET}/monitoring/ogiri-captioner/2026-12-07T14/report.json",
               "violations": ["input_brightness", "embedding"]}


def item(i: int) -> dict:
    key = f"{i:064x}"
    return {"ImageKey": key, "CaptionId": "c0", "S3Uri": f"s3://{BUCKET}/images/{key[:2]}/{key}.jpg",
            "Caption": f"caption {i}", "Labels": [{"Name": "Cat", "Confidence": Decimal("99.0")}]}


@pytest.fixture
def trained_once(tmp_path, monkeypatch):
    """A table of 40 images whose dataset version was trained, then 3 new images (< 20)."""
    from moto import mock_aws

    use_inprocess_moto(monkeypatch, tmp_path / "ledger.db")
    monkeypatch.setenv("OGIRI_BUCKET", BUCKET)
    monkeypatch.setenv("OGIRI_TABLE", TABLE)
    monkeypatch.setenv("OGIRI_MIN_NEW_IMAGES", "20")
    with mock_aws():
        import boto3

        from ogiri.train.datasets import build_dataset_version, mark_trained

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "ImageKey", "KeyType": "HASH"},
                                    {"AttributeName": "CaptionId", "KeyType": "RANGE"}],
                         AttributeDefinitions=[{"AttributeName": "ImageKey", "AttributeType": "S"},
                                               {"AttributeName": "CaptionId", "AttributeType": "S"}])
        table = boto3.resource("dynamodb", region_name="us-east-1").Table(TABLE)
        with table.batch_writer() as batch:
            for i in range(40):
                batch.put_item(Item=item(i))
        first = build_dataset_version(s3, ddb, bucket=BUCKET, table=TABLE, min_new_images=0, run_key="ogiri_train:r0")
        mark_trained(s3, BUCKET, first["version"])
        with table.batch_writer() as batch:
            for i in range(40, 43):
                batch.put_item(Item=item(i))
        yield s3


def _run(key: str, events: dict):
    from ogiri.train import steps

    run = steps.run_for_key(key)
    run.asset_events = events
    return run


def test_a_captions_triggered_run_below_min_new_images_still_skips(trained_once):
    from ogiri.train import steps

    run = _run("ogiri_train:captions", {"ogiri_captions": [{"partition_date": "2026-12-06"}]})
    assert run.params["min_new_images"] == 20 and steps.triggered_by(run) == "captions"
    dataset = steps.build_dataset(run)
    assert dataset["skip_reason"].startswith("too little new data: 3 new image(s)")
    assert dataset["triggered_by"] == "captions"
    assert steps.check_new_data(dataset) == steps.NO_TRAINING_BRANCH
    reason = steps.skip_training(run, dataset)
    assert "captions-triggered run" in reason
    assert run.ledger.deployment_history(run.settings.endpoint_name)[0]["reason"] == reason


def test_a_drift_triggered_run_trains_below_min_new_images_and_says_so(trained_once):
    from ogiri.ledger import TrainingRun
    from ogiri.train import steps

    # Drift and captions queued together: drift decides (the model no longer fits its traffic).
    run = _run("ogiri_train:drift", {"ogiri_drift": [DRIFT_EXTRA], "ogiri_captions": [{}]})
    assert steps.triggered_by(run) == "drift"
    dataset = steps.build_dataset(run)
    assert dataset["skip_reason"] is None and dataset["new_images"] == 3
    assert dataset["triggered_by"] == "drift"
    assert steps.check_new_data(dataset) == steps.TRAINING_BRANCH
    keys = {o["Key"] for o in trained_once.list_objects_v2(Bucket=BUCKET, Prefix=f"datasets/{dataset['version']}/")
            ["Contents"]}
    assert f"datasets/{dataset['version']}/train/train.jsonl" in keys
    # record_training writes the candidate's row with the trigger (TrainingRun.from_description).
    cost = type("Cost", (), {"instance_type": "ml.g5.xlarge", "instance_count": 1, "billable_seconds": 60,
                             "usd": 0.02})()
    job = {"TrainingJobName": "ogiri-train-drift", "TrainingJobStatus": "Completed"}
    run.ledger.record_training_run(TrainingRun.from_description(
        job, run_key=run.key, dataset_version=dataset["version"], hyperparameters={}, cost=cost, metrics={},
        triggered_by=dataset["triggered_by"]))
    run.ledger.record_training_run(TrainingRun(job_name="ogiri-train-drift", status="Completed"))  # later update
    assert run.ledger.get_training_run("ogiri-train-drift")["triggered_by"] == "drift"


def test_the_run_reads_its_triggering_events_from_the_task_context():
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    from ogiri.runs import triggering_events

    event = AssetEventDagRunReferenceResult(
        asset={"name": "ogiri_drift", "uri": "x-ogiri://drift", "extra": {}}, extra=DRIFT_EXTRA,
        source_task_id="record_alert", source_dag_id="ogiri_monitor", source_run_id="scheduled__x",
        source_map_index=-1, source_aliases=[], timestamp=datetime(2026, 12, 7, 15, tzinfo=UTC))
    accessor = TriggeringAssetEventsAccessor.build([event])
    assert triggering_events(accessor) == {"ogiri_drift": [DRIFT_EXTRA]}
    assert triggering_events(TriggeringAssetEventsAccessor.build([])) == {}
    assert triggering_events(None) == {}
