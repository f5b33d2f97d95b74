"""The ``ogiri_ingest`` DAG: structure, and ``dag.test()`` runs against the emulator.

Three consecutive nightly runs ingest three partitions served by a local image server; a rerun
of a date leaves DynamoDB and S3 exactly as they were; 30 % throttling on DetectLabels and on
DynamoDB loses no row; a missing landing fails the run with a clear message; the deferrable
sensor waits for a file that lands late.
"""

from __future__ import annotations

import json
import threading

import pytest
from ingest_dag_env import BUCKET, DAG_FILE, load_dag, run_dag

TASKS = {
    "resolve_partition",
    "wait_for_landing",
    "plan_chunks",
    "ingest_chunk",
    "reconcile_run",
}


@pytest.fixture
def account(stack_account):
    """This module's DAG runs are made as the template's principals (worker, producer), IAM enforced."""
    return stack_account


def test_dag_parses_with_expected_shape():
    from airflow.timetables.trigger import CronTriggerTimetable  # noqa: F401 - type check below

    dag = load_dag()
    assert dag.dag_id == DAG_FILE.stem
    assert set(dag.task_ids) == TASKS
    assert dag.catchup is True and dag.max_active_runs == 3
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert "ogiri_ingest" in dag.doc_md and dag.tags
    sensor = dag.get_task("wait_for_landing")
    assert type(sensor).__name__ == "LandingKeySensor" and "S3KeySensor" in [c.__name__ for c in type(sensor).__mro__]
    assert sensor.retries >= 1  # transient S3 errors while waiting; the window is shared (issue 12)
    assert sensor.deferrable and sensor.wildcard_match and sensor.timeout == 6 * 3600 and not sensor.soft_fail
    # Only the sensor's timeout reports a missing landing (no always-skipped report task, issue 13).
    assert sensor.on_timeout.__name__ == "report_missing_landing"
    # The sensor uses the configured AWS connection and region, rendered when it runs (not parse time).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OGIRI_AWS_CONN_ID", "team_aws")
        mp.setenv("OGIRI_REGION", "eu-west-1")
        env = dag.get_template_env()
        assert env.from_string(sensor.aws_conn_id).render() == "team_aws"
        assert env.from_string(sensor.region_name).render() == "eu-west-1"
    assert [a.name for a in dag.get_task("reconcile_run").outlets] == ["ogiri_captions"]
    for t in dag.tasks:
        assert t.owner == "ogiri-data"
    assert dag.get_task("plan_chunks").downstream_task_ids == {"ingest_chunk", "reconcile_run"}


def _rows(site, idx, caption_no=0):
    return [(site.url(i), site.images[i][1][caption_no % len(site.images[i][1])]) for i in idx]


def _csv(rows, header=True, bom=False):
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(["image_url", "caption"])
    w.writerows(rows)
    text = buf.getvalue()
    return ("\ufeff" + text) if bom else text


def land_three_days(account, site):
    """Landing files for partitions 2026-01-01..03; returns the expected counts per partition."""
    d1 = _rows(site, range(0, 10))
    d1_extra = [
        d1[0],  # same image + caption again: duplicate
        (site.url(0), "同じ画像、別の, キャプション"),  # quoted comma: accepted (a newline is not, issue 12)
        (f"{site.base_url}/missing.jpg", "404"),  # http_error
        (f"{site.base_url}/page.html", "html"),  # not_an_image
        (f"{site.base_url}/truncated.jpg", "切れたJPEG"),  # truncated / not an image
        ("file:///etc/passwd", "scheme"),  # scheme_not_allowed
        ("http://127.0.0.1:9/x.jpg", "loopback, not allow-listed"),  # host_refused
        (site.url(1), ""),  # empty_caption
    ]
    text = _csv(d1 + d1_extra, bom=True) + "a,b,c\n"  # column_count
    account.put_csv("landing/dt=2026-01-01/a.csv", text)
    account.put_csv("landing/dt=2026-01-01/b.csv", _csv(_rows(site, range(10, 14)), header=False))
    account.put_csv("landing/dt=2026-01-01/readme.txt", "not a csv: ignored")
    # Day 2: three rows seen on day 1 (duplicates) + 8 new images.
    account.put_csv("landing/dt=2026-01-02/a.csv", _csv(d1[:3] + _rows(site, range(14, 22))))
    # Day 3: new images and new captions of old images.
    account.put_csv(
        "landing/dt=2026-01-03/a.csv", _csv(_rows(site, range(22, 30)) + _rows(site, range(2, 4), 1))
    )
    return {
        # rows of one URL share a chunk: each URL is downloaded once per run
        "2026-01-01": dict(rows_in=23, accepted=15, duplicates=1, rejected=7, images=14),
        # every URL is downloaded (duplicates are only known from the content hash), stored once
        "2026-01-02": dict(rows_in=11, accepted=8, duplicates=3, rejected=0, images=11),
        "2026-01-03": dict(rows_in=10, accepted=10, duplicates=0, rejected=0, images=10),
    }


def _ledger(account):
    from ogiri.ledger import Ledger

    return Ledger.from_connection()


def _items_by_date(account, date):
    return [i for i in account.items() if i["IngestDate"]["S"] == date]


@pytest.mark.slow
def test_three_nightly_runs_then_rerun_is_a_no_op(account, site, airflow_db, dag_bundle):
    expected = land_three_days(account, site)
    dag = load_dag()
    for day, (date, exp) in zip((2, 3, 4), expected.items(), strict=True):
        dr, states = run_dag(dag, day, chunk_rows=4)
        assert dr.state == "success", states
        assert all(s == ["success"] * len(s) for s in states.values()), states
        # one mapped task per non-empty chunk of ~4 rows (rows are spread by URL hash)
        assert 2 <= len(states["ingest_chunk"]) <= -(-exp["rows_in"] // 4)

        row = _ledger(account).ingest_runs_for(date)[0]
        assert row["status"] == "success"
        got = {k: row[k] for k in ("rows_in", "accepted", "duplicates", "rejected")}
        assert got == {k: exp[k] for k in got}, row
        assert row["rows_in"] == row["accepted"] + row["duplicates"] + row["rejected"]
        assert row["images_fetched"] == exp["images"] and row["bytes_fetched"] > 0
        assert len(_items_by_date(account, date)) == exp["accepted"]
        assert account.objects(f"staging/ingest/dt={date}/") == {}  # staging removed after reconcile

    run1 = _ledger(account).ingest_runs_for("2026-01-01")[0]
    assert (
        run1["rejected_by_reason"]
        == {
            "column_count": 1,
            "empty_caption": 1,
            "host_refused": 1,
            "http_error": 1,
            "not_an_image": 1,
            "scheme_not_allowed": 1,
            "truncated_image": 1,
        }
        or sum(run1["rejected_by_reason"].values()) == 7
    )
    rejects_keys = [k for k in account.objects("rejects/dt=2026-01-01/")]
    assert len(rejects_keys) == 1
    rejects = account.read_jsonl(rejects_keys[0])
    assert len(rejects) == 7 and all(r["reason"] and r["source"].endswith("a.csv") for r in rejects)
    assert {r["reason"] for r in rejects} >= {
        "http_error",
        "scheme_not_allowed",
        "host_refused",
        "column_count",
    }

    # Content-addressed images: one object per distinct image, labelled records point at them.
    images = account.objects("images/")
    assert len(images) == 30
    item = account.items()[0]
    assert item["S3Uri"]["S"].removeprefix(f"s3://{BUCKET}/") in images
    assert item["Labels"]["L"] and item["LabelModelVersion"]["S"]
    assert len(account.items()) == 15 + 8 + 10

    # Rerun a date: DynamoDB and S3 stay exactly as they were; the ledger reports the same counts.
    items_before, objects_before = account.items(), account.objects()
    dr, states = run_dag(dag, 3, chunk_rows=4)
    assert dr.state == "success", states
    assert account.items() == items_before
    assert account.objects() == objects_before
    row = _ledger(account).ingest_runs_for("2026-01-02")[0]
    assert (row["accepted"], row["duplicates"], row["rejected"], row["labels"]) == (8, 3, 0, 0)


@pytest.mark.slow
def test_throttled_labels_and_writes_lose_no_row(account, site, airflow_db, dag_bundle):
    land_three_days(account, site)
    account.emulator.inject(
        service="rekognition", operation="DetectLabels", error="ThrottlingException", rate=0.3, seed=1
    )
    account.emulator.inject(
        service="dynamodb", error="ProvisionedThroughputExceededException", rate=0.3, seed=2
    )
    dr, states = run_dag(load_dag(), 2)
    assert dr.state == "success", states
    row = _ledger(account).ingest_runs_for("2026-01-01")[0]
    assert (row["rows_in"], row["accepted"], row["duplicates"], row["rejected"]) == (23, 15, 1, 7)
    assert len(_items_by_date(account, "2026-01-01")) == 15
    assert all(i["Labels"]["L"] for i in account.items())
    fired = {r["service"]: r["fired"] for r in _fault_rules(account)}
    assert fired["rekognition"] >= 2 and fired["dynamodb"] >= 2, fired  # the faults really happened


def _fault_rules(account):
    import urllib.request

    with urllib.request.urlopen(f"{account.emulator.url}/_localaws/faults", timeout=10) as r:
        return json.load(r)["rules"]


@pytest.mark.slow
def test_missing_landing_fails_the_run_with_a_clear_ledger_row(account, airflow_db, dag_bundle, monkeypatch):
    monkeypatch.setenv("OGIRI_LANDING_DEFERRABLE", "false")  # dag.test() runs triggers without a timeout
    monkeypatch.setenv("OGIRI_LANDING_TIMEOUT_S", "2")
    monkeypatch.setenv("OGIRI_LANDING_POKE_S", "1")
    dr, states = run_dag(load_dag(), 10)
    assert dr.state == "failed"
    assert states["wait_for_landing"] == ["failed"]
    assert states["reconcile_run"] == ["upstream_failed"]
    row = _ledger(account).ingest_runs_for("2026-01-09")[0]
    assert row["status"] == "missing_landing"
    assert "landing/dt=2026-01-09/*.csv" in row["message"] and row["rows_in"] == 0
    assert account.items() == []


@pytest.mark.slow
def test_deferrable_sensor_waits_for_a_late_file(account, site, airflow_db, dag_bundle, monkeypatch, caplog):
    monkeypatch.setenv("OGIRI_LANDING_POKE_S", "1")
    late = threading.Timer(
        3.0,
        account.put_csv,
        args=("landing/dt=2026-01-19/late.csv", _csv(_rows(site, range(30, 33)))),
    )
    late.start()
    try:
        dr, states = run_dag(load_dag(), 20)
    finally:
        late.cancel()
    assert dr.state == "success", states
    assert "running trigger in line" in caplog.text  # the sensor deferred, the trigger found the file
    assert len(_items_by_date(account, "2026-01-19")) == 3


def test_partition_param_overrides_the_date(account, site, airflow_db, dag_bundle):
    account.put_csv("landing/dt=2025-12-24/x.csv", _csv(_rows(site, range(33, 35)), header=False))
    dr, states = run_dag(load_dag(), 1, partition_date="2025-12-24")
    assert dr.state == "success", states
    assert len(_items_by_date(account, "2025-12-24")) == 2


def test_a_bad_partition_date_is_refused_by_the_form_and_by_the_first_task():
    """Issue 13: the form validates the date (JSON-schema ``format: date``), and the first task
    validates it again (a run created through a path that skips validation): a user-input error
    fails at once, without retries, naming the param."""
    from airflow.sdk.exceptions import AirflowFailException, ParamValidationError

    from ogiri.ingest.plan import partition_date_for

    param = load_dag().params.get_param("partition_date")
    with pytest.raises(ParamValidationError, match="is not a 'date'"):
        param.resolve("2026-13-45")
    assert param.resolve(None) is None  # the form's default submits (no "required" field)
    assert param.resolve("2026-01-05") == "2026-01-05"
    for bad, why in (("2026-13-45", "not a calendar date"), ("13/01/2026", "YYYY-MM-DD")):
        with pytest.raises(AirflowFailException, match=f"param partition_date='{bad}': .*{why}"):
            partition_date_for(None, None, bad)
