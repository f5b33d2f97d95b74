"""The ``ogiri_monitor`` task bodies one by one (in-process moto, SQLite ledger): the window, the
serving model and capture prefix, the Processing request, the ledger row, metrics, the alert."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

BUCKET, ENDPOINT = "ogiri-monitor-unit", "ogiri-captioner"  # as tests/monitor/conftest.py

WINDOW_START = "2026-12-07T14:00:00+00:00"
FEATURES = {
    "input_brightness": {"metric": "psi", "value": 1.7, "threshold": 0.25, "violation": True, "psi": 1.7, "js": 0.3},
    "embedding": {"metric": "distance", "value": 0.9, "threshold": 0.25, "violation": True, "psi": None, "js": None},
    "output_score": {"metric": "psi", "value": 0.01, "threshold": 0.25, "violation": False, "psi": 0.01, "js": 0.0},
    "rekognition_labels": {"metric": "js", "value": None, "threshold": 0.1, "violation": False, "psi": None,
                           "js": None},
}


def run_at(logical_date: datetime | None = None, key: str = "ogiri_monitor:scheduled__x", **params):
    from ogiri.monitor import steps

    run = steps.run_for_key(key, **params)
    run.logical_date = logical_date or datetime(2026, 12, 7, 15, tzinfo=UTC)
    return run


def deploy(sm, capture: bool = True) -> None:
    sm.create_model(ModelName="ogiri-model-1", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/models/j1/output/model.tar.gz"})
    extra = {"DataCaptureConfig": {
        "EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": f"s3://{BUCKET}/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}} if capture else {}
    sm.create_endpoint_config(EndpointConfigName="ogiri-epc-1", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "ogiri-model-1", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}], **extra)
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="ogiri-epc-1")


def test_the_window_is_the_whole_hour_before_the_logical_date_or_the_named_hour():
    from ogiri.monitor.window import Window

    w = Window.for_run("ep", window_start=None, logical_date=datetime(2026, 12, 7, 15, tzinfo=UTC))
    assert w.as_dict() == {"start": WINDOW_START, "end": "2026-12-07T15:00:00+00:00", "label": "2026-12-07T14"}
    assert w.capture_prefix("s3://b/capture/", "AllTraffic") == "s3://b/capture/ep/AllTraffic/2026/12/07/14/"
    later = Window.for_run("ep", window_start=None, logical_date=datetime(2026, 12, 7, 15, 15, 30, tzinfo=UTC))
    assert later == w  # a cron firing at :15 still checks the previous whole hour
    tokyo = Window.for_run("ep", window_start=None, logical_date=datetime(2026, 12, 8, 0, 5,
                                                                          tzinfo=timezone(timedelta(hours=9))))
    assert tokyo.label == "2026-12-07T14"  # UTC hours
    assert Window.for_run("ep", window_start="2026-01-02T03", logical_date=None).label == "2026-01-02T03"
    assert Window.for_run("ep", window_start="2026-01-02T03:40:00+01:00", logical_date=None).label == "2026-01-02T02"
    manual = Window.for_run("ep", window_start=None, logical_date=None, run_after=datetime(2026, 5, 1, 9, 59,
                                                                                          tzinfo=UTC))
    assert manual.label == "2026-05-01T08"
    with pytest.raises(ValueError):
        Window.for_run("ep", window_start=None, logical_date=None)


def test_resolve_serving_model_names_the_model_variant_and_the_windows_capture_prefix(moto_env):
    from ogiri.monitor import steps

    deploy(moto_env["sm"])
    found = steps.resolve_serving_model(run_at())
    assert found["model_name"] == "ogiri-model-1"
    assert found["model_artifact"] == f"s3://{BUCKET}/models/j1/output/model.tar.gz"
    assert found["capture_uri"] == f"s3://{BUCKET}/capture/{ENDPOINT}/AllTraffic/2026/12/07/14/"
    assert found["capture_glob"] == found["capture_uri"] + "*" and found["capture_enabled"] is True
    assert found["report_uri"] == f"s3://{BUCKET}/monitoring/{ENDPOINT}/2026-12-07T14/report.json"
    assert found["window"]["start"] == WINDOW_START
    again = steps.resolve_serving_model(run_at())
    assert again["processing_job"] == found["processing_job"]  # a retry re-attaches to the same job
    other = steps.resolve_serving_model(run_at(key="ogiri_monitor:scheduled__y"))
    assert other["processing_job"] != found["processing_job"]
    json.dumps(found)  # XCom-safe


def test_no_endpoint_skips_and_the_empty_and_failed_recorders_skip_too(moto_env):
    from airflow.sdk.exceptions import AirflowSkipException

    from ogiri.monitor import results, steps

    with pytest.raises(AirflowSkipException, match="does not exist"):
        steps.resolve_serving_model(run_at())
    with pytest.raises(AirflowSkipException):
        results.record_empty_window(run_at(), None)
    with pytest.raises(AirflowSkipException):
        results.record_failed_window(run_at(), None)


def test_the_processing_request_runs_monitor_py_on_the_window_and_the_serving_model(moto_env):
    from ogiri.monitor import steps

    deploy(moto_env["sm"])
    run = run_at(psi_threshold=0.3, max_images=5)
    found = steps.resolve_serving_model(run)
    source = steps.package_code(run)
    assert source["files_uri"].startswith(f"s3://{BUCKET}/code/")
    request = steps.configure_monitoring(run, found, source)
    assert request["ProcessingJobName"] == found["processing_job"] and len(request["ProcessingJobName"]) <= 63
    assert request["RoleArn"] == run.settings.sagemaker_role_arn
    app = request["AppSpecification"]
    assert "pytorch-training" in app["ImageUri"] and "/opt/ml/processing/input/code/monitor.py" in app["ContainerEntrypoint"][2]
    args = app["ContainerArguments"]
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs == {"--capture": "/opt/ml/processing/capture", "--model": "/opt/ml/processing/model",
                     "--output": "/opt/ml/processing/report", "--endpoint": ENDPOINT,
                     "--window-start": WINDOW_START, "--window-end": "2026-12-07T15:00:00+00:00",
                     "--model-name": "ogiri-model-1", "--max-images": "5", "--psi-threshold": "0.3",
                     "--js-threshold": "0.1"}  # no --distance-threshold: monitor.py's default
    inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
    assert inputs["capture"]["S3Uri"] == found["capture_uri"] and inputs["model"]["S3Uri"] == found["model_artifact"]
    assert inputs["code"]["S3Uri"] == source["files_uri"]
    [output] = request["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["S3Uri"] == f"s3://{BUCKET}/monitoring/{ENDPOINT}/2026-12-07T14/"
    assert run.params["endpoint_name"] == ENDPOINT  # from OGIRI_ENDPOINT_NAME


def _report(s3, found, status="violation", features=FEATURES):
    report = {"endpoint": ENDPOINT, "model_name": "ogiri-model-1", "window": {"start": WINDOW_START, "end": "x"},
              "status": status, "records": 40, "bad_records": {"invalid_json": 1, "undecodable": 2,
                                                              "unsupported_content_type": 0},
              "features": features if status in ("ok", "violation") else {}, "thresholds": {}}
    s3.put_object(Bucket=BUCKET, Key=found["report_uri"].split(f"{BUCKET}/", 1)[1], Body=json.dumps(report))


def test_a_violation_is_recorded_published_alerted_and_becomes_the_drift_extra(moto_env):
    from ogiri.monitor import results, steps

    deploy(moto_env["sm"])
    run = run_at(logical_date=datetime.now(UTC))  # recent: CloudWatch takes the data points
    found = steps.resolve_serving_model(run)
    _report(moto_env["s3"], found)
    summary = results.record_window(run, found)
    assert summary["status"] == "violation" and summary["violations"] == ["embedding", "input_brightness"]
    assert (summary["records"], summary["bad_records"]) == (40, 3)
    json.dumps(summary)
    [row] = run.ledger.monitoring_windows(ENDPOINT)
    assert row["status"] == "violation" and row["scores"] == FEATURES and row["model_name"] == "ogiri-model-1"
    assert row["violations"] == ["embedding", "input_brightness"] and row["processing_job"] == found["processing_job"]

    assert results.publish_metrics(run, summary) == 3  # rekognition_labels has no value
    metrics = moto_env["cloudwatch"].list_metrics(Namespace="Ogiri/Monitoring", MetricName="DriftScore")["Metrics"]
    dims = sorted(tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in metrics)
    assert dims == [(("EndpointName", ENDPOINT), ("Feature", f)) for f in ("embedding", "input_brightness",
                                                                             "output_score")]

    assert results.check_violation(summary) == ["compose_alert"]
    alert = results.compose_alert(run, summary)
    assert alert["topic_arn"] == moto_env["topic"]
    assert alert["subject"] == f"Ogiri drift: {ENDPOINT} {found['window']['label']}"
    assert "input_brightness: 1.700 > 0.250" in alert["message"] and "embedding: 0.900 > 0.250" in alert["message"]
    assert found["report_uri"] in alert["message"] and "output_score" not in alert["message"]
    extra = results.record_alert(run, summary, {"MessageId": "m-1"})
    assert extra == {"endpoint": ENDPOINT, "window_start": found["window"]["start"], "report_uri": found["report_uri"],
                     "violations": ["embedding", "input_brightness"]}
    assert run.ledger.monitoring_windows(ENDPOINT)[0]["alert_message_id"] == "m-1"
    results.record_window(run, found)  # a rerun of the window overwrites it: one row, alert cleared
    [row] = run.ledger.monitoring_windows(ENDPOINT)
    assert row["alert_message_id"] is None


def test_ok_no_baseline_empty_and_old_windows(moto_env):
    from airflow.sdk.exceptions import AirflowFailException

    from ogiri.monitor import results, steps

    deploy(moto_env["sm"])
    old = run_at(logical_date=datetime(2026, 1, 10, 15, tzinfo=UTC))
    found = steps.resolve_serving_model(old)
    with pytest.raises(AirflowFailException, match="wrote no report"):
        results.record_window(old, found)
    _report(moto_env["s3"], found, "ok", {k: {**v, "violation": False} for k, v in FEATURES.items()})
    summary = results.record_window(old, found)
    assert summary["status"] == "ok" and results.check_violation(summary) == []
    # A backfilled window older than two weeks keeps its row; CloudWatch would refuse the data points.
    assert results.publish_metrics(old, summary) == 0
    assert moto_env["cloudwatch"].list_metrics(Namespace="Ogiri/Monitoring")["Metrics"] == []

    run = run_at()
    found = steps.resolve_serving_model(run)
    _report(moto_env["s3"], found, "no_baseline")
    summary = results.record_window(run, found)
    assert summary["status"] == "no_baseline" and results.check_violation(summary) == []
    assert "window 2026-12-07T13" in results.record_empty_window(run_at(logical_date=datetime(2026, 12, 7, 14,
                                                                                            tzinfo=UTC)), {
        **found, "window": {"start": "2026-12-07T13:00:00+00:00", "end": "2026-12-07T14:00:00+00:00",
                            "label": "2026-12-07T13"}})
    rows = {r["window_start"]: r for r in run.ledger.monitoring_windows(ENDPOINT)}
    assert [rows[k]["status"] for k in sorted(rows)] == ["ok", "empty", "no_baseline"]
    assert rows[WINDOW_START]["model_name"] == "ogiri-model-1"  # no_baseline names the model
    empty = rows["2026-12-07T13:00:00+00:00"]
    assert (empty["records"], empty["processing_job"], empty["scores"], empty["violations"]) == (0, None, {}, [])
    _report(moto_env["s3"], found, "bogus")
    with pytest.raises(AirflowFailException, match="status 'bogus'"):
        results.record_window(run, found)


def test_no_topic_fails_the_alert_clearly(moto_env, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from ogiri.monitor import results

    monkeypatch.setenv("OGIRI_ALERT_TOPIC_ARN", "")
    summary = {"status": "violation", "violations": [], "endpoint_name": ENDPOINT, "model_name": "m",
               "window": {"start": WINDOW_START, "end": "e", "label": "l"}, "records": 1, "bad_records": 0,
               "scores": {}, "thresholds": {}, "report_uri": "s3://b/r"}
    with pytest.raises(AirflowFailException, match="OGIRI_ALERT_TOPIC_ARN"):
        results.compose_alert(run_at(), summary)


def test_a_backfilled_window_is_compared_with_the_model_that_served_it(moto_env):
    from ogiri.ledger import Deployment
    from ogiri.monitor import steps

    deploy(moto_env["sm"])  # ogiri-model-1 serves now
    sm = moto_env["sm"]
    sm.create_model(ModelName="ogiri-model-0", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/models/j0/output/model.tar.gz"})
    run = run_at()
    # The ledger: ogiri-model-0 was deployed (deployed_at = when recorded, i.e. now).
    run.ledger.record_deployment(Deployment(run_key="ogiri_train:r0", endpoint_name=ENDPOINT, action="create",
                                            status="succeeded", model_name="ogiri-model-0"))
    # A window that ended before that deployment: no champion known then, the endpoint's model.
    assert steps.resolve_serving_model(run)["model_name"] == "ogiri-model-1"
    # A window ending after it (ogiri-model-1 replaced it without a ledger row): the model of that time.
    later = run_at(logical_date=datetime.now(UTC) + timedelta(hours=3))
    found = steps.resolve_serving_model(later)
    assert (found["model_name"], found["model_artifact"]) == (
        "ogiri-model-0", f"s3://{BUCKET}/models/j0/output/model.tar.gz")
    run.ledger.record_deployment(Deployment(run_key="ogiri_train:r1", endpoint_name=ENDPOINT, action="update",
                                            status="succeeded", model_name="ogiri-model-1",
                                            model_artifact=f"s3://{BUCKET}/models/j1/output/model.tar.gz"))
    assert steps.resolve_serving_model(later)["model_name"] == "ogiri-model-1"
