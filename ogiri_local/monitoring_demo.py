"""``make demo``'s monitoring part: endpoint traffic in two past hours, ``ogiri_monitor`` on both
windows, the alert read back from SNS, and the retraining the drift triggers.

1. the emulator's capture clock is moved two hours back and the endpoint answers an
   in-distribution batch (images of the training set); then one hour back and a shifted batch (the
   same kind of scenes drawn in another palette, ``synthetic.SHIFTED_COLOURS``); the clock goes back
   to now. Each batch is captured (100 % sampling) under its own hour, as on SageMaker;
2. ``ogiri_monitor`` runs once per hour window, as a backfill of that hour would (logical date =
   the window's end): the first window passes, the second raises a violation, an SNS alert and an
   ``ogiri_drift`` asset event;
3. that event queues ``ogiri_train`` (an asset-condition schedule: captions or drift); the demo
   shows the queued entry and runs the queued run with ``dag.test()`` consuming the event
   (``ogiri_local.drift.test_on_drift``): it trains below ``min_new_images`` and says ``drift``.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

DAG_MONITOR, DAG_TRAIN = "ogiri_monitor", "ogiri_train"
#: Requests per window: enough for every feature's histogram (the embedding needs 16).
BATCH = 60


def in_distribution_images(env, n: int = BATCH) -> list[bytes]:
    """``n`` images of the synthetic training set (what the model was trained on)."""
    paths = sorted((env.dataset["root"] / "images").rglob("*.jpg"))
    return [p.read_bytes() for p in paths[:n]]


def shifted_images(n: int = BATCH, seed: int = 7) -> list[bytes]:
    """``n`` new scenes of the same kinds, drawn in another palette (a colour shift)."""
    from ogiri_captioner import synthetic

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        image = synthetic.render(synthetic.random_scene(rng), rng, palette=synthetic.SHIFTED_COLOURS)
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def send_traffic(env, endpoint: str, images: list[bytes], hours_ago: int) -> int:
    """Invoke the endpoint once per image with the capture clock ``hours_ago`` hours back; flush the
    capture buffers and set the clock back to now. Returns the answered requests."""
    runtime = env.emulator.client("sagemaker-runtime")
    env.emulator.capture_clock(-3600 * hours_ago)
    answered = 0
    try:
        for body in images:
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType="application/x-image",
                                    Accept="application/json", Body=body)
            answered += 1
        env.emulator.capture_flush()
    finally:
        env.emulator.capture_clock(0)
    return answered


def window_start(now: datetime, hours_ago: int) -> datetime:
    """The UTC hour that began ``hours_ago`` hours before ``now``'s hour."""
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours_ago)


def set_paused(dag_id: str, paused: bool) -> None:
    """Pause or unpause a DAG in the metadata DB (what the UI's toggle does)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        model = session.get(DagModel, dag_id)
        if model is None:
            raise LookupError(f"{dag_id} is not in the metadata DB yet")
        model.is_paused = paused


def queued_for(dag_id: str) -> list[str]:
    """The asset events queued for ``dag_id`` (AssetDagRunQueue): what the scheduler turns into a run."""
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(AssetModel.name).join(AssetDagRunQueue, AssetDagRunQueue.asset_id == AssetModel.id)
                               .where(AssetDagRunQueue.target_dag_id == dag_id)).all()
    return sorted(name for (name,) in rows)


def run_monitoring(env, endpoint: str, run_dag: Callable[..., dict]) -> list[datetime]:
    """Traffic in two past hours, then ``ogiri_monitor`` for each hour. Returns the window starts."""
    from ogiri_local.demo import banner

    now = datetime.now(UTC)  # the demo's choice of hours, not pipeline logic
    batches = [("in-distribution", in_distribution_images(env), 2), ("shifted palette", shifted_images(), 1)]
    for name, images, hours_ago in batches:
        answered = send_traffic(env, endpoint, images, hours_ago)
        print(f"{name}: {answered} requests captured in the hour of {window_start(now, hours_ago):%Y-%m-%d %H:00} UTC")
    set_paused(DAG_TRAIN, False)  # a consumer must be unpaused when the event arrives (README: make up)
    starts = [window_start(now, hours_ago) for _, _, hours_ago in batches]
    for start in starts:
        banner(f"ogiri_monitor for the window {start:%Y-%m-%d %H:00}-{start + timedelta(hours=1):%H:00} UTC (backfill)")
        run_dag(DAG_MONITOR, logical_date=start + timedelta(hours=1))
    return starts


def run_drift_retraining(train_conf: dict) -> dict:
    """The ``ogiri_train`` run queued by the drift event, run with ``dag.test()`` consuming it."""
    from airflow.dag_processing.dagbag import DagBag

    from ogiri_local.drift import test_on_drift
    from ogiri_local.emulator import REPO

    queued = queued_for(DAG_TRAIN)
    print(f"queued for {DAG_TRAIN} by the scheduler's asset queue: {queued}")
    if "ogiri_drift" not in queued:
        raise SystemExit("ogiri_monitor raised a violation but no ogiri_drift event was queued for ogiri_train")
    dag = DagBag(dag_folder=str(REPO / "dags" / f"{DAG_TRAIN}.py")).dags[DAG_TRAIN]
    run = test_on_drift(dag, run_conf=train_conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    print(f"\n{DAG_TRAIN} run {run.run_id} (consumed ogiri_drift): {run.state}")
    for task_id, state in sorted(states.items()):
        print(f"  {task_id:32} {state}")
    if str(run.state) != "success":
        raise SystemExit(f"the drift-triggered {DAG_TRAIN} run ended {run.state}; see the task logs above")
    return {"run_id": run.run_id, "tasks": states}


def _message_text(message: str) -> str:
    """The text of an SNS message; a ``MessageStructure=json`` message shows its ``default``."""
    try:
        parsed = json.loads(message)
    except ValueError:
        return message
    return parsed.get("default", message) if isinstance(parsed, dict) else message


def print_summary(env, endpoint: str, starts: list[datetime], retrain: dict) -> None:
    """Drift scores of both windows, the violation, the SNS alert and the drift-triggered run."""
    from ogiri.ledger import Ledger
    from ogiri.naming import run_key
    from ogiri.train.configs import RunNames

    ledger = Ledger.from_connection()
    rows = {row["window_start"]: row for row in ledger.monitoring_windows(endpoint)}
    print("Drift monitoring (ogiri_monitor, one row per hour window; * = over its threshold):")
    for start in starts:
        row = rows.get(start.isoformat())
        if row is None:
            print(f"  {start:%Y-%m-%d %H:00}: no ledger row")
            continue
        print(f"  {start:%Y-%m-%d %H:00}: {row['status']:10} records {row['records']:>3}  bad {row['bad_records']}"
              f"  model {row['model_name']}")
        for feature, score in sorted((row.get("scores") or {}).items()):
            if score.get("value") is None:
                continue
            mark = "*" if score.get("violation") else " "
            print(f"     {mark} {feature:24} {score['metric']:8} {score['value']:8.3f}  (threshold {score['threshold']})")
    topic = env.settings.get("OGIRI_ALERT_TOPIC_ARN")
    for message in env.emulator.sns_published(topic).get(topic, []):
        print(f"SNS alert on {topic.rsplit(':', 1)[-1]}: {message['subject']}")
        for line in _message_text(message["message"]).splitlines():
            print(f"    {line}")
    names = RunNames.for_run(run_key(DAG_TRAIN, retrain["run_id"]))
    print(f"Drift-triggered {DAG_TRAIN} run {retrain['run_id']}:")
    for job in names.candidate_jobs(1):
        run = ledger.get_training_run(job) or {}
        print(f"  {job}: triggered_by={run.get('triggered_by')} status={run.get('status')} "
              f"dataset={run.get('dataset_version')}")
    evaluation = ledger.latest_evaluation_for_run(run_key(DAG_TRAIN, retrain["run_id"])) or {}
    print(f"  gate: {evaluation.get('decision')} ({evaluation.get('reason')})")
