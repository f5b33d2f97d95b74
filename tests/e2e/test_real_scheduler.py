"""Real Airflow (api-server, scheduler, dag-processor, triggerer), not ``dag.test()``.

Against the local environment (emulator + CloudFormation stack + served synthetic images):
the scheduler picks up the nightly cron schedule by itself (catch-up from a recent start date),
a run is triggered through the REST API v2 (token from ``/auth/token``), and a backfill over a
date range is created through the REST API; every run must succeed and DynamoDB must hold exactly
the rows that were landed, each under its own partition's ingest date.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ogiri_local.airflow_stack import AirflowStack
from ogiri_local.environment import LocalEnvironment

pytestmark = pytest.mark.slow

DAG_ID = "ogiri_ingest"
ROWS_PER_DAY = 4


def _wait_for_runs(stack: AirflowStack, expected: int, timeout: float = 420) -> list[dict]:
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = stack.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]
        finished = [r for r in runs if r["state"] in ("success", "failed")]
        if len(runs) >= expected and len(finished) == len(runs):
            return runs
        time.sleep(3)
    states = {r["dag_run_id"]: r["state"] for r in runs}
    raise AssertionError(f"runs not finished in {timeout:.0f} s: {states}")


def test_scheduler_cron_rest_trigger_and_backfill(tmp_path: Path, postgres_metadata_db: str):
    today = datetime.now(UTC).date()
    # The scheduler catches up from yesterday 00:00: the 02:00 runs of yesterday and today
    # (partitions today-2 and today-1). The backfill covers run dates today-5 .. today-4
    # (partitions today-6, today-5); the REST-triggered run ingests today-8 by param.
    scheduled = [today - timedelta(days=2), today - timedelta(days=1)]
    backfilled = [today - timedelta(days=6), today - timedelta(days=5)]
    manual = today - timedelta(days=8)
    partitions = [*scheduled, *backfilled, manual]

    with LocalEnvironment(tmp_path / "env", n_images=len(partitions) * ROWS_PER_DAY) as env:
        rows = env.synthetic_rows(tmp_path / "all.csv")
        landed = {}
        for i, day in enumerate(partitions):
            part = rows[i * ROWS_PER_DAY : (i + 1) * ROWS_PER_DAY]
            env.land(day, part)
            landed[day.isoformat()] = {caption for _, caption in part}

        start = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=1)
        airflow_env = {
            **env.env,
            "OGIRI_INGEST_START_DATE": start.isoformat(),
            "OGIRI_LANDING_POKE_S": "2",
            "OGIRI_LANDING_TIMEOUT_S": "120",
        }
        with AirflowStack(tmp_path / "airflow", env=airflow_env, sql_alchemy_conn=postgres_metadata_db) as stack:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                dags = {d["dag_id"] for d in stack.request("GET", "/api/v2/dags")["dags"]}
                if DAG_ID in dags:
                    break
                time.sleep(2)
            assert DAG_ID in dags, "the dag-processor never registered ogiri_ingest"
            errors = stack.request("GET", "/api/v2/importErrors")
            assert errors["total_entries"] == 0, errors

            stack.request("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
            triggered = stack.request(
                "POST",
                f"/api/v2/dags/{DAG_ID}/dagRuns",
                {"logical_date": None, "conf": {"partition_date": manual.isoformat()}},
            )
            first, last = (d + timedelta(days=1) for d in backfilled)
            backfill = stack.request(
                "POST",
                "/api/v2/backfills",
                {
                    "dag_id": DAG_ID,
                    "from_date": datetime(first.year, first.month, first.day, tzinfo=UTC).isoformat(),
                    "to_date": datetime(last.year, last.month, last.day, 23, tzinfo=UTC).isoformat(),
                    "max_active_runs": 2,
                },
            )
            runs = _wait_for_runs(stack, expected=len(partitions))

        items = env.emulator.client("dynamodb").get_paginator("scan").paginate(
            TableName=env.settings["OGIRI_TABLE"]
        )
        stored: dict[str, set[str]] = {}
        for page in items:
            for item in page["Items"]:
                stored.setdefault(item["IngestDate"]["S"], set()).add(item["Caption"]["S"])

    by_type: dict[str, list[dict]] = {}
    for run in runs:
        by_type.setdefault(run["run_type"], []).append(run)
    assert {r["state"] for r in runs} == {"success"}, {r["dag_run_id"]: r["state"] for r in runs}
    assert len(by_type.get("scheduled", [])) == len(scheduled), "the scheduler did not run the cron schedule"
    assert len(by_type.get("backfill", [])) == len(backfilled)
    assert [r["dag_run_id"] for r in by_type["manual"]] == [triggered["dag_run_id"]]
    assert backfill["dag_id"] == DAG_ID
    assert stored == landed, "DynamoDB must hold exactly the landed rows, each under its partition date"
