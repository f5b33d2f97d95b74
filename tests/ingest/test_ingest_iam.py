"""``ogiri_ingest`` run as the stack's Airflow worker principal, with IAM enforced by the emulator.

The template's worker policy must allow every call of a run; a grant missing from it fails the run
at once (AccessDenied is not retried) with the action and resource in the task's log.
"""

from __future__ import annotations

import csv
import io
import json
from types import SimpleNamespace

import pytest
from ingest_dag_env import BUCKET, TABLE, load_dag, run_dag

from ogiri_local.emulator import REPO

PARAMS = {"EnvironmentName": "test", "BucketName": BUCKET, "TableName": TABLE}


@pytest.fixture
def as_worker(aws, stack, site, monkeypatch, tmp_path):
    """Deploy the template (or a copy) and point the ingest settings at its bucket and table."""
    ledger = tmp_path / "ledger.db"
    monkeypatch.setenv("OGIRI_BUCKET", BUCKET)
    monkeypatch.setenv("OGIRI_TABLE", TABLE)
    monkeypatch.setenv("OGIRI_PRIVATE_HOST_ALLOWLIST", site.server.allowlist_entry)
    monkeypatch.setenv("OGIRI_REKOGNITION_TPS", "0")
    monkeypatch.setenv("AIRFLOW_CONN_OGIRI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(ledger)}))

    def deploy(template_path=None):
        found = stack(PARAMS, template_path)
        producer = aws.client("s3", **found.principals["producer"])
        return SimpleNamespace(producer=producer, admin_s3=aws.client("s3"))

    return deploy


def land_small_day(producer_s3, bucket: str, site) -> None:
    """Land one CSV of 6 images for 2026-01-01 as the producer principal."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["image_url", "caption"])
    writer.writerows((site.url(i), site.images[i][1][0]) for i in range(6))
    producer_s3.put_object(Bucket=bucket, Key="landing/dt=2026-01-01/a.csv", Body=buf.getvalue().encode())


def _without_staging_writes(tmp_path):
    """A copy of the template whose WritePipelineObjects statement lacks ``staging/*``."""
    lines = (REPO / "infra" / "ogiri.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if "Sid: WritePipelineObjects" in line)
    drop = next(i for i in range(start, len(lines)) if "/staging/*" in lines[i])
    path = tmp_path / "ogiri-no-staging-writes.yaml"
    path.write_text("".join(lines[:drop] + lines[drop + 1 :]), encoding="utf-8")
    return path


@pytest.mark.slow
def test_a_nightly_run_as_the_worker_is_allowed_every_call(as_worker, site, airflow_db, dag_bundle):
    env = as_worker()
    land_small_day(env.producer, BUCKET, site)
    dr, states = run_dag(load_dag(), 2, chunk_rows=4)
    assert dr.state == "success", states
    listed = env.admin_s3.list_objects_v2(Bucket=BUCKET, Prefix="images/")
    assert listed.get("KeyCount", 0) > 0


@pytest.mark.slow
def test_a_missing_grant_fails_the_run_at_once_naming_action_and_resource(
    as_worker, site, airflow_db, dag_bundle, tmp_path, capfd
):
    env = as_worker(_without_staging_writes(tmp_path))
    land_small_day(env.producer, BUCKET, site)
    dr, _ = run_dag(load_dag(), 2, chunk_rows=4)
    assert dr.state == "failed"
    (plan,) = [ti for ti in dr.get_task_instances() if ti.task_id == "plan_chunks"]
    assert plan.state == "failed" and plan.try_number == 1  # not up_for_retry: no retry loop
    captured = capfd.readouterr()
    log = captured.out + captured.err  # dag.test() prints the task log
    assert "AccessDenied" in log and "s3:PutObject" in log
    assert f"arn:aws:s3:::{BUCKET}/staging/ingest/dt=2026-01-01/" in log
