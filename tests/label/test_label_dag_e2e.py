"""``dag.test()`` of ogiri_label on the emulator, as the template's principals (IAM enforced).

The emulator runs the labeling job for real: the template's Lambdas (pre-annotation and
consolidation) as subprocesses, and a simulated workforce (``POST /_localaws/workforce``) answering
from an oracle with noise and abandonment. Covered: a ``rate`` job with a noisy oracle (agreement
below 1) whose ratings land on the caption items and the ledger; a rerun that re-attaches to the one
job of the run; a ``caption`` job where abandoned objects expire and bad answers are rejected, with
objects in = labeled + rejected + expired.
"""

from __future__ import annotations

import hashlib
import io
import json
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUCKET = "ogiri-label-e2e"
TABLE = "ogiri-label-e2e"
DAY = "2026-03-03"
LOGICAL_DATE = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)

pytestmark = pytest.mark.slow


def _jpeg(i: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), ((40 * i) % 255, (90 * i) % 255, (150 + 20 * i) % 255)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def label_env(aws, stack, airflow_db, tmp_path, monkeypatch):
    """The template deployed (workers = the stack's worker principal), 4 ingested images with one
    caption each, and a batch-caption run in the ledger with 2 model captions."""
    from ogiri import catalog
    from ogiri.ledger import BatchCaption, Ledger
    from ogiri_local.environment import load_deploy_stack

    found = stack({"EnvironmentName": "label", "BucketName": BUCKET, "TableName": TABLE,
                   "WorkteamArn": aws_workteam(aws)})
    for name, value in load_deploy_stack().ogiri_settings(found.outputs).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OGIRI_SAGEMAKER_POLL_SECONDS", "1")
    monkeypatch.setenv("AIRFLOW_CONN_OGIRI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "l.db")}))
    ledger = Ledger.from_connection()
    ledger.ensure_schema()
    s3, db = aws.client("s3"), aws.client("dynamodb")
    keys = []
    for i in range(4):
        body = _jpeg(i)
        sha = hashlib.sha256(body).hexdigest()
        s3.put_object(Bucket=BUCKET, Key=catalog.image_s3_key(sha), Body=body)
        caption = f"submitted caption {i}"
        db.put_item(TableName=TABLE, Item={
            catalog.IMAGE_KEY: {"S": sha}, catalog.CAPTION_ID: {"S": catalog.caption_id(caption)},
            catalog.CAPTION: {"S": caption}, catalog.INGEST_DATE: {"S": DAY},
            catalog.S3_URI: {"S": f"s3://{BUCKET}/{catalog.image_s3_key(sha)}"},
            catalog.WIDTH: {"N": "32"}, catalog.HEIGHT: {"N": "32"}})
        keys.append(sha)
    # as ogiri_batch_caption records them: image_key = the image's S3 key in the product bucket
    ledger.record_batch_captions([BatchCaption(image_key=catalog.image_s3_key(k), model_name="ogiri-captioner-1",
                                               caption=f"model caption {n}", score=-1.5 - n,
                                               job_name="ogiri-batch-t-set-0", run_key="ogiri_batch_caption:r")
                                  for n, k in enumerate(keys[:2])])
    return {"s3": s3, "db": db, "sm": aws.client("sagemaker"), "logs": aws.client("logs"), "ledger": ledger,
            "keys": keys}


def aws_workteam(aws) -> str:
    """The private work team the emulator serves (docs/interfaces.md)."""
    return "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/ogiri-local"


def _run(conf: dict):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "ogiri_label.py"))
    assert bag.import_errors == {}
    return bag.dags["ogiri_label"].test(logical_date=LOGICAL_DATE, run_after=LOGICAL_DATE, run_conf=conf)


def _summary(env, dr) -> dict:
    from ogiri.label import layout
    from ogiri.naming import run_key

    job = layout.job_name(run_key("ogiri_label", dr.run_id, dr.logical_date))
    return json.loads(env["s3"].get_object(Bucket=BUCKET, Key=layout.summary_key(job))["Body"].read())


def test_rate_job_with_a_noisy_oracle_then_a_rerun_re_attaches(workforce, label_env):
    from ogiri import catalog

    workforce(noise=0.5, seed=1)
    conf = {"task": "rate", "max_objects": 4, "audit_fraction": 0.5, "source_dates": [DAY], "workers_per_object": 3}
    dr = _run(conf)
    assert str(dr.state) == "success", {t.task_id: t.state for t in dr.get_task_instances()}
    summary = _summary(label_env, dr)
    assert summary["objects"] == {"in": 4, "labeled": 4, "rejected": 0, "expired": 0}
    assert summary["agreement"]["mean"] < 1
    assert sum(summary["ratings"]["fit"].values()) == 12 == sum(summary["per_worker"].values())
    assert 5 <= summary["time_per_task_s"]["median"] <= 60  # from Ground Truth's worker responses
    assert all(w.startswith("private.us-east-1.") for w in summary["per_worker"])
    report = label_env["s3"].list_objects_v2(Bucket=BUCKET, Prefix=f"labeling/{summary['job_name']}/report/")
    assert {o["Key"].rsplit("/", 1)[1] for o in report["Contents"]} == {
        "summary.json", "per_worker.svg", "ratings.svg", "agreement.svg", "time_per_task.svg"}
    rated = [i for i in catalog.scan_items(label_env["db"], TABLE) if catalog.RATING in i]
    assert len(rated) == 2 and all(1 <= i[catalog.RATING] <= 5 and i[catalog.RATING_COUNT] == 3 for i in rated)
    model = label_env["ledger"].latest_batch_captions()
    assert all(r["rating"] is not None and r["rating_job"] == summary["job_name"] for r in model)
    row = label_env["ledger"].get_labeling_job(summary["job_name"])
    assert (row["objects_in"], row["labeled"], row["status"]) == (4, 4, "Completed")
    # Ground Truth logged the job as the template's labeling role (its CloudWatch Logs grant)
    events = label_env["logs"].get_log_events(logGroupName="/aws/sagemaker/LabelingJobs",
                                              logStreamName=f"{summary['job_name']}/labeling")["events"]
    assert any("4 data objects" in e["message"] for e in events)

    again = _run(conf)  # the same run again: its job is found, none is created
    assert str(again.state) == "success"
    jobs = label_env["sm"].list_labeling_jobs()["LabelingJobSummaryList"]
    assert [j["LabelingJobName"] for j in jobs] == [summary["job_name"]]


def test_caption_job_abandoned_objects_expire_and_bad_answers_are_rejected(workforce, label_env):
    from ogiri import catalog

    keys = label_env["keys"]
    uri = {k: f"s3://{BUCKET}/{catalog.image_s3_key(k)}" for k in keys}
    workforce(answers={uri[keys[0]]: {"caption": "a cat that files taxes"},
                            uri[keys[1]]: {"caption": "x" * 400},
                            uri[keys[2]]: {"caption": ""},
                            uri[keys[3]]: []},  # nobody answers it: it expires
              noise=0.0, seed=2)
    dr = _run({"task": "caption", "max_objects": 10, "min_captions": 2, "source_dates": [DAY],
               "workers_per_object": 2, "task_availability_s": 60})
    assert str(dr.state) == "success", {t.task_id: t.state for t in dr.get_task_instances()}
    summary = _summary(label_env, dr)
    assert summary["objects"] == {"in": 4, "labeled": 1, "rejected": 2, "expired": 1}
    assert summary["rejects_by_reason"]["caption_too_long"] == 2
    assert summary["rejects_by_reason"]["empty_answer"] == 2
    human = [i for i in catalog.scan_items(label_env["db"], TABLE) if i.get(catalog.CAPTION_SOURCE) == "human"]
    assert [i[catalog.CAPTION] for i in human] == ["a cat that files taxes"]
    assert human[0][catalog.WORKER_COUNT] == 2 and len(human[0][catalog.WORKER_IDS]) == 2
    assert human[0][catalog.INGEST_DATE] == DAY and human[0][catalog.LABELING_JOB] == summary["job_name"]


def test_an_abandoned_job_records_every_object_as_expired(workforce, label_env):
    from ogiri import catalog

    workforce(abandonment=1.0, seed=3)  # no worker submits in time: every object expires
    dr = _run({"task": "rate", "max_objects": 3, "audit_fraction": 1.0, "source_dates": [DAY], "workers_per_object": 2})
    assert str(dr.state) == "success", {t.task_id: t.state for t in dr.get_task_instances()}
    summary = _summary(label_env, dr)
    assert summary["objects"] == {"in": 3, "labeled": 0, "rejected": 0, "expired": 3}
    assert summary["agreement"]["mean"] is None and summary["gallery"] == {"best": [], "worst": []}
    assert not [i for i in catalog.scan_items(label_env["db"], TABLE) if catalog.RATING in i]
    row = label_env["ledger"].get_labeling_job(summary["job_name"])
    assert (row["objects_in"], row["expired"], row["labeled"]) == (3, 3, 0)


def test_the_demo_hook_runs_a_rate_job_and_returns_its_summary(workforce, label_env, aws):
    from types import SimpleNamespace

    from ogiri_local.labeling_demo import NOISE, format_summary, run_rate_job

    env = SimpleNamespace(emulator=aws, settings={"OGIRI_BUCKET": BUCKET, "OGIRI_TABLE": TABLE})
    summary = run_rate_job(env, [datetime.fromisoformat(DAY).date()], max_objects=4)  # configures the workforce
    assert summary["task"] == "rate" and summary["objects"] == {"in": 4, "labeled": 4, "rejected": 0, "expired": 0}
    with urllib.request.urlopen(f"{aws.url}/_localaws/workforce", timeout=10) as r:
        config = json.load(r)["configs"][""]  # the default for every job, set by the hook
    assert (config["answers_by"], config["noise"]) == ("ogiri-id", NOISE) and len(config["answers"]) == 6
    assert len([v for v in summary["ratings"]["fit"].values() if v]) > 1  # the oracle, not a constant 1
    assert all(r["rating"] is not None for r in label_env["ledger"].latest_batch_captions())
    assert "labeled" in format_summary(summary)
