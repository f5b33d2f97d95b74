"""Every DAG on the CeleryExecutor: Redis broker, PostgreSQL everywhere, two isolated workers.

One stack for the module (``ogiri_local.celery_stack.CeleryStack``): the emulator under IAM
enforcement with the template's least-privilege principals, throwaway PostgreSQL databases for the
Airflow metadata, the Celery results and the run ledger, and two Celery workers that share no
working directory, ``HOME`` or temp folder. Each worker runs one task at a time, so tasks queued
together land on different workers.

1. ``ogiri_ingest`` for two dates (two runs at once), then ``ogiri_train`` and ``ogiri_batch_caption``
   through the real scheduler: every run succeeds, tasks ran on both workers (task-instance
   hostnames), the SageMaker job tasks ran in the ``sagemaker`` pool (1 slot here), and DynamoDB and the ledger hold what the LocalExecutor run holds
   (tests/e2e/test_real_scheduler.py): exactly the landed rows, each under its partition date.
2. One worker is SIGKILLed while it runs an ingest chunk: Airflow's heartbeat timeout fails that
   try, the retry runs on the other worker, and the run succeeds with nothing lost or duplicated.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from ogiri_local.celery_stack import (
    DEFAULT_BROKER_URL,
    CeleryStack,
    ServiceUnreachable,
    ThrowawayDatabases,
    check_broker,
)
from ogiri_local.environment import LocalEnvironment

pytestmark = pytest.mark.slow

ROWS_PER_DAY = 24
TODAY = datetime.now(UTC).date()
PIPELINE_DAYS = [TODAY - timedelta(days=3), TODAY - timedelta(days=2)]
KILL_DAY = TODAY - timedelta(days=10)
KILL_ROWS = 12
TRAIN_CONF = {
    "encoder": "resnet18",
    "image_size": 64,
    "batch_size": 16,
    "epochs": 2,
    "use_spot": False,
    "extra_hyperparameters": {"grid": 2, "embed_dim": 64, "hidden_dim": 128, "num_workers": 0, "max_len": 24,
                              "beam_width": 2},
    "min_new_images": 0,
    "smoke_samples": 2,
    "smoke_max_latency_seconds": 60,
    "poll_seconds": 1,
}


@pytest.fixture(scope="module")
def celery(tmp_path_factory):
    """The emulator environment, the PostgreSQL databases and a running two-worker Celery stack."""
    pytest.importorskip("airflow.providers.celery")
    try:
        check_broker(os.environ.get("OGIRI_CELERY_BROKER_URL", DEFAULT_BROKER_URL))
    except ServiceUnreachable as exc:
        pytest.skip(str(exc))
    tmp = tmp_path_factory.mktemp("celery-e2e")
    n_images = len(PIPELINE_DAYS) * ROWS_PER_DAY + KILL_ROWS
    try:
        databases = ThrowawayDatabases("metadata", "results", "ledger")
        databases.__enter__()
    except ServiceUnreachable as exc:
        pytest.skip(str(exc))
    try:
        with LocalEnvironment(tmp / "env", n_images=n_images) as env:
            rows = env.synthetic_rows(tmp / "all.csv")
            landed = {}
            sizes = [ROWS_PER_DAY] * len(PIPELINE_DAYS) + [KILL_ROWS]
            for day, size in zip([*PIPELINE_DAYS, KILL_DAY], sizes, strict=True):
                part, rows = rows[:size], rows[size:]
                env.land(day, part)
                landed[day.isoformat()] = sorted(caption for _, caption in part)
            airflow_env = {
                **env.env,
                "AIRFLOW_CONN_OGIRI_LEDGER": databases.connection_uri("ledger"),
                # No scheduled ingest runs: this module triggers every run it checks.
                "OGIRI_INGEST_START_DATE": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                "OGIRI_LANDING_POKE_S": "2",
                "OGIRI_LANDING_TIMEOUT_S": "120",
                "OGIRI_LANDING_DEFERRABLE": "false",
                "OGIRI_SAGEMAKER_POLL_SECONDS": "1",
                "OGIRI_REKOGNITION_TPS": "50",
                "OGIRI_TRAINING_INSTANCE_TYPE": "ml.m5.xlarge",
                "OGIRI_ENDPOINT_INSTANCE_TYPE": "ml.m5.large",
                # SageMaker job tasks in one pool of 1 slot: one job at a time, account-wide.
                "OGIRI_SAGEMAKER_POOL": "sagemaker",
                # A killed worker's task is failed (and retried) after 30 s without a heartbeat.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            }
            with CeleryStack(tmp / "airflow", databases, env=airflow_env, concurrency=1) as stack:
                stack.ensure_pool("sagemaker", 1, "SageMaker jobs at once")
                _wait_for_dags(stack, {"ogiri_ingest", "ogiri_train", "ogiri_batch_caption"})
                yield SimpleNamespace(env=env, stack=stack, databases=databases, landed=landed)
    finally:
        databases.__exit__(None, None, None)


def _wait_for_dags(stack: CeleryStack, dag_ids: set[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {d["dag_id"] for d in stack.request("GET", "/api/v2/dags")["dags"]}
        if dag_ids <= found:
            errors = stack.request("GET", "/api/v2/importErrors")
            assert errors["total_entries"] == 0, errors
            return
        time.sleep(2)
    raise AssertionError(f"the dag-processor registered only {found}")


def _trigger(stack: CeleryStack, dag_id: str, conf: dict) -> str:
    run = stack.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
    return run["dag_run_id"]


def _unpause(stack: CeleryStack, dag_id: str) -> None:
    stack.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})


def _wait_for_run(stack: CeleryStack, dag_id: str, run_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(3)
    raise AssertionError(f"{dag_id} {run_id} still {run['state']} after {timeout:.0f} s")


def _task_instances(stack: CeleryStack, dag_id: str, run_id: str) -> list[dict]:
    return stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200")["task_instances"]


def _dynamodb_items(env: LocalEnvironment) -> list[dict]:
    pages = env.emulator.client("dynamodb").get_paginator("scan").paginate(TableName=env.settings["OGIRI_TABLE"])
    return [item for page in pages for item in page["Items"]]


def _dynamodb_by_date(env: LocalEnvironment) -> dict[str, list[str]]:
    stored: dict[str, list[str]] = {}
    for item in _dynamodb_items(env):
        stored.setdefault(item["IngestDate"]["S"], []).append(item["Caption"]["S"])
    return stored


def _ledger(databases: ThrowawayDatabases, sql: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(databases["ledger"]) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_every_dag_on_two_celery_workers(celery):
    stack, env = celery.stack, celery.env
    _unpause(stack, "ogiri_ingest")
    ingest = [_trigger(stack, "ogiri_ingest", {"partition_date": d.isoformat(), "chunk_rows": 6})
              for d in PIPELINE_DAYS]
    ingest_runs = [_wait_for_run(stack, "ogiri_ingest", run_id) for run_id in ingest]
    assert [r["state"] for r in ingest_runs] == ["success", "success"], ingest_runs

    train = _trigger(stack, "ogiri_train", TRAIN_CONF)
    _unpause(stack, "ogiri_train")
    train_run = _wait_for_run(stack, "ogiri_train", train, timeout=900)
    batch = _trigger(stack, "ogiri_batch_caption", {"ingest_date": PIPELINE_DAYS[-1].isoformat(), "beam_width": 2,
                                                    "batch_size": 8})
    _unpause(stack, "ogiri_batch_caption")
    batch_run = _wait_for_run(stack, "ogiri_batch_caption", batch, timeout=600)
    assert (train_run["state"], batch_run["state"]) == ("success", "success"), (train_run, batch_run)

    tis = [ti for dag_id, run_id in [*[("ogiri_ingest", r) for r in ingest], ("ogiri_train", train),
                                      ("ogiri_batch_caption", batch)]
           for ti in _task_instances(stack, dag_id, run_id)]
    hosts = {ti["hostname"] for ti in tis if ti["state"] == "success"}
    assert set(stack.hostnames) <= hosts, f"tasks ran on {hosts}, not on both workers {stack.hostnames}"
    assert hosts <= set(stack.hostnames), f"a task ran outside the Celery workers: {hosts}"
    job_tasks = {(ti["task_id"], ti["pool"]) for ti in tis if ti["task_id"] in
                 ("train_model", "evaluate_models", "caption_set")}
    assert job_tasks == {("train_model", "sagemaker"), ("evaluate_models", "sagemaker"), ("caption_set", "sagemaker")}

    # What the LocalExecutor run asserts: DynamoDB holds exactly the landed rows, once each.
    stored = _dynamodb_by_date(env)
    for day in PIPELINE_DAYS:
        captions = stored[day.isoformat()]
        assert sorted(captions) == sorted(celery.landed[day.isoformat()]), day
    ledger = _ledger(celery.databases, "SELECT partition_date, status, rows_in, accepted, rejected FROM ingest_runs "
                                       "ORDER BY partition_date")
    assert ledger == [(d.isoformat(), "success", ROWS_PER_DAY, ROWS_PER_DAY, 0) for d in PIPELINE_DAYS]
    trained = _ledger(celery.databases, "SELECT status FROM training_runs")
    assert trained == [("Completed",)]
    deployed = _ledger(celery.databases, "SELECT action, status FROM deployments")
    assert deployed == [("create", "succeeded")]
    # one caption per distinct image of the batch's ingest date (identical synthetic images share a key)
    images = {i["ImageKey"]["S"] for i in _dynamodb_items(env) if i["IngestDate"]["S"] == PIPELINE_DAYS[-1].isoformat()}
    captions = _ledger(celery.databases, "SELECT count(DISTINCT image_key), count(caption), count(error) "
                                         "FROM batch_captions")
    assert captions == [(len(images), len(images), 0)]


def _wait_for_chunk_on_a_worker(stack: CeleryStack, run_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ti in _task_instances(stack, "ogiri_ingest", run_id):
            if ti["task_id"] == "ingest_chunk" and ti["state"] == "running" and ti["hostname"] in stack.hostnames:
                return ti
        time.sleep(0.5)
    raise AssertionError("no ingest_chunk task started running")


def test_a_worker_killed_during_an_ingest_chunk_is_retried_elsewhere(celery):
    stack, env = celery.stack, celery.env
    _unpause(stack, "ogiri_ingest")
    # 1 DetectLabels call per second: each 6-row chunk runs for several seconds.
    run_id = _trigger(stack, "ogiri_ingest", {"partition_date": KILL_DAY.isoformat(), "chunk_rows": 6,
                                              "rekognition_tps": 1})
    victim = _wait_for_chunk_on_a_worker(stack, run_id)
    index = stack.hostnames.index(victim["hostname"]) + 1
    os.killpg(stack.procs[f"worker-{index}"].pid, signal.SIGKILL)  # the worker and its task processes
    stack.procs[f"worker-{index}"].wait()

    run = _wait_for_run(stack, "ogiri_ingest", run_id, timeout=600)
    assert run["state"] == "success", run
    chunks = [ti for ti in _task_instances(stack, "ogiri_ingest", run_id) if ti["task_id"] == "ingest_chunk"]
    killed = next(ti for ti in chunks if ti["map_index"] == victim["map_index"])
    assert killed["try_number"] >= 2, "the killed chunk was not retried"
    survivor = next(h for h in stack.hostnames if h != victim["hostname"])
    assert killed["hostname"] == survivor

    stored = _dynamodb_by_date(env)[KILL_DAY.isoformat()]
    assert sorted(stored) == sorted(celery.landed[KILL_DAY.isoformat()]), "rows lost or duplicated"
    ledger = _ledger(celery.databases, f"SELECT status, rows_in, accepted, duplicates, rejected FROM ingest_runs "
                                       f"WHERE partition_date = '{KILL_DAY.isoformat()}'")
    assert ledger == [("success", KILL_ROWS, KILL_ROWS, 0, 0)]
    s3 = env.emulator.client("s3")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=env.settings["OGIRI_BUCKET"], Prefix="images/") for o in page.get("Contents", [])]
    bucket = env.settings["OGIRI_BUCKET"]
    assert {f"s3://{bucket}/{k}" for k in keys} == {i["S3Uri"]["S"] for i in _dynamodb_items(env)}, \
        "every record's image is stored once, and no image is left without a record"
    stack.start_worker(index)  # leave the stack as the fixture made it
