"""The work of each ``ogiri_label`` task, on a :class:`~ogiri.runs.Run` (the DAG file only wires them).

``select_objects`` → ``write_manifest`` (manifest, template, request) → the labeling job operator →
``ingest_labels`` → ``write_report`` → ``record_labeling``. Data flows through S3 under
``labeling/<job>/``; XCom carries the job name, the request and counts (never worker answers).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from ogiri.aws import get_if_exists, read_object
from ogiri.label import layout
from ogiri.label.answers import counts, judge_all, outcome_from_dict, parse_output_manifest
from ogiri.label.ingest import store_outcomes
from ogiri.label.params import SETTING_DEFAULTS, form_defaults
from ogiri.label.report import pictures, summarize, task_times
from ogiri.label.request import labeling_request, manifest_body, worker_template
from ogiri.label.selection import Choice, check_dates, select
from ogiri.runs import InvalidParam, Run

log = logging.getLogger(__name__)
#: The template's outputs a labeling job needs (``Settings`` attribute → environment variable).
REQUIRED_SETTINGS = {"workteam_arn": "OGIRI_WORKTEAM_ARN", "labeling_role_arn": "OGIRI_LABELING_ROLE_ARN",
                     "labeling_pre_lambda_arn": "OGIRI_LABELING_PRE_LAMBDA_ARN",
                     "labeling_consolidation_lambda_arn": "OGIRI_LABELING_CONSOLIDATION_LAMBDA_ARN"}


def run_for(context: Mapping[str, Any] | None = None) -> Run:
    """The task's run, its params completed with the form's defaults."""
    run = Run.from_context(context, defaults=SETTING_DEFAULTS, names=layout.job_name)
    run.params = form_defaults(**run.params)
    return run


def _jsonl(rows: Any) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")


def _lines(body: bytes | None) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (body or b"").decode("utf-8").splitlines() if line.strip()]


def choice_of(run: Run) -> Choice:
    """The run's selection choices; an empty ``source_dates`` means the ``lookback_days`` days before the
    run's date (its partition date and the days before it)."""
    p = run.params
    last = run.partition_date()
    default = [(date.fromisoformat(last) - timedelta(days=n)).isoformat()
               for n in range(int(p["lookback_days"]))] if last else []
    try:
        dates = check_dates(p.get("source_dates") or default)
    except ValueError as exc:
        raise InvalidParam("source_dates", p.get("source_dates"), str(exc)) from exc
    if p["task"] not in ("caption", "rate"):
        raise InvalidParam("task", p["task"], "must be caption or rate")
    return Choice(task=p["task"], max_objects=int(p["max_objects"]), dates=dates,
                  min_captions=int(p["min_captions"]), audit_fraction=float(p["audit_fraction"]))


def select_objects(run: Run) -> dict[str, Any]:
    """Select the data objects and write ``objects.jsonl``; skip the run when there are none."""
    choice, job = choice_of(run), run.names
    batch_rows = run.ledger.latest_batch_captions() if choice.task == "rate" else []
    objects = select(choice, dynamodb=run.client("dynamodb"), table=run.settings.table, bucket=run.settings.bucket,
                     run_key=run.key, batch_rows=batch_rows)
    origins = {o: sum(x.get("origin") == o for x in objects) for o in ("batch", "audit")}
    log.info("labeling job %s (%s): %d objects selected from dates %s %s", job, choice.task, len(objects),
             list(choice.dates), origins if choice.task == "rate" else "")
    if not objects:
        raise AirflowSkipException(f"nothing to {choice.task} for dates {list(choice.dates)}: no labeling job")
    run.client("s3").put_object(Bucket=run.settings.bucket, Key=layout.objects_key(job), Body=_jsonl(objects),
                                ContentType="application/jsonlines")
    return {"job_name": job, "task": choice.task, "objects": len(objects)}


def write_manifest(run: Run, selected: Mapping[str, Any]) -> dict[str, Any]:
    """Write the input manifest and the worker template; return the ``CreateLabelingJob`` request."""
    missing = [env for attr, env in REQUIRED_SETTINGS.items() if not getattr(run.settings, attr)]
    if missing:
        raise AirflowFailException(f"labeling needs {', '.join(missing)} (the template's outputs); not set")
    job, s3, bucket = selected["job_name"], run.client("s3"), run.settings.bucket
    objects = _lines(read_object(s3, bucket, layout.objects_key(job)))
    s3.put_object(Bucket=bucket, Key=layout.manifest_key(job), Body=manifest_body(objects),
                  ContentType="application/jsonlines")
    template = worker_template(selected["task"], max_caption_chars=run.settings.max_caption_chars)
    s3.put_object(Bucket=bucket, Key=layout.template_key(job), Body=template.encode("utf-8"), ContentType="text/html")
    p = run.params
    return labeling_request(job=job, task=selected["task"], bucket=bucket, run_key=run.key,
                            workers_per_object=p["workers_per_object"], task_time_limit_s=p["task_time_limit_s"],
                            task_availability_s=p["task_availability_s"], settings=run.settings)


def ingest_labels(run: Run, job_result: Mapping[str, Any]) -> dict[str, Any]:
    """Judge every object's answers, write labels, rejects and the caption table; check the accounting."""
    description = job_result["LabelingJob"]
    job, s3, bucket = description["LabelingJobName"], run.client("s3"), run.settings.bucket
    objects = _lines(read_object(s3, bucket, layout.objects_key(job)))
    lines = parse_output_manifest(get_if_exists(s3, bucket, layout.output_manifest_key(job)))
    if set(lines) - {str(o["id"]) for o in objects}:
        raise AirflowFailException(f"labeling job {job}: the output names objects that were not sent")
    outcomes = judge_all(objects, lines, max_caption_chars=run.settings.max_caption_chars)
    written = store_outcomes(outcomes, dynamodb=run.client("dynamodb"), table=run.settings.table, ledger=run.ledger,
                             job=job, run_key=run.key, bucket=bucket)
    tally = counts(outcomes)  # objects in = labeled + rejected + expired, or it raises
    if tally["in"] != len(objects):
        raise AirflowFailException(f"labeling job {job}: {tally['in']} outcomes for {len(objects)} objects sent")
    s3.put_object(Bucket=bucket, Key=layout.labels_key(job), Body=_jsonl(o.to_dict() for o in outcomes),
                  ContentType="application/jsonlines")
    s3.put_object(Bucket=bucket, Key=layout.rejects_key(job), Body=_jsonl(r for o in outcomes for r in o.rejects),
                  ContentType="application/jsonlines")
    log.info("labeling job %s %s: objects %s; %s", job, description["LabelingJobStatus"], tally, written)
    return {"job_name": job, "task": objects[0]["task"] if objects else run.params["task"],
            "status": description["LabelingJobStatus"], "objects": tally, "written": written}


def _worker_responses(s3: Any, bucket: str, job: str) -> list[dict[str, Any]]:
    docs = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=layout.worker_response_prefix(job)):
        for entry in page.get("Contents", []):
            try:
                docs.append(json.loads(read_object(s3, bucket, entry["Key"])))
            except ValueError:
                log.warning("unreadable worker response %s: left out of the times", entry["Key"])
    return docs


def write_report(run: Run, ingested: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``report/summary.json`` and its pictures; returns the summary's counts and URI."""
    job, s3, bucket = ingested["job_name"], run.client("s3"), run.settings.bucket
    rejects: dict[str, list[dict[str, Any]]] = {}
    for r in _lines(read_object(s3, bucket, layout.rejects_key(job))):
        rejects.setdefault(r["id"], []).append(r)
    outcomes = [outcome_from_dict(line, rejects.get(line["id"], []))
                for line in _lines(read_object(s3, bucket, layout.labels_key(job)))]
    summary = summarize(job=job, task=ingested["task"], status=ingested["status"], outcomes=outcomes,
                        objects=counts(outcomes), times=task_times(_worker_responses(s3, bucket, job)))
    s3.put_object(Bucket=bucket, Key=layout.summary_key(job), ContentType="application/json",
                  Body=json.dumps(summary, ensure_ascii=False, indent=2).encode("utf-8"))
    for name, body in pictures(summary).items():
        s3.put_object(Bucket=bucket, Key=layout.report_prefix(job) + name, Body=body.encode("utf-8"),
                      ContentType="image/svg+xml")
    uri = run.settings.s3_uri(layout.summary_key(job))
    log.info("labeling report %s: objects %s, mean agreement %s, rejects %s", uri, summary["objects"],
             summary["agreement"]["mean"], summary["rejects_by_reason"])
    return {"job_name": job, "task": summary["task"], "status": summary["status"], "objects": summary["objects"],
            "mean_agreement": summary["agreement"]["mean"], "report_uri": uri}


def record_labeling(run: Run, report: Mapping[str, Any]) -> dict[str, Any]:
    """Upsert the run's ``labeling_jobs`` row; returns the captions Asset event's ``extra``."""
    from ogiri.ledger import LabelingJob

    objects = report["objects"]
    run.ledger.record_labeling_job(LabelingJob(
        job_name=report["job_name"], task_type=report["task"], status=report["status"], run_key=run.key,
        objects_in=objects["in"], labeled=objects["labeled"], rejected=objects["rejected"],
        expired=objects["expired"], workers_per_object=int(run.params["workers_per_object"]),
        mean_agreement=report["mean_agreement"], report_uri=report["report_uri"]))
    return {"bucket": run.settings.bucket, "run_key": run.key, "labeling_job": report["job_name"],
            "task": report["task"], "labeled": objects["labeled"]}
