"""The run ledger against SQLite and PostgreSQL (same suite, both dialects)."""

from __future__ import annotations

import json
import uuid

import pytest

from ogiri.ledger import (
    BatchCaption,
    Deployment,
    Evaluation,
    IngestRun,
    Ledger,
    LedgerError,
    TrainingRun,
    param_names,
    to_dialect,
)

PG_HOST, PG_PORT = "127.0.0.1", 5432
TABLES = ("ingest_runs", "training_runs", "evaluations", "deployments", "batch_captions", "monitoring_windows")


@pytest.fixture(scope="session")
def pg_database():
    """A uniquely named PostgreSQL database for this session, dropped at the end."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(
            host=PG_HOST, port=PG_PORT, user="postgres", dbname="test", autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable on {PG_HOST}:{PG_PORT}: {exc}")
    name = f"ogiri_ledger_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request, tmp_path, monkeypatch):
    """An empty ledger behind the Airflow connection ``ogiri_ledger`` (env-var defined)."""
    if request.param == "sqlite":
        uri = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")})
    else:
        db = request.getfixturevalue("pg_database")
        uri = f"postgres://postgres@{PG_HOST}:{PG_PORT}/{db}"
    monkeypatch.setenv("AIRFLOW_CONN_OGIRI_LEDGER", uri)
    led = Ledger.from_connection()
    assert led.dialect == request.param
    if request.param == "postgres":
        led.hook.run([f"DROP TABLE IF EXISTS {t}" for t in TABLES])
    led.ensure_schema()
    return led


def _count(led: Ledger, table: str) -> int:
    return led.hook.get_first(f"SELECT COUNT(*) FROM {table}")[0]


def test_sqlite_uri_form_from_docs(tmp_path, monkeypatch):
    path = tmp_path / "dir with space" / "l.db"
    path.parent.mkdir()
    monkeypatch.setenv(
        "AIRFLOW_CONN_OGIRI_LEDGER", "sqlite://" + str(path).replace("/", "%2F").replace(" ", "%20")
    )
    led = Ledger.from_connection()
    led.ensure_schema()
    assert path.exists()


def test_ensure_schema_is_idempotent_and_keeps_data(ledger):
    ledger.record_ingest_run(
        IngestRun("k1", "ogiri_ingest", "r1", "2026-01-01", "success", rows_in=1, accepted=1)
    )
    ledger.ensure_schema()
    ledger.ensure_schema()
    assert ledger.get_ingest_run("k1")["accepted"] == 1
    for table in TABLES:
        assert _count(ledger, table) >= 0


def test_ingest_run_upsert_overwrites_without_duplicating(ledger):
    run = IngestRun(
        "ogiri_ingest:2026-01-02",
        "ogiri_ingest",
        "scheduled__2026-01-02",
        "2026-01-01",
        "running",
    )
    ledger.record_ingest_run(run)
    first = ledger.get_ingest_run(run.run_key)
    run.status, run.rows_in, run.accepted, run.duplicates, run.rejected = "success", 10, 6, 1, 3
    run.rejected_by_reason = {"http_404": 2, "caption_too_long": 1}
    run.bytes_fetched, run.elapsed_s, run.message = 5 * 2**32, 1.25, "大喜利 ok"
    ledger.record_ingest_run(run)
    ledger.record_ingest_run(run)
    assert _count(ledger, "ingest_runs") == 1
    row = ledger.get_ingest_run(run.run_key)
    assert (row["rows_in"], row["accepted"], row["duplicates"], row["rejected"]) == (10, 6, 1, 3)
    assert row["rejected_by_reason"] == {"http_404": 2, "caption_too_long": 1}
    assert row["bytes_fetched"] == 5 * 2**32
    assert row["message"] == "大喜利 ok"
    assert row["status"] == "success"
    assert row["created_at"] == first["created_at"] and row["updated_at"] > first["updated_at"]
    assert [r["run_key"] for r in ledger.ingest_runs_for("2026-01-01")] == [run.run_key]
    assert ledger.ingest_runs_for("2026-01-03") == []
    assert ledger.get_ingest_run("nope") is None


def test_training_run_partial_updates_keep_earlier_fields(ledger):
    ledger.record_training_run(
        TrainingRun(
            "ogiri-train-abc",
            "InProgress",
            run_key="ogiri_train:x",
            dataset_version="v1",
            hyperparameters={"epochs": 2, "lr": 0.001},
            instance_type="ml.g5.xlarge",
            instance_count=1,
        )
    )
    ledger.record_training_run(
        TrainingRun(
            "ogiri-train-abc",
            "Completed",
            billable_seconds=600,
            cost_usd=0.2347,
            model_artifact="s3://b/models/model.tar.gz",
            metrics={"val_bleu4": 0.12},
        )
    )
    row = ledger.get_training_run("ogiri-train-abc")
    assert row["status"] == "Completed"
    assert row["hyperparameters"] == {"epochs": 2, "lr": 0.001}
    assert row["dataset_version"] == "v1" and row["instance_type"] == "ml.g5.xlarge"
    assert row["billable_seconds"] == 600 and row["cost_usd"] == pytest.approx(0.2347)
    assert row["metrics"] == {"val_bleu4": 0.12}
    assert _count(ledger, "training_runs") == 1


def test_evaluation_upsert(ledger):
    ev = Evaluation(
        "cand-1",
        "reject",
        champion_job="champ-0",
        candidate_metrics={"cider": 0.5},
        champion_metrics={"cider": 0.6},
        reason="cider regressed",
    )
    ledger.record_evaluation(ev)
    ev.decision, ev.reason = "promote", "cider +0.1"
    ev.candidate_metrics = {"cider": 0.7}
    ledger.record_evaluation(ev)
    row = ledger.get_evaluation("cand-1")
    assert row["decision"] == "promote" and row["reason"] == "cider +0.1"
    assert row["candidate_metrics"] == {"cider": 0.7} and row["champion_metrics"] == {"cider": 0.6}
    assert _count(ledger, "evaluations") == 1


def test_champion_follows_successful_deployments(ledger):
    ep = "ogiri-captioner"
    assert ledger.champion(ep) is None
    ledger.record_deployment(Deployment("run1", ep, "create", "in_progress", model_name="m-a"))
    assert ledger.champion(ep) is None
    ledger.record_deployment(
        Deployment("run1", ep, "create", "succeeded", endpoint_config="cfg-a", training_job="job-a")
    )
    champ = ledger.champion(ep)
    assert (champ["model_name"], champ["endpoint_config"], champ["training_job"]) == ("m-a", "cfg-a", "job-a")
    ledger.record_deployment(Deployment("run2", ep, "update", "failed", model_name="m-b", reason="boom"))
    assert ledger.champion(ep)["model_name"] == "m-a"
    ledger.record_deployment(Deployment("run3", ep, "update", "succeeded", model_name="m-c"))
    assert ledger.champion(ep)["model_name"] == "m-c"
    ledger.record_deployment(Deployment("run4", ep, "skip", "succeeded", reason="no improvement"))
    assert ledger.champion(ep)["model_name"] == "m-c"
    ledger.record_deployment(Deployment("run5", ep, "rollback", "succeeded", model_name="m-a"))
    assert ledger.champion(ep)["model_name"] == "m-a"
    # Re-recording an old success (a retry) neither duplicates nor re-orders the history.
    ledger.record_deployment(Deployment("run3", ep, "update", "succeeded", model_name="m-c"))
    assert ledger.champion(ep)["model_name"] == "m-a"
    assert len(ledger.deployment_history(ep)) == 5
    assert ledger.champion("other-endpoint") is None


def test_deployment_validates_action_and_status():
    with pytest.raises(LedgerError, match="action"):
        Deployment("r", "ep", "destroy", "succeeded")
    with pytest.raises(LedgerError, match="status"):
        Deployment("r", "ep", "create", "done")


def test_batch_captions_upsert_by_image_and_model(ledger):
    rows = [
        BatchCaption(f"images/ab/{i:04d}.jpg", "m-a", caption=f"猫が{i}匹", score=-1.5, job_name="bt-1")
        for i in range(50)
    ]
    rows.append(BatchCaption("images/ab/bad.jpg", "m-a", error="not an image", job_name="bt-1"))
    assert ledger.record_batch_captions(rows) == 51
    assert ledger.record_batch_captions([]) == 0
    ledger.record_batch_captions(
        [BatchCaption("images/ab/bad.jpg", "m-a", caption="犬", score=-0.5, job_name="bt-2")]
    )
    ledger.record_batch_captions([BatchCaption("images/ab/bad.jpg", "m-b", caption="鳥", job_name="bt-2")])
    assert _count(ledger, "batch_captions") == 52
    first = ledger.batch_captions("bt-1")
    assert len(first) == 50 and first[3]["caption"] == "猫が3匹"
    fixed = [r for r in ledger.batch_captions("bt-2") if r["model_name"] == "m-a"]
    assert fixed[0]["caption"] == "犬" and fixed[0]["error"] is None


def test_missing_connection_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_OGIRI_NOPE", raising=False)
    with pytest.raises(LedgerError, match="ogiri_nope.*not defined"):
        Ledger.from_connection("ogiri_nope")


def test_missing_parameter_is_a_clear_error(ledger):
    with pytest.raises(LedgerError, match="missing ledger parameters: .*job_name"):
        ledger.execute("upsert_training_run", {"status": "x"})


def test_placeholder_conversion():
    sql = "SELECT a::text, '50%' FROM t WHERE k = :key AND j = :key AND x LIKE :pat"
    assert to_dialect(sql, "sqlite") == sql
    assert to_dialect(sql, "postgres") == (
        "SELECT a::text, '50%%' FROM t WHERE k = %(key)s AND j = %(key)s AND x LIKE %(pat)s"
    )
    assert param_names(sql) == ["key", "pat"]


def test_guarded_deployment_columns_are_added_to_an_existing_ledger(ledger):
    # A ledger created before the guardrail columns existed: the old deployments table, with a row.
    ledger.hook.run(["DROP TABLE deployments", """CREATE TABLE deployments (
        run_key TEXT NOT NULL, endpoint_name TEXT NOT NULL, endpoint_config TEXT, model_name TEXT,
        training_job TEXT, model_artifact TEXT, action TEXT NOT NULL, reason TEXT, status TEXT NOT NULL,
        deployed_at TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (run_key, endpoint_name))""",
        "INSERT INTO deployments VALUES ('old', 'ep', 'c0', 'm0', NULL, NULL, 'create', NULL, 'succeeded', "
        "'2026-01-01', '2026-01-01', '2026-01-01')"])
    ledger.ensure_schema()
    ledger.ensure_schema()
    ledger.record_deployment(Deployment("r2", "ep", "update", "in_progress", endpoint_config="c2", strategy="canary",
                                        alarms=["ogiri-ep-AllTraffic-5xx-rate", "ogiri-ep-AllTraffic-p99-latency"]))
    ledger.record_deployment(Deployment("r2", "ep", "update", "failed", outcome="rolled_back_by_alarm",
                                        outcome_alarm="ogiri-ep-AllTraffic-5xx-rate"))
    rows = {r["run_key"]: r for r in ledger.deployment_history("ep")}
    assert rows["old"]["endpoint_config"] == "c0" and rows["old"]["strategy"] is None
    assert rows["r2"]["strategy"] == "canary" and rows["r2"]["endpoint_config"] == "c2"
    assert rows["r2"]["alarms"] == ["ogiri-ep-AllTraffic-5xx-rate", "ogiri-ep-AllTraffic-p99-latency"]
    assert (rows["r2"]["outcome"], rows["r2"]["outcome_alarm"]) == ("rolled_back_by_alarm", "ogiri-ep-AllTraffic-5xx-rate")
    with pytest.raises(LedgerError):
        Deployment("r3", "ep", "update", "failed", outcome="mostly_fine")


# -- issue 14: monitoring windows, what triggered a training run --------------------------------------


def test_monitoring_window_upsert_alert_and_rerun(ledger):
    from ogiri.ledger import MonitoringWindow

    start, end = "2026-12-07T14:00:00+00:00", "2026-12-07T15:00:00+00:00"
    scores = {"input_brightness": {"metric": "psi", "value": 1.2, "threshold": 0.25, "violation": True}}
    ledger.record_monitoring_window(MonitoringWindow(
        endpoint_name="ep", window_start=start, window_end=end, status="violation", run_key="ogiri_monitor:a",
        model_name="m1", records=40, bad_records=2, scores=scores, violations=["input_brightness"],
        report_uri="s3://b/monitoring/ep/2026-12-07T14/report.json", processing_job="ogiri-monitor-x"))
    ledger.set_monitoring_alert("ep", start, "msg-1")
    ledger.record_monitoring_window(MonitoringWindow(endpoint_name="ep", window_start="2026-12-07T13:00:00+00:00",
                                                     window_end=start, status="empty", model_name="m1"))
    rows = ledger.monitoring_windows("ep")
    assert [r["window_start"] for r in rows] == [start, "2026-12-07T13:00:00+00:00"]  # newest first
    assert rows[0]["scores"] == scores and rows[0]["violations"] == ["input_brightness"]
    assert (rows[0]["alert_message_id"], rows[0]["records"], rows[0]["bad_records"]) == ("msg-1", 40, 2)
    assert (rows[1]["status"], rows[1]["scores"], rows[1]["violations"], rows[1]["records"]) == ("empty", {}, [], 0)
    ledger.record_monitoring_window(MonitoringWindow(endpoint_name="ep", window_start=start, window_end=end,
                                                     status="ok", run_key="ogiri_monitor:b"))
    rerun = ledger.monitoring_windows("ep")[0]
    assert (rerun["status"], rerun["alert_message_id"], rerun["model_name"]) == ("ok", None, "m1")
    assert len(ledger.monitoring_windows("ep")) == 2 and ledger.monitoring_windows("other") == []
    with pytest.raises(LedgerError):
        MonitoringWindow(endpoint_name="ep", window_start=start, window_end=end, status="drifted")


def test_training_runs_gain_triggered_by_on_an_existing_ledger(ledger):
    ledger.hook.run("ALTER TABLE training_runs DROP COLUMN triggered_by")  # a ledger from before issue 14
    ledger.ensure_schema()
    ledger.record_training_run(TrainingRun(job_name="j1", status="InProgress", triggered_by="drift"))
    ledger.record_training_run(TrainingRun(job_name="j1", status="Completed"))
    assert ledger.get_training_run("j1")["triggered_by"] == "drift"
