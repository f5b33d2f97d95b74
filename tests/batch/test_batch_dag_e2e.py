"""``dag.test()`` of ogiri_batch_caption against the emulator with a real model trained by train.py.

Two input prefixes → two mapped transform jobs; one image in the second set is corrupt and must be
reported as a per-item failure while every other image gets a caption. Running the same run again
reuses the completed jobs, overwrites the same outputs, and leaves one ledger row per image.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "emulator" / "fixtures"))
from captioner_model import register_model, synthetic_images, train_tiny_model  # noqa: E402
from handler_models import register_handler_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUCKET = "ogiri-batch-e2e"
MODEL = "ogiri-champion-e2e"
LOGICAL_DATE = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("tiny-captioner"))


@pytest.fixture
def base_env(aws, stack, airflow_db, tmp_path, monkeypatch):
    """infra/ogiri.yaml deployed into the emulator (IAM enforced): the DAG runs as the template's
    worker, the transform jobs as its execution role. Ledger on SQLite behind ``ogiri_ledger``."""
    from ogiri.config import get_settings
    from ogiri.ledger import Ledger
    from ogiri_local.environment import load_deploy_stack

    found = stack({"EnvironmentName": "batch", "BucketName": BUCKET, "TableName": "ogiri-batch-e2e"})
    for name, value in load_deploy_stack().ogiri_settings(found.outputs).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OGIRI_SAGEMAKER_POLL_SECONDS", "1")
    monkeypatch.setenv(
        "AIRFLOW_CONN_OGIRI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")})
    )
    ledger = Ledger.from_connection()
    ledger.ensure_schema()
    # seeding and assertions with the admin keys; the models run as the stack's execution role
    return {"s3": aws.client("s3"), "sm": aws.client("sagemaker"), "ledger": ledger,
            "role": get_settings().sagemaker_role_arn}


@pytest.fixture
def batch_env(base_env, tiny_model):
    """Two input prefixes of synthetic images (one corrupt) and the trained model as the champion."""
    from ogiri.config import get_settings
    from ogiri.ledger import Deployment

    s3, sm = base_env["s3"], base_env["sm"]
    images = synthetic_images(tiny_model, 5)
    set_a = [(f"batch/inbox/a/{Path(k).name}", body) for k, body in images[:3]]
    set_b = [(f"batch/inbox/b/{Path(k).name}", body) for k, body in images[3:]]
    set_b.append(("batch/inbox/b/corrupt.jpg", b"\xff\xd8\xff\xe0 this is not a JPEG at all"))
    for key, body in set_a + set_b:
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    register_model(s3, sm, BUCKET, tiny_model["tarball"], MODEL, role=base_env["role"])
    base_env["ledger"].record_deployment(
        Deployment(
            run_key="ogiri_train:manual__e2e",
            endpoint_name=get_settings().endpoint_name,
            action="create",
            status="succeeded",
            model_name=MODEL,
        )
    )
    return {**base_env, "a": [k for k, _ in set_a], "b": [k for k, _ in set_b]}


def load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "ogiri_batch_caption.py"))
    assert bag.import_errors == {}
    return bag.dags["ogiri_batch_caption"]


def states(dr) -> dict[tuple[str, int], str]:
    return {(ti.task_id, ti.map_index): ti.state for ti in dr.get_task_instances()}


def ledger_rows(ledger) -> list[tuple]:
    return ledger.hook.get_records(
        "SELECT image_key, model_name, caption, error, job_name FROM batch_captions ORDER BY image_key"
    )


def run(dag, conf):
    return dag.test(logical_date=LOGICAL_DATE, run_after=LOGICAL_DATE, run_conf=conf)


def test_two_sets_in_mapped_transforms_with_a_corrupt_image_then_an_idempotent_rerun(batch_env):
    from ogiri.batch import layout
    from ogiri.naming import run_key

    s3, sm, ledger = batch_env["s3"], batch_env["sm"], batch_env["ledger"]
    conf = {"input_prefixes": ["batch/inbox/a/", f"s3://{BUCKET}/batch/inbox/b/"], "batch_size": 2, "beam_width": 2}
    dag = load_dag()

    dr = run(dag, conf)
    got = states(dr)
    assert dr.state == "success", got
    assert got[("caption_set", 0)] == got[("caption_set", 1)] == "success"
    assert all(s == "success" for s in got.values()), got

    key = run_key("ogiri_batch_caption", dr.run_id, dr.logical_date)
    jobs = sorted(j["TransformJobName"] for j in sm.list_transform_jobs()["TransformJobSummaries"])
    assert jobs == sorted(layout.transform_job_name(key, s) for s in ("set-000", "set-001"))

    body = s3.get_object(Bucket=BUCKET, Key=layout.captions_key(key))["Body"].read().decode()
    items = {r["image_key"]: r for r in map(json.loads, body.splitlines())}
    assert set(items) == set(batch_env["a"] + batch_env["b"])
    corrupt = items.pop("batch/inbox/b/corrupt.jpg")
    assert corrupt["error"] and corrupt["caption"] is None and corrupt["set"] == "set-001"
    for image_key, item in items.items():
        assert item["error"] is None, (image_key, item["error"])
        assert isinstance(item["caption"], str) and item["caption"].strip(), item
        assert isinstance(item["score"], float) and item["model_name"] == MODEL
    assert {items[k]["set"] for k in batch_env["a"]} == {"set-000"}

    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=layout.summary_key(key))["Body"].read())
    assert (summary["items"], summary["captioned"], summary["failed"], summary["ledger_rows"]) == (6, 5, 1, 6)
    assert summary["failures"] == [
        {"image_key": "batch/inbox/b/corrupt.jpg", "set": "set-001", "error": corrupt["error"]}
    ]
    assert summary["failed_jobs"] == []
    assert summary["failure_reasons"] == {"cannot decode image": 1}

    rows = ledger_rows(ledger)
    assert len(rows) == 6
    by_key = {r[0]: r for r in rows}
    assert by_key["batch/inbox/b/corrupt.jpg"][3] == corrupt["error"]
    assert all(r[1] == MODEL for r in rows)
    first_body = body

    # Re-running the same run: same jobs reused (no new CreateTransformJob), same outputs, no duplicates.
    dr2 = run(dag, conf)
    assert dr2.state == "success", states(dr2)
    assert dr2.run_id == dr.run_id
    assert len(sm.list_transform_jobs()["TransformJobSummaries"]) == 2
    assert s3.get_object(Bucket=BUCKET, Key=layout.captions_key(key))["Body"].read().decode() == first_body
    assert ledger_rows(ledger) == rows


def test_a_failed_transform_job_fails_the_run_and_its_items_are_reported_not_hidden(base_env):
    from ogiri.batch import layout
    from ogiri.naming import run_key

    s3, sm, ledger = base_env["s3"], base_env["sm"], base_env["ledger"]
    for name in ("x.jpg", "y.jpg"):
        s3.put_object(Bucket=BUCKET, Key=f"batch/in/{name}", Body=b"jpeg")
    register_handler_model(s3, sm, BUCKET, "ogiri-broken-model", broken=True, role=base_env["role"])

    dr = run(load_dag(), {"input_prefixes": ["batch/in/"], "model": "ogiri-broken-model"})
    got = states(dr)
    assert dr.state == "failed"
    assert got[("caption_set", 0)] == "failed"
    assert got[("collect_captions", -1)] == got[("record_captions", -1)] == "success"
    assert got[("report_summary", -1)] == "failed"
    tries = {t.task_id: t.try_number for t in dr.get_task_instances()}
    # Neither is retried: a retry could only find the same failed job.
    assert tries["caption_set"] == tries["report_summary"] == 1

    key = run_key("ogiri_batch_caption", dr.run_id, dr.logical_date)
    body = s3.get_object(Bucket=BUCKET, Key=layout.captions_key(key))["Body"].read().decode()
    items = [json.loads(line) for line in body.splitlines()]
    assert [i["image_key"] for i in items] == ["batch/in/x.jpg", "batch/in/y.jpg"]
    for item in items:
        assert item["error"].startswith(f"transform job {layout.transform_job_name(key, 'set-000')} Failed")
        assert "weights are corrupt" in item["error"] and item["processed"] is False
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=layout.summary_key(key))["Body"].read())
    assert summary["failed_jobs"] == ["set-000"] and summary["failed"] == 2
    assert ledger_rows(ledger) == []  # an infrastructure failure never overwrites earlier captions


def test_a_run_with_nothing_to_caption_succeeds_with_an_empty_report(base_env):
    from ogiri.batch import layout
    from ogiri.naming import run_key

    s3, sm = base_env["s3"], base_env["sm"]
    register_handler_model(s3, sm, BUCKET, "ogiri-ok-model", role=base_env["role"])
    dr = run(load_dag(), {"input_prefixes": ["batch/nothing/here/"], "model": "ogiri-ok-model"})
    got = states(dr)
    assert dr.state == "success", got
    assert got[("caption_set", -1)] == "skipped"  # mapped over zero input sets
    key = run_key("ogiri_batch_caption", dr.run_id, dr.logical_date)
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=layout.summary_key(key))["Body"].read())
    assert (summary["items"], summary["failed"], summary["sets"], summary["ledger_rows"]) == (0, 0, [], 0)
    assert s3.get_object(Bucket=BUCKET, Key=layout.captions_key(key))["Body"].read() == b""
    assert sm.list_transform_jobs()["TransformJobSummaries"] == []
