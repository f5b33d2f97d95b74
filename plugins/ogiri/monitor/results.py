"""Bodies of the ``ogiri_monitor`` tasks after the Processing job: the window's ledger row, its
CloudWatch metrics, the alert on a violation and the ``ogiri_drift`` event's extra.

Only scores, counts, feature names and URIs leave the job's report: never captured content.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from ogiri.aws import read_uri
from ogiri.runs import Run

log = logging.getLogger(__name__)

ALERT_BRANCH = "compose_alert"
METRIC_NAMESPACE = "Ogiri/Monitoring"
METRIC_NAME = "DriftScore"
#: CloudWatch takes data points up to two weeks old; an older (backfilled) window keeps its ledger row only.
METRIC_MAX_AGE = timedelta(days=14)
#: report.json statuses that are results (the job exits 0 for each).
REPORT_STATUSES = ("ok", "violation", "empty", "no_baseline")


def _fail(message: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(message)


def read_report(run: Run, found: dict[str, Any]) -> dict[str, Any]:
    """The window's ``report.json`` (through the configured AWS connection)."""
    from botocore.exceptions import ClientError

    from ogiri.aws import s3_missing

    try:
        report = json.loads(read_uri(run.client("s3"), found["report_uri"]))
    except ClientError as exc:
        if not s3_missing(exc):
            raise  # throttling, access, network: worth the task's retries
        _fail(f"the monitoring job {found['processing_job']} wrote no report at {found['report_uri']}")
    except ValueError as exc:  # not JSON: a retry would read the same bytes
        _fail(f"the monitoring report {found['report_uri']} is not JSON: {exc}")
    if report.get("status") not in REPORT_STATUSES:
        _fail(f"the monitoring report {found['report_uri']} has status {report.get('status')!r}")
    return report


def summarize(report: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    """What the later tasks need (XCom): status, counts, per-feature scores, the violated features."""
    features = report.get("features") or {}
    return {
        "endpoint_name": found["endpoint_name"],
        "model_name": report.get("model_name") or found["model_name"],
        "window": found["window"],
        "status": report["status"],
        "records": int(report.get("records") or 0),
        "bad_records": sum(int(v or 0) for v in (report.get("bad_records") or {}).values()),
        "scores": {name: f.get("value") for name, f in sorted(features.items())},
        "thresholds": {name: f.get("threshold") for name, f in sorted(features.items())},
        "violations": sorted(name for name, f in features.items() if f.get("violation")),
        "report_uri": found["report_uri"],
        "processing_job": found["processing_job"],
    }


def _write_row(run: Run, found: dict[str, Any], status: str, *, features: dict[str, Any] | None = None,
               summary: dict[str, Any] | None = None, processing_job: str | None = None,
               report_uri: str | None = None) -> None:
    from ogiri.ledger import MonitoringWindow

    summary = summary or {}
    run.ledger.record_monitoring_window(MonitoringWindow(
        endpoint_name=found["endpoint_name"], window_start=found["window"]["start"],
        window_end=found["window"]["end"], status=status, run_key=run.key,
        model_name=summary.get("model_name") or found["model_name"], records=summary.get("records", 0),
        bad_records=summary.get("bad_records", 0), scores=features or {},
        violations=summary.get("violations", []), report_uri=report_uri, processing_job=processing_job,
    ))


def record_window(run: Run, found: dict[str, Any]) -> dict[str, Any]:
    """Read ``report.json`` and write the window's ledger row (``no_baseline`` names the model)."""
    report = read_report(run, found)
    summary = summarize(report, found)
    _write_row(run, found, summary["status"], features=report.get("features") or {}, summary=summary,
               processing_job=found["processing_job"], report_uri=found["report_uri"])
    log.info("window %s of %s: %s, %d records (%d bad), violations %s", found["window"]["label"],
             found["endpoint_name"], summary["status"], summary["records"], summary["bad_records"],
             summary["violations"] or "none")
    if summary["status"] == "no_baseline":
        log.warning("model %s has no baseline.json: window %s recorded as no_baseline", summary["model_name"],
                    found["window"]["label"])
    return summary


def record_empty_window(run: Run, found: dict[str, Any] | None) -> str:
    """The ledger row of a window nothing was captured in (no Processing job runs); green."""
    if not found:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("no endpoint was resolved: nothing to record")
    _write_row(run, found, "empty")
    message = f"window {found['window']['label']} of {found['endpoint_name']}: nothing captured under " \
              f"{found['capture_uri']}"
    log.info("%s", message)
    return message


def record_failed_window(run: Run, found: dict[str, Any] | None) -> str:
    """The ledger row of a window whose check did not complete (the run stays failed)."""
    if not found:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("no endpoint was resolved: nothing to record")
    _write_row(run, found, "failed", processing_job=found["processing_job"])
    return f"window {found['window']['label']}: monitoring job {found['processing_job']} did not complete"


def publish_metrics(run: Run, summary: dict[str, Any]) -> int:
    """One ``Ogiri/Monitoring`` ``DriftScore`` per feature (dimensions EndpointName, Feature), timed at
    the window's start. Returns how many data points were sent."""
    start = datetime.fromisoformat(summary["window"]["start"])
    points = [
        {"MetricName": METRIC_NAME, "Timestamp": start, "Value": float(value), "Unit": "None",
         "Dimensions": [{"Name": "EndpointName", "Value": summary["endpoint_name"]},
                        {"Name": "Feature", "Value": feature}]}
        for feature, value in sorted(summary["scores"].items()) if value is not None
    ]
    if not points:
        return 0
    if datetime.now(UTC) - start > METRIC_MAX_AGE:  # validity only: CloudWatch would refuse the data
        log.warning("window %s is older than %s: CloudWatch takes no data points that old; ledger only",
                    summary["window"]["label"], METRIC_MAX_AGE)
        return 0
    cloudwatch = run.client("cloudwatch")
    for i in range(0, len(points), 500):  # PutMetricData takes at most 1000 metrics per call
        cloudwatch.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=points[i : i + 500])
    return len(points)


def check_violation(summary: dict[str, Any]) -> list[str]:
    """Branch: alert (``compose_alert``) on a violation; otherwise nothing more runs (green)."""
    return [ALERT_BRANCH] if summary["status"] == "violation" else []


def _num(value: Any) -> str:
    """A score or threshold for people: 3 decimals (``?`` when missing)."""
    return f"{value:.3f}" if isinstance(value, int | float) else "?"


def compose_alert(run: Run, summary: dict[str, Any]) -> dict[str, str]:
    """The SNS subject and message: endpoint, window, violated features with score and threshold, the
    report's URI. Fails at once when no topic is configured."""
    if not run.settings.alert_topic_arn:
        _fail("OGIRI_ALERT_TOPIC_ARN is not set: deploy infra/ogiri.yaml and use its AlertTopicArn output")
    lines = [
        f"Drift on endpoint {summary['endpoint_name']} (model {summary['model_name']})",
        f"Window: {summary['window']['start']} to {summary['window']['end']}",
        f"Records: {summary['records']} ({summary['bad_records']} unreadable)",
        "Violated features (score > threshold):",
        *[f"  {name}: {_num(summary['scores'].get(name))} > {_num(summary['thresholds'].get(name))}"
          for name in summary["violations"]],
        f"Report: {summary['report_uri']}",
    ]
    subject = f"Ogiri drift: {summary['endpoint_name']} {summary['window']['label']}"
    return {"topic_arn": run.settings.alert_topic_arn, "subject": subject[:100], "message": "\n".join(lines)}


def record_alert(run: Run, summary: dict[str, Any], published: dict[str, Any] | None) -> dict[str, Any]:
    """Attach the alert's SNS message id to the window's row; returns the ``ogiri_drift`` event extra."""
    message_id = (published or {}).get("MessageId")
    if message_id:
        run.ledger.set_monitoring_alert(summary["endpoint_name"], summary["window"]["start"], message_id)
    return drift_extra(summary)


def drift_extra(summary: dict[str, Any]) -> dict[str, Any]:
    """The ``ogiri_drift`` event's extra (docs/interfaces.md)."""
    return {"endpoint": summary["endpoint_name"], "window_start": summary["window"]["start"],
            "report_uri": summary["report_uri"], "violations": list(summary["violations"])}
