"""``ogiri_monitor`` end to end with ``dag.test()`` against the emulator (IAM enforced): the DAG runs as
the template's worker, the Processing job (``monitor.py``) as its execution role, against a real tiny
model trained by ``train.py`` (so its ``model.tar.gz`` carries ``baseline.json``).

Each run is a backfill of one past hour (``logical_date``). The endpoint really serves the model and
the emulator captures its traffic as SageMaker does (written as the execution role), with the capture
clock moved back so the records land in that past hour: the training images (in distribution),
darkened ones (shifted), or nothing (empty).
"""

from __future__ import annotations

import base64
import io
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "batch"))
from captioner_model import register_model, train_tiny_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUCKET = "ogiri-monitor-e2e"
MODEL = "ogiri-model-monitor-e2e"
CONF = {"max_images": 0}  # no DetectLabels: the emulator's labels are not the synthetic manifests' labels
#: Recent past hours (CloudWatch takes data points up to two weeks old), one per scenario.
NOW_HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
OK_RUN, SHIFTED_RUN, EMPTY_RUN = (NOW_HOUR - timedelta(hours=h) for h in (30, 20, 10))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("monitor-captioner"))


@pytest.fixture
def env(aws, stack, airflow_db, tiny_model, tmp_path, monkeypatch):
    """The stack deployed, the tiny model serving on the endpoint with data capture, the ledger on SQLite."""
    from ogiri.config import get_settings
    from ogiri_local.environment import load_deploy_stack

    found = stack({"EnvironmentName": "mon", "BucketName": BUCKET, "TableName": "ogiri-monitor-e2e"})
    for name, value in load_deploy_stack().ogiri_settings(found.outputs).items():
        monkeypatch.setenv(name, value)
    for name, value in {"OGIRI_SAGEMAKER_POLL_SECONDS": "1", "OGIRI_MONITOR_CAPTURE_TIMEOUT_S": "3",
                        "OGIRI_MONITOR_CAPTURE_POKE_S": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW_CONN_OGIRI_LEDGER",
                       json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")}))
    settings = get_settings()
    s3, sm = aws.client("s3"), aws.client("sagemaker")  # set-up as admin, as ogiri_train would deploy
    register_model(s3, sm, BUCKET, tiny_model["tarball"], MODEL, role=settings.sagemaker_role_arn)
    sm.create_endpoint_config(
        EndpointConfigName="ogiri-epc-monitor-e2e",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": MODEL, "InitialInstanceCount": 1,
                             "InstanceType": "ml.m5.large"}],
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 100,
                           "DestinationS3Uri": f"s3://{BUCKET}/capture",
                           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                           "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}})
    sm.create_endpoint(EndpointName=settings.endpoint_name, EndpointConfigName="ogiri-epc-monitor-e2e")
    return {"aws": aws, "s3": s3, "settings": settings, "topic": found.outputs["OgiriAlertTopicArn"]}


def load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "ogiri_monitor.py"))
    assert bag.import_errors == {}
    return bag.dags["ogiri_monitor"]


def train_images(tiny_model) -> list[bytes]:
    from ogiri_captioner.data import read_manifests

    paths = sorted({r.image for r in read_manifests(tiny_model["train"], tiny_model["images"])}, key=str)
    return [p.read_bytes() for p in paths]


def darkened(images: list[bytes]) -> list[bytes]:
    from PIL import Image, ImageEnhance

    out = []
    for raw in images:
        buf = io.BytesIO()
        ImageEnhance.Brightness(Image.open(io.BytesIO(raw)).convert("RGB")).enhance(0.25).save(buf, "JPEG")
        out.append(buf.getvalue())
    return out


def invoke_during(env, hour: datetime, images: list[bytes]) -> None:
    """Send ``images`` to the endpoint with the capture clock in ``hour`` (+5 min), then flush the capture."""
    import time

    sm, runtime = env["aws"].client("sagemaker"), env["aws"].client("sagemaker-runtime")
    endpoint = env["settings"].endpoint_name
    deadline = time.monotonic() + 300
    while sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] != "InService":
        assert time.monotonic() < deadline, "endpoint not InService"
        time.sleep(1)
    env["aws"].capture_clock((hour + timedelta(minutes=5) - datetime.now(UTC)).total_seconds())
    for raw in images:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="application/json",
                                Body=json.dumps({"image_b64": base64.b64encode(raw).decode()}))
    assert env["aws"].capture_flush()["dropped"] == 0
    env["aws"].capture_clock(0)


def capture(env, tiny_model, hour: datetime, images: list[bytes]) -> str:
    """One capture file of ``images`` answered by the model, under ``hour``'s prefix (SageMaker's layout)."""
    from PIL import Image

    from ogiri_captioner.artifacts import load_model_dir

    answers = load_model_dir(str(tiny_model["model_dir"])).caption(
        [Image.open(io.BytesIO(r)).convert("RGB") for r in images])
    lines = [json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": "image/jpeg", "mode": "INPUT",
                              "data": base64.b64encode(raw).decode(), "encoding": "BASE64"},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                               "data": json.dumps(answer), "encoding": "JSON"}},
        "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": f"{hour:%Y-%m-%dT%H}:05:00Z"},
        "eventVersion": "0"}) for raw, answer in zip(images, answers, strict=True)]
    key = f"capture/{env['settings'].endpoint_name}/AllTraffic/{hour:%Y/%m/%d/%H}/05-00-000-{uuid.uuid4()}.jsonl"
    env["s3"].put_object(Bucket=BUCKET, Key=key, Body=("\n".join(lines) + "\n").encode())
    return key


def states(dr) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


def rows(env) -> dict[str, dict]:
    from ogiri.ledger import Ledger

    return {r["window_start"]: r for r in Ledger.from_connection().monitoring_windows(env["settings"].endpoint_name)}


def drift_events() -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                                 .where(AssetModel.name == "ogiri_drift")).all()
        return [dict(e.extra) for e in events]


def test_in_distribution_shifted_and_empty_hours_backfilled(env, tiny_model):
    dag = load_dag()
    endpoint = env["settings"].endpoint_name
    images = train_images(tiny_model)
    invoke_during(env, OK_RUN - timedelta(hours=1), images)
    invoke_during(env, SHIFTED_RUN - timedelta(hours=1), darkened(images))
    capture(env, tiny_model, EMPTY_RUN, images)  # the hour *of* the empty run's logical date: not its window
    ok_prefix = f"capture/{endpoint}/AllTraffic/{OK_RUN - timedelta(hours=1):%Y/%m/%d/%H}/"
    assert env["s3"].list_objects_v2(Bucket=BUCKET, Prefix=ok_prefix)["KeyCount"] >= 1

    # 1. In distribution: ok, metrics, no alert, no drift event.
    dr = dag.test(logical_date=OK_RUN, run_conf=CONF)
    st = states(dr)
    assert dr.state == "success", st
    assert st["monitor_window"] == st["record_window"] == st["publish_metrics"] == "success"
    assert st["record_empty_window"] == st["compose_alert"] == st["publish_alert"] == st["record_alert"] == "skipped"
    ok_start = (OK_RUN - timedelta(hours=1)).isoformat()
    row = rows(env)[ok_start]
    assert row["status"] == "ok" and row["records"] == len(images) and row["model_name"] == MODEL, row
    assert row["violations"] == [] and row["scores"]["input_brightness"]["value"] < 0.25
    label = f"{OK_RUN - timedelta(hours=1):%Y-%m-%dT%H}"
    assert row["report_uri"] == f"s3://{BUCKET}/monitoring/{endpoint}/{label}/report.json"
    keys = {o["Key"] for o in env["s3"].list_objects_v2(Bucket=BUCKET, Prefix=f"monitoring/{endpoint}/{label}/")
            ["Contents"]}
    assert keys == {f"monitoring/{endpoint}/{label}/report.json",
                    f"monitoring/{endpoint}/{label}/constraint_violations.json"}
    assert env["aws"].sns_published(env["topic"]) == {env["topic"]: []}

    # 2. Shifted (darkened images): violation, SNS alert readable back, drift asset event.
    dr = dag.test(logical_date=SHIFTED_RUN, run_conf=CONF)
    st = states(dr)
    assert dr.state == "success", st
    assert st["publish_alert"] == st["record_alert"] == "success", st
    shifted_start = (SHIFTED_RUN - timedelta(hours=1)).isoformat()
    row = rows(env)[shifted_start]
    assert row["status"] == "violation" and "input_brightness" in row["violations"], row
    [message] = env["aws"].sns_published(env["topic"])[env["topic"]]
    assert row["alert_message_id"] == message["message_id"]
    assert message["subject"] == f"Ogiri drift: {endpoint} {SHIFTED_RUN - timedelta(hours=1):%Y-%m-%dT%H}"
    assert "input_brightness" in message["message"] and row["report_uri"] in message["message"]
    assert "base64" not in message["message"].lower() and len(message["message"]) < 2000  # no captured data
    assert drift_events() == [{"endpoint": endpoint, "window_start": shifted_start, "report_uri": row["report_uri"],
                               "violations": row["violations"]}]
    metrics = env["aws"].client("cloudwatch").list_metrics(Namespace="Ogiri/Monitoring", MetricName="DriftScore")
    features = {d["Value"] for m in metrics["Metrics"] for d in m["Dimensions"] if d["Name"] == "Feature"}
    assert "input_brightness" in features

    # 3. Empty hour: the sensor times out, the window is recorded empty, no job, the run stays green.
    dr = dag.test(logical_date=EMPTY_RUN, run_conf=CONF)
    st = states(dr)
    assert dr.state == "success", st
    assert st["wait_for_capture"] == "skipped" and st["record_empty_window"] == "success", st
    assert st["monitor_window"] == "skipped" and st["record_failed_window"] == "skipped"
    row = rows(env)[(EMPTY_RUN - timedelta(hours=1)).isoformat()]
    assert (row["status"], row["records"], row["processing_job"]) == ("empty", 0, None)
    jobs = env["aws"].client("sagemaker").list_processing_jobs()["ProcessingJobSummaries"]
    assert len(jobs) == 2  # one per non-empty window
    assert len(env["aws"].sns_published(env["topic"])[env["topic"]]) == 1

    # 4. The drift event retrains: an ogiri_train run that consumed it trains below min_new_images
    #    (only build_dataset runs here; every other task is marked success).
    drift_triggered_dataset(env)


def drift_triggered_dataset(env):
    from airflow.dag_processing.dagbag import DagBag

    from ogiri_local.drift import test_on_drift

    ddb = env["aws"].client("dynamodb")
    for i in range(60):
        key = f"{i:064x}"
        ddb.put_item(TableName=env["settings"].table, Item={
            "ImageKey": {"S": key}, "CaptionId": {"S": "c0"}, "Caption": {"S": f"caption {i}"},
            "S3Uri": {"S": f"s3://{BUCKET}/images/{key[:2]}/{key}.jpg"}, "Labels": {"L": []}})
    bag = DagBag(dag_folder=str(REPO / "dags" / "ogiri_train.py"))
    assert bag.import_errors == {}
    dr = test_on_drift(bag.dags["ogiri_train"], logical_date=NOW_HOUR, run_conf={"min_new_images": 1000},
                       mark_success_pattern=r"(?!build_dataset$).*")
    [ti] = [ti for ti in dr.get_task_instances() if ti.task_id == "build_dataset"]
    assert ti.state == "success"
    dataset = ti.xcom_pull(task_ids="build_dataset")
    assert dataset["triggered_by"] == "drift" and dataset["skip_reason"] is None, dataset
    assert dataset["new_images"] == 60  # below min_new_images=1000, and it trains
