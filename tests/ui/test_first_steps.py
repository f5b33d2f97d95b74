"""The first things a user does in the Airflow UI, in headless Chromium against the real stack.

``make up``'s machinery (emulator with the CloudFormation stack, served images, api-server,
scheduler, dag-processor, triggerer; PostgreSQL metadata so that UI backfills work). The user:
unpauses ``ogiri_train`` first (as the banner says), triggers ``ogiri_ingest`` from its form with
every default, runs a two-night backfill from the Backfill dialog, and follows the training job's
epochs in the ``train_model`` log while the job is still running. Every night must land in its own
partition, and the asset-triggered training run must succeed.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.parse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from airflow_ui import AirflowUI, wait_for

from ogiri_local.airflow_stack import AirflowStack
from ogiri_local.environment import LocalEnvironment

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

N_IMAGES = 60
#: What the training script prints per epoch (not the metric-definition regexes in the config).
EPOCH_LINE = re.compile(r"\bepoch=\d+ train_loss=")


def _land_partitions(env: LocalEnvironment, tmp_path: Path, days: list[date]) -> dict[str, set[str]]:
    rows = env.synthetic_rows(tmp_path / "all.csv")
    landed = {}
    for i, day in enumerate(days):
        part = rows[i :: len(days)]
        env.land(day, part)
        landed[day.isoformat()] = {caption for _, caption in part}
    return landed


def _runs(stack: AirflowStack, dag_id: str) -> list[dict]:
    return stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]


def _finished(stack: AirflowStack, dag_id: str, expected: int) -> list[dict] | None:
    runs = _runs(stack, dag_id)
    done = [r for r in runs if r["state"] in ("success", "failed")]
    return runs if len(runs) >= expected and len(done) == len(runs) else None


def _stored_partitions(env: LocalEnvironment) -> dict[str, set[str]]:
    pages = env.emulator.client("dynamodb").get_paginator("scan").paginate(TableName=env.settings["OGIRI_TABLE"])
    stored: dict[str, set[str]] = {}
    for page in pages:
        for item in page["Items"]:
            stored.setdefault(item["IngestDate"]["S"], set()).add(item["Caption"]["S"])
    return stored


def _stack_env(env: LocalEnvironment, start: datetime) -> dict[str, str]:
    return {
        **env.env,
        # The schedule starts now: no catch-up of earlier nights, only the runs the user starts.
        "OGIRI_INGEST_START_DATE": start.isoformat(),
        "OGIRI_SAGEMAKER_POLL_SECONDS": "2",
        "OGIRI_LANDING_POKE_S": "2",
        "OGIRI_LANDING_TIMEOUT_S": "300",
        "OGIRI_TRAINING_INSTANCE_TYPE": "ml.m5.xlarge",
        "OGIRI_ENDPOINT_INSTANCE_TYPE": "ml.m5.large",
    }


def _trigger_with_defaults(ui: AirflowUI) -> None:
    """The Trigger form exactly as it opens: every Param at its default, logical date now."""
    dialog = ui.open_trigger_dialog("ogiri_ingest")
    assert "Partition date" in dialog.text, dialog.text
    ui.screenshot("ingest-trigger-form")
    ui.submit(dialog, "Trigger")
    wait_for(lambda: "/runs/manual__" in ui.driver.current_url, 30, "the new run's page")


def _backfill(ui: AirflowUI, first_run: datetime, last_run: datetime) -> None:
    ui.open_trigger_dialog("ogiri_ingest")
    dialog = ui.choose_backfill()
    ui.set_datetime(0, first_run.replace(hour=0, minute=0))
    # The picker has minutes only; half an hour past the tick (or now, if sooner) includes it.
    ui.set_datetime(1, last_run + timedelta(minutes=30))  # the picker has minutes; the tick is included
    wait_for(lambda: "2 runs will be triggered" in dialog.text, 30, "the dialog to count 2 runs")
    ui.screenshot("ingest-backfill-dialog")
    ui.submit(dialog, "Run Backfill")


def _read_live_epoch_line(ui: AirflowUI, stack: AirflowStack) -> str:
    """Open the first training run's ``train_model`` log and return an epoch line seen while the
    job had not finished yet (the final metrics line is not there yet)."""
    run = wait_for(lambda: _runs(stack, "ogiri_train"), 300, "an asset-triggered ogiri_train run")[0]
    run_id = run["dag_run_id"]
    # train_model is mapped over the candidates; the default run has one, map index 0
    ti_path = f"/api/v2/dags/ogiri_train/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/train_model/0"

    def started() -> bool:
        try:
            return stack.request("GET", ti_path)["state"] in ("running", "deferred")
        except urllib.error.HTTPError as exc:  # 404 until configure_training has expanded the mapped task
            if exc.code == 404:
                return False
            raise

    wait_for(started, 300, "train_model to start")

    def epoch_line() -> str | None:
        ui.task_page("ogiri_train", run_id, "train_model", map_index=0)
        time.sleep(3)  # the log view loads after the page
        text = ui.body_text()
        lines = [ln for ln in text.splitlines() if EPOCH_LINE.search(ln)]
        if lines:
            assert "Completed:" not in text, "the job had finished before an epoch line could be read live"
        return lines[0] if lines else None

    line = wait_for(epoch_line, 240, "a live epoch line in the train_model log", interval=1)
    ui.screenshot("train-model-live-log")
    return line


def _latest_tick(now: datetime) -> datetime:
    """The last 02:00 UTC nightly tick at or before ``now``."""
    tick = now.replace(hour=2, minute=0, second=0, microsecond=0)
    return tick if tick <= now else tick - timedelta(days=1)


def test_trigger_backfill_and_follow_training_from_the_ui(tmp_path, postgres_metadata_db, chromium, ui_artifacts):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    manual = now.date() - timedelta(days=1)  # a run triggered now ingests the day before
    # Two older nights from the Backfill dialog (ticks at 02:00, each ingesting the day before).
    backfill_runs = [_latest_tick(now) - timedelta(days=d) for d in (2, 1)]
    partitions = [manual, *(d.date() - timedelta(days=1) for d in backfill_runs)]

    with LocalEnvironment(tmp_path / "env", n_images=N_IMAGES) as env:
        landed = _land_partitions(env, tmp_path, partitions)
        with AirflowStack(tmp_path / "airflow", env=_stack_env(env, now), sql_alchemy_conn=postgres_metadata_db) as stack:
            wait_for(
                lambda: {"ogiri_ingest", "ogiri_train"} <= {d["dag_id"] for d in stack.request("GET", "/api/v2/dags")["dags"]},
                180,
                "the dag-processor to register the DAGs",
            )
            # The banner's order: the consumer first, so that it hears every ingest event.
            stack.request("PATCH", "/api/v2/dags/ogiri_train", {"is_paused": False})
            ui = AirflowUI(chromium, stack.url, artifacts=ui_artifacts)
            ui.login("admin", stack.password)
            _trigger_with_defaults(ui)
            _backfill(ui, *backfill_runs)
            epoch = _read_live_epoch_line(ui, stack)
            ingest_runs = wait_for(lambda: _finished(stack, "ogiri_ingest", 3), 420, "3 finished ingest runs")
            train_run = wait_for(
                lambda: (r := _runs(stack, "ogiri_train")[0])["state"] in ("success", "failed") and r,
                420,
                "the training run to finish",
            )
            stored = _stored_partitions(env)
            errors = ui.console_errors()

    # With catch-up on, Airflow resumes the schedule after the latest backfilled night; a tick
    # before the start date creates a run without tasks. Only the user's runs are asserted here.
    kinds = sorted((r["run_type"], r["logical_date"]) for r in ingest_runs if r["run_type"] != "scheduled")
    assert [k for k, _ in kinds] == ["backfill", "backfill", "manual"], kinds
    assert {r["state"] for r in ingest_runs} == {"success"}, {r["dag_run_id"]: r["state"] for r in ingest_runs}
    assert stored == landed, (sorted(stored), sorted(landed), kinds)
    assert "epoch=1" in epoch and "val_loss=" in epoch, epoch
    assert train_run["state"] == "success", train_run
    assert errors == [], errors
