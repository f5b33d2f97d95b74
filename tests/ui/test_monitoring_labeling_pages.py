"""The Monitoring and Labeling pages through Airflow's real API app with FastAPI's TestClient.

Ledger rows are seeded in the shapes CONTRACTS fixes for ``monitoring_windows`` and
``labeling_jobs`` (what ``ogiri_monitor`` / ``ogiri_label`` record), S3 objects (window reports,
labeling summaries, images) into the emulator with the template's stack deployed; the pages read them
as the Airflow worker principal, so every read is checked against the worker's IAM policy.
"""

from __future__ import annotations

import io
import json
import re
from contextlib import closing
from datetime import datetime, timedelta

import pendulum
import pytest
from PIL import Image
from plugin_client import PARAMS, image_bytes, token, viewer

HOURS = ("2026-12-07T12", "2026-12-07T13", "2026-12-07T14", "2026-12-07T15")
OLD_HOUR = "2026-11-20T09"  # more than 7 days before the newest window
MANUAL_RUN = "manual__2026-12-07T16:05:00+00:00"
#: The scheduled run that checked HOURS[1]: Airflow names it after its run_after (the window's end).
SCHEDULED_RUN = "scheduled__2026-12-07T14:00:00+00:00"
RATE_JOB, CAPTION_JOB = "ogiri-label-rate-0b1c", "ogiri-label-caption-9a8f"


def _endpoint() -> str:
    from ogiri.config import get_settings

    return get_settings().endpoint_name


def _insert(ledger, table: str, row: dict) -> None:
    """One ledger row as the pipelines' writers store it (JSON columns as text)."""
    from ogiri.ledger import to_dialect, utcnow

    row = {"created_at": utcnow(), "updated_at": utcnow(),
           **{k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()}}
    sql = f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"  # noqa: S608
    with closing(ledger.hook.get_conn()) as conn:
        conn.cursor().execute(to_dialect(sql, ledger.dialect), row)
        conn.commit()


def _score(value: float, threshold: float, metric: str = "psi") -> dict:
    return {"metric": metric, "value": value, "threshold": threshold, "violation": value > threshold,
            "psi": value if metric == "psi" else None, "js": value if metric == "js" else None}


def _start(hour: str) -> datetime:
    return datetime.fromisoformat(f"{hour}:00:00+00:00")


def _window(endpoint: str, hour: str, status: str, scores: dict, **extra) -> dict:
    from ogiri.naming import run_key

    start = _start(hour)
    violations = [f for f, s in scores.items() if s["violation"]]
    return {"endpoint_name": endpoint, "window_start": start.isoformat(),
            "window_end": (start + timedelta(hours=1)).isoformat(), "model_name": "ogiri-model-r1",
            # a scheduled run is keyed by its logical date (the window's start), as ogiri.runs does
            "run_key": run_key("ogiri_monitor", "scheduled__x", pendulum.instance(start)), "status": status, "records": 40, "scores": scores,
            "violations": violations, "report_uri": f"s3://{PARAMS['BucketName']}/monitoring/{endpoint}/{hour}/report.json",
            **extra}


def _seed_monitoring(ledger, aws) -> str:
    """Windows of the default endpoint: ok, violation, empty, failed (and an old one); one of another."""
    endpoint = _endpoint()
    rows = [
        _window(endpoint, OLD_HOUR, "ok", {"input_brightness": _score(0.01, 0.25)}),
        _window(endpoint, HOURS[0], "ok", {"input_brightness": _score(0.05, 0.25),
                                           "output_caption_length": _score(0.02, 0.1, "js")}),
        _window(endpoint, HOURS[1], "violation", {"input_brightness": _score(0.41, 0.25),
                                                  "output_caption_length": _score(0.03, 0.1, "js")}, bad_records=2),
        _window(endpoint, HOURS[2], "empty", {}, records=0),
        _window(endpoint, HOURS[3], "failed", {}, records=0, report_uri=None, run_key=f"ogiri_monitor:{MANUAL_RUN}"),
        _window("other-endpoint", HOURS[0], "no_baseline", {}),
    ]
    for row in rows:
        _insert(ledger, "monitoring_windows", row)
    report = {"endpoint": endpoint, "status": "violation", "records": 40, "features": rows[2]["scores"]}
    aws.client("s3").put_object(Bucket=PARAMS["BucketName"], Key=f"monitoring/{endpoint}/{HOURS[1]}/report.json",
                                Body=json.dumps(report).encode())
    return endpoint


def _seed_dag_run(logical: datetime, run_id: str) -> None:
    """The ogiri_monitor run in Airflow's metadata DB (the page reads its run id there)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id == "ogiri_monitor"))
        session.add(DagRun(dag_id="ogiri_monitor", run_id=run_id, logical_date=logical, run_after=logical + timedelta(hours=1),
                           run_type="scheduled", state="success", data_interval=(logical, logical + timedelta(hours=1))))


def _seed_images(aws) -> list[str]:
    from ogiri.aws import put_if_absent
    from ogiri.ingest.images import normalise_image

    keys = []
    for colour in ((220, 200, 40), (40, 160, 90)):
        img = normalise_image(image_bytes(colour), max_pixels=10**6, max_side=64)
        put_if_absent(aws.client("s3"), PARAMS["BucketName"], img.key, img.jpeg, "image/jpeg")
        keys.append(img.sha256)
    return keys


def _summary(keys: list[str]) -> dict:
    return {
        "job_name": RATE_JOB, "task": "rate", "status": "Completed",
        "objects": {"in": 10, "labeled": 8, "rejected": 1, "expired": 1},
        "per_worker": {"w-1": 12, "w-2": 9, "w-3": 3},
        "ratings": {"fit": {"1": 1, "2": 2, "3": 5, "4": 8, "5": 8}, "humour": {"1": 4, "2": 6, "3": 8, "4": 4, "5": 2}},
        "agreement": {"mean": 0.72, "bins": [0, 0.25, 0.5, 0.75, 1.0], "counts": [0, 1, 3, 4]},
        "time_per_task_s": {"median": 14.0, "p90": 31.5, "bins": [0, 10, 20, 30, 40], "counts": [5, 9, 6, 4]},
        "gallery": {
            "best": [{"image_key": keys[0], "caption_id": "c1", "caption": "猫が会議の議長", "fit": 5, "humour": 5,
                      "rating": 5.0}],
            "worst": [{"image_key": f"images/{keys[1][:2]}/{keys[1]}.jpg", "caption_id": "c2", "caption": "緑",
                       "fit": 1, "humour": 2, "rating": 1.5}],
        },
        "rejects_by_reason": {"worker_abandoned": 1},
    }


def _seed_labeling(ledger, aws) -> list[str]:
    """An older caption job without a report yet, and the latest, a rating job with its summary."""
    keys = _seed_images(aws)
    _insert(ledger, "labeling_jobs", {"job_name": CAPTION_JOB, "run_key": "ogiri_label:manual__1", "task_type": "caption",
                                      "status": "InProgress", "objects_in": 5, "workers_per_object": 1,
                                      "created_at": "2026-12-06T10:00:00.000000+00:00"})
    _insert(ledger, "labeling_jobs", {"job_name": RATE_JOB, "run_key": "ogiri_label:manual__2", "task_type": "rate",
                                      "status": "Completed", "objects_in": 10, "labeled": 8, "rejected": 1,
                                      "expired": 1, "workers_per_object": 3, "mean_agreement": 0.72,
                                      "report_uri": f"s3://{PARAMS['BucketName']}/labeling/{RATE_JOB}/report/summary.json",
                                      "created_at": "2026-12-07T10:00:00.000000+00:00"})
    aws.client("s3").put_object(Bucket=PARAMS["BucketName"], Key=f"labeling/{RATE_JOB}/report/summary.json",
                                Body=json.dumps(_summary(keys), ensure_ascii=False).encode())
    return keys


# -- auth ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/ogiri/monitoring", "/ogiri/labeling"])
def test_a_browser_without_a_session_is_sent_to_the_login_page(client, path):
    r = client.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith("/auth/login") and "next=" in r.headers["location"]


@pytest.mark.parametrize("path", ["/ogiri/monitoring", "/ogiri/labeling",
                                  f"/ogiri/monitoring/ogiri-captioner/{HOURS[1]}/report.json"])
def test_a_client_without_a_token_gets_401(client, path):
    assert client.get(path, follow_redirects=False).status_code == 401


def test_a_user_who_may_not_read_the_dags_gets_403(client):
    client.cookies.set("_token", token(None, "outsider"))
    for path in ("/ogiri/monitoring", "/ogiri/labeling", f"/ogiri/monitoring/ogiri-captioner/{HOURS[1]}/report.json",
                 "/ogiri/dag/ogiri_monitor", "/ogiri/dag/ogiri_label"):
        assert client.get(path, follow_redirects=False).status_code == 403, path


# -- empty, outage, validation ------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "says"), [("/ogiri/monitoring", "No monitoring windows yet"),
                                            ("/ogiri/labeling", "No labeling jobs yet")])
def test_a_fresh_install_says_there_is_no_data_yet(client, product, path, says):
    r = viewer(client).get(path)
    assert r.status_code == 200, r.text
    assert says in r.text and 'class="banner"' not in r.text
    assert "<svg" not in r.text


@pytest.mark.parametrize("path", ["/ogiri/monitoring", "/ogiri/labeling"])
def test_a_ledger_outage_shows_a_banner_not_a_traceback(client, product, monkeypatch, tmp_path, path):
    missing = tmp_path / "no-such-dir" / "ledger.db"
    monkeypatch.setenv("AIRFLOW_CONN_OGIRI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(missing)}))
    r = viewer(client).get(path)
    assert r.status_code == 200
    banner = re.search(r'<div class="banner" role="alert">(.*?)</div>', r.text)
    assert banner and "could not read the run ledger" in banner.group(1), r.text
    assert "Traceback" not in r.text and 'File "' not in r.text


def test_an_s3_outage_shows_a_banner_on_the_labeling_page(client, product, aws):
    _seed_labeling(product, aws)
    aws.inject(service="s3", operation="GetObject", error="AccessDenied", status=403)
    r = viewer(client).get("/ogiri/labeling")
    assert r.status_code == 200
    banner = re.search(r'<div class="banner" role="alert">(.*?)</div>', r.text)
    assert banner and f"labeling/{RATE_JOB}/report/summary.json" in banner.group(1), r.text
    assert "AccessDenied" in banner.group(1)
    assert RATE_JOB in r.text and "No report yet" not in r.text  # the jobs table still renders
    assert viewer(client).get(f"/ogiri/monitoring/{_endpoint()}/{HOURS[1]}/report.json").status_code == 502


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/ogiri/monitoring?days=0", "whole number from 1 to 90"),
        ("/ogiri/monitoring?days=91", "whole number from 1 to 90"),
        ("/ogiri/monitoring?days=a", "whole number from 1 to 90"),
        ("/ogiri/monitoring?endpoint=bad_name", "is not an endpoint name"),
        ("/ogiri/monitoring?endpoint=-leading", "is not an endpoint name"),
        ("/ogiri/monitoring?endpoint=%3Cscript%3E", "is not an endpoint name"),
        ("/ogiri/monitoring?window=1", "unknown query parameter &#x27;window&#x27;"),
        ("/ogiri/monitoring?days=1&days=2", "given 2 times"),
        ("/ogiri/labeling?job=../etc", "is not a labeling job name"),
        ("/ogiri/labeling?job=" + "a" * 64, "is not a labeling job name"),
        ("/ogiri/labeling?page=2", "unknown query parameter &#x27;page&#x27;"),
    ],
)
def test_bad_query_parameters_get_400_with_a_message(client, product, path, why):
    r = viewer(client).get(path)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert why in r.text
    assert r.text.count("<script") == 1  # the theme script only: the bad value is escaped


def test_a_bad_report_path_gets_400_and_a_missing_one_404(client, product):
    c = viewer(client)
    assert c.get("/ogiri/monitoring/bad_name/2026-12-07T13/report.json").status_code == 400
    assert c.get("/ogiri/monitoring/ogiri-captioner/2026-12-07/report.json").status_code == 400
    assert c.get("/ogiri/monitoring/ogiri-captioner/2026-12-07T13/report.json").status_code == 404


# -- pages with data ----------------------------------------------------------------------------------------

def test_the_monitoring_page_charts_drift_against_thresholds_and_marks_violations(client, product, aws):
    endpoint = _seed_monitoring(product, aws)
    _seed_dag_run(_start(HOURS[1]), SCHEDULED_RUN)
    c = viewer(client)
    r = c.get("/ogiri/monitoring")
    assert r.status_code == 200, r.text
    assert 'class="banner"' not in r.text
    charts = re.findall(r'<svg class="chart".*?</svg>', r.text)
    assert len(charts) == 2, charts  # input_brightness, output_caption_length
    assert all(ch.count('<polyline class="threshold"') == 1 for ch in charts)
    assert all(ch.count('class="point') == 2 for ch in charts)  # the two scored windows of the last 7 days
    brightness = next(ch for ch in charts if "input_brightness" in ch)
    assert re.search(r'<circle class="point violation"[^>]*><title>12-07 13h: 0\.41 \(threshold 0\.25\) · '
                     r"violation</title>", brightness), brightness
    assert 'class="point violation"' not in next(ch for ch in charts if "output_caption_length" in ch)
    assert '<strong class="violations">1 violation</strong> in 1 window' in r.text
    for status in ("ok", "violation", "empty", "failed"):
        assert f'<span class="status-{status}">{status}</span>' in r.text
    assert OLD_HOUR[:10] not in r.text  # older than 7 days before the newest window
    assert "no_baseline" not in r.text  # another endpoint's window
    report_href = f"/ogiri/monitoring/{endpoint}/{HOURS[1]}/report.json"
    assert f'href="{report_href}"' in r.text
    assert r.text.count('>report.json</a>') == 3  # the failed window has no report
    assert 'href="/dags/ogiri_monitor/runs/scheduled__2026-12-07T14%3A00%3A00%2B00%3A00"' in r.text
    assert 'href="/dags/ogiri_monitor/runs/manual__2026-12-07T16%3A05%3A00%2B00%3A00"' in r.text
    assert '<a target="_top" href="/dags/ogiri_monitor/runs">run of 2026-12-07 12:00:00</a>' in r.text  # not in the DB
    report = c.get(report_href)
    assert report.status_code == 200 and report.headers["content-type"] == "application/json"
    assert report.json()["features"]["input_brightness"]["violation"] is True
    older = c.get("/ogiri/monitoring?days=30").text
    assert OLD_HOUR[:10] in older and older.count('class="point') == 5
    other = c.get("/ogiri/monitoring?endpoint=other-endpoint").text
    assert "no_baseline" in other and "No window of this range has drift scores" in other


def test_the_labeling_page_draws_the_latest_jobs_analysis_and_gallery(client, product, aws):
    keys = _seed_labeling(product, aws)
    c = viewer(client)
    r = c.get("/ogiri/labeling")
    assert r.status_code == 200, r.text
    assert 'class="banner"' not in r.text
    assert f"<h2>Job {RATE_JOB}</h2>" in r.text and CAPTION_JOB in r.text
    charts = re.findall(r'<svg class="chart" role="img" aria-label="([^"]*)".*?</svg>', r.text)
    assert charts == ["Annotations per worker", "fit ratings, 1 to 5", "humour ratings, 1 to 5",
                      "Agreement per object, 0 to 1", "Time per task, seconds"], charts
    assert "<title>w-1 · annotations: 12</title>" in r.text
    assert "<title>4 · ratings: 8</title>" in r.text and "<title>0.75–1 · objects: 4</title>" in r.text
    assert "mean 0.72" in r.text and "median 14.0" in r.text and "worker_abandoned" in r.text
    srcs = re.findall(r'<img [^>]*src="([^"]+)"', r.text)
    assert srcs == [f"/ogiri/images/{k}.jpg" for k in keys], srcs
    assert "猫が会議の議長" in r.text
    for src in srcs:
        img = c.get(src)
        assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(img.content)).size == (48, 32)
    pending = c.get(f"/ogiri/labeling?job={CAPTION_JOB}").text
    assert f"No report yet for {CAPTION_JOB}" in pending and "InProgress" in pending and "<svg" not in pending
    assert "No labeling job named ogiri-label-nope" in c.get("/ogiri/labeling?job=ogiri-label-nope").text


def test_the_dag_tabs_open_monitoring_and_labeling(client, product):
    c = viewer(client)
    for dag_id, page in (("ogiri_monitor", "monitoring"), ("ogiri_label", "labeling")):
        r = c.get(f"/ogiri/dag/{dag_id}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/ogiri/{page}"
    nav = c.get("/ogiri/labeling").text
    assert '<a href="/ogiri/monitoring">Monitoring</a>' in nav and 'class=active>Labeling</a>' in nav
