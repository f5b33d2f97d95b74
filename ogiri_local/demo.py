"""``make demo``: the whole product on this machine, end to end, with no AWS account.

1. start the emulator and deploy ``infra/ogiri.yaml`` into it (bucket, table, roles);
2. generate the synthetic captioned image set and serve it on a loopback HTTP server;
3. land one CSV per day for the three days before today (plus a few hostile rows);
4. run ``ogiri_ingest`` as a backfill of those three dates;
5. run ``ogiri_train`` with two candidates (an LSTM and a Transformer decoder: two real training jobs,
   one evaluation of both and the champion, the gate picks the winner, endpoint deploy + smoke test);
6. run ``ogiri_train`` again, a forced update deployed as a canary (guarded blue/green update with
   auto-rollback alarms) while requests keep coming, and print how the traffic shifted;
7. run ``ogiri_batch_caption`` over the ingested images with the new champion;
8. send the endpoint an in-distribution batch and a shifted one in two past hours, run
   ``ogiri_monitor`` on both windows (the first passes, the second raises a violation, an SNS alert
   and the ``ogiri_drift`` event), then the ``ogiri_train`` run that event queued
   (``ogiri_local.monitoring_demo``);
9. run one ``ogiri_label`` ``rate`` job over the batch captions (``ogiri_local.labeling_demo``);
10. print a summary, and stop every process it started.

Everything lives under ``.local/demo/`` (recreated on each run). The DAGs run with ``dag.test()``
in this process, so their task logs stream to the terminal as they run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ogiri_local.emulator import REPO

ROOT = REPO / ".local" / "demo"

#: Rows that must be rejected, each for its own reason (shown in the summary).
HOSTILE_ROWS = [
    ("http://169.254.169.254/latest/meta-data/", "メタデータを盗む"),
    ("ftp://example.com/cat.jpg", "FTPの猫"),
    ("file:///etc/passwd", "パスワード"),
    ("{images}/images/does-not-exist.jpg", "存在しない画像"),
    ("{images}/images/00/not-a-caption.jpg", ""),
]


def banner(text: str) -> None:
    """A visible step header in the demo's output."""
    print(f"\n{'=' * 78}\n== {text}\n{'=' * 78}", flush=True)


def _prepare_process_env(airflow_home: Path) -> None:
    os.environ.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # Local runs poll the emulator every second, not every 30 s as on AWS.
            "OGIRI_SAGEMAKER_POLL_SECONDS": "1",
            "OGIRI_LANDING_POKE_S": "2",
            "OGIRI_LANDING_TIMEOUT_S": "60",
            "OGIRI_LANDING_DEFERRABLE": "false",
            "OGIRI_REKOGNITION_TPS": "50",
            "OGIRI_MIN_NEW_IMAGES": "1",
            "OGIRI_TRAINING_INSTANCE_TYPE": "ml.m5.xlarge",
            "OGIRI_ENDPOINT_INSTANCE_TYPE": "ml.m5.large",
            # Guarded updates bake 8 s per step locally (the drift-triggered run's update), not 300.
            "OGIRI_DEPLOY_WAIT_INTERVAL_S": "8",
        }
    )
    for path in (str(REPO / "plugins"), str(REPO)):
        if path not in sys.path:
            sys.path.insert(0, path)


def _land_csvs(env, dates: list[date]) -> dict[str, int]:
    """Split the synthetic set across ``dates`` and upload one CSV per date; return rows per date."""
    rows = env.synthetic_rows(ROOT / "all.csv")
    bucket = env.settings["OGIRI_BUCKET"]
    counts = {}
    for i, day in enumerate(dates):
        part = rows[i :: len(dates)]
        if i == len(dates) - 1:  # the last day also brings hostile rows, to show the quarantine
            part += [[url.format(images=env.images.base_url), cap] for url, cap in HOSTILE_ROWS]
        key = env.land(day, part)
        counts[day.isoformat()] = len(part)
        print(f"landed s3://{bucket}/{key}: {len(part)} rows", flush=True)
    return counts


def _run_dag(dag_id: str, *, logical_date: datetime | None = None, conf: dict | None = None) -> dict:
    """``dag.test()`` one run; return its state and task states (raises if the run failed)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / f"{dag_id}.py"))
    if bag.import_errors:
        raise SystemExit(f"{dag_id} does not import: {bag.import_errors}")
    dag = bag.dags[dag_id]
    started = time.monotonic()
    dag_run = dag.test(logical_date=logical_date, run_conf=conf or {})
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    elapsed = time.monotonic() - started
    print(f"\n{dag_id} run {dag_run.run_id}: {dag_run.state} in {elapsed:.0f} s", flush=True)
    for task_id, state in sorted(states.items()):
        print(f"  {task_id:32} {state}")
    if str(dag_run.state) != "success":
        raise SystemExit(f"{dag_id} ended {dag_run.state}; see the task logs above")
    return {"run_id": dag_run.run_id, "state": str(dag_run.state), "tasks": states, "elapsed_s": elapsed}


class _Requests:
    """Invoke the endpoint a few times a second (as an application would) while a DAG runs."""

    def __init__(self, env, endpoint: str):
        self.runtime, self.endpoint = env.emulator.client("sagemaker-runtime"), endpoint
        self.image = sorted((env.dataset["root"] / "images").rglob("*.jpg"))[0].read_bytes()
        self.answered = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.runtime.invoke_endpoint(EndpointName=self.endpoint, ContentType="application/x-image",
                                             Accept="application/json", Body=self.image)
                self.answered += 1
            except Exception:  # noqa: BLE001 - counted and shown
                self.failed += 1

    def __enter__(self) -> _Requests:
        self.started = datetime.now(UTC)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _print_traffic_shift(env, endpoint: str, requests: _Requests) -> None:
    """Requests per 10 s taken by the old and the new fleet (CloudWatch Invocations by EndpointConfigName)."""
    from ogiri.ledger import Ledger

    history = Ledger.from_connection().deployment_history(endpoint)
    new, old = history[0], history[1]
    cloudwatch = env.emulator.client("cloudwatch")
    since = requests.started.replace(second=requests.started.second // 10 * 10, microsecond=0)
    buckets: dict[datetime, dict[str, float]] = {}
    for label, row in (("old", old), ("new", new)):
        dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"},
                {"Name": "EndpointConfigName", "Value": row["endpoint_config"]}]
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=dims, StartTime=since,
            EndTime=datetime.now(UTC) + timedelta(seconds=10), Period=10, Statistics=["Sum"])["Datapoints"]
        for point in points:
            buckets.setdefault(point["Timestamp"], {})[label] = point["Sum"]
    print(f"Traffic shift of the {new.get('strategy')} update to {new['endpoint_config']} "
          f"(alarms {', '.join(new.get('alarms') or [])}; outcome {new.get('outcome')}):")
    for stamp in sorted(buckets)[-12:]:
        counts = buckets[stamp]
        total = counts.get("old", 0) + counts.get("new", 0)
        print(f"  {stamp:%H:%M:%S}  old fleet {counts.get('old', 0):>4.0f}  new fleet {counts.get('new', 0):>4.0f}"
              f"  ({counts.get('new', 0) / total:.0%} new)")
    print(f"  requests during the run: {requests.answered} answered, {requests.failed} failed")


#: The demo's candidates: the same run, two decoders (small, so both train in about the time of one).
CANDIDATES = [{"decoder": "lstm"}, {"decoder": "transformer"}]


def _candidates_summary(env, ledger, train_run_id: str) -> None:
    """Each candidate's scores on the frozen test set, and the winner the gate recorded (and why)."""
    from ogiri.naming import run_key
    from ogiri.train.configs import RunNames

    key = run_key("ogiri_train", train_run_id)
    names = RunNames.for_run(key)
    s3, bucket = env.emulator.client("s3"), env.settings["OGIRI_BUCKET"]
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"evaluations/{names.training_job}/evaluation.json")["Body"]
                        .read())
    print("Candidates on the frozen test set:")
    for job, overrides in zip(names.candidate_jobs(len(CANDIDATES)), CANDIDATES, strict=True):
        metrics = (report["models"].get(job) or {}).get("metrics") or {}
        shown = {k: round(metrics[k], 3) for k in ("cider", "bleu4") if k in metrics} or "not scored"
        print(f"  {json.dumps(overrides)}: {job}  {shown}")
    evaluation = ledger.latest_evaluation_for_run(key) or {}
    print(f"Winner: {evaluation.get('candidate_job')} (gate: {evaluation.get('decision')}; {evaluation.get('reason')})")


def _ingest_summary(env, ledger, dates: list[date]) -> None:
    """Rows per partition date and a few DynamoDB items."""
    print("Ingestion (per partition date):")
    for day in dates:
        for run in ledger.ingest_runs_for(day.isoformat()):
            reasons = run.get("rejected_by_reason") or {}
            print(
                f"  {day}: rows {run['rows_in']:>4}  accepted {run['accepted']:>4}  duplicates "
                f"{run['duplicates']:>3}  rejected {run['rejected']:>3} {json.dumps(reasons, ensure_ascii=False)}"
                f"  labels {run.get('labels')}"
            )
    dynamodb = env.emulator.client("dynamodb")
    table = env.settings["OGIRI_TABLE"]
    items = dynamodb.scan(TableName=table, Limit=3)["Items"]
    print(f"DynamoDB {table}: {dynamodb.describe_table(TableName=table)['Table'].get('ItemCount', '?')} items; e.g.")
    for item in items:
        labels = [lab["M"]["Name"]["S"] for lab in item.get("Labels", {}).get("L", [])][:5]
        print(f"  {item['Caption']['S']}  labels={labels}")


def _training_summary(ledger, history: list[dict]) -> None:
    """Each deployed run's training job, metrics, frozen-test scores and gate decision."""
    print("Training and evaluation:")
    for dep in history:
        job = dep.get("training_job")
        run = ledger.get_training_run(job) if job else None
        if run:
            metrics = {k: round(v, 3) for k, v in (run.get("metrics") or {}).items() if isinstance(v, float)}
            print(
                f"  {job}: {run.get('status')}, {run.get('billable_seconds')} billable s "
                f"on {run.get('instance_type')} (≈ ${run.get('cost_usd') or 0:.4f}), metrics {metrics}"
            )
        evaluation = ledger.get_evaluation(job) if job else None
        if evaluation:
            test = {k: round(v, 3) for k, v in (evaluation.get("candidate_metrics") or {}).items()
                    if k in ("bleu4", "cider", "distinct1", "distinct2", "mean_length")}
            print(f"  frozen test set: {test}; gate: {evaluation.get('decision')} ({evaluation.get('reason')})")


def _serving_summary(env, endpoint: str, champion: dict | None, history: list[dict]) -> None:
    """Deployments, the champion and a few captions from the endpoint, then the batch summaries."""
    print("Deployments:")
    for dep in history:
        guard = f" [{dep.get('strategy')}: {dep.get('outcome')}]" if dep.get("strategy") else ""
        print(f"  {dep.get('action'):8} {dep.get('status'):10} model={dep.get('model_name')}{guard}  {dep.get('reason')}")
    if champion:
        print(f"Champion on endpoint {endpoint}: {champion.get('model_name')}")
    runtime = env.emulator.client("sagemaker-runtime")
    images = sorted((env.dataset["root"] / "images").rglob("*.jpg"))[:3]
    print("Sample captions from the endpoint:")
    for path in images:
        out = runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="application/x-image", Accept="application/json", Body=path.read_bytes()
        )
        print(f"  {path.name[:12]}…  {json.loads(out['Body'].read())['caption']}")
    s3 = env.emulator.client("s3")
    bucket = env.settings["OGIRI_BUCKET"]
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="batch/").get("Contents", []):
        if obj["Key"].endswith("summary.json"):
            summary = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            counts = {k: v for k, v in summary.items() if isinstance(v, int)}
            print(f"Batch captioning (s3://{bucket}/{obj['Key']}): {counts}")


def _summary(env, dates: list[date], train_run_id: str) -> None:
    from ogiri.ledger import Ledger

    ledger = Ledger.from_connection()
    banner("Summary")
    _ingest_summary(env, ledger, dates)
    endpoint = os.environ.get("OGIRI_ENDPOINT_NAME", "ogiri-captioner")
    history = ledger.deployment_history(endpoint)
    _training_summary(ledger, history)
    _candidates_summary(env, ledger, train_run_id)
    _serving_summary(env, endpoint, ledger.champion(endpoint), history)


def _run_pipelines(env, args: argparse.Namespace, dates: list[date]) -> str:
    """Ingest (backfill), train two candidates, a canary update under traffic, batch captioning.
    Returns the first training run's id."""
    for day in dates:
        banner(f"ogiri_ingest for partition {day} (backfill)")
        run_time = datetime(day.year, day.month, day.day, 2, tzinfo=UTC) + timedelta(days=1)
        _run_dag("ogiri_ingest", logical_date=run_time)

    banner("ogiri_train: dataset version → 2 candidate training jobs → one evaluation → gate → endpoint")
    train = _run_dag(
        "ogiri_train",
        conf={"epochs": args.epochs, "image_size": 64, "batch_size": 32, "use_spot": False, "min_new_images": 1,
              "candidates": CANDIDATES},
    )

    banner("ogiri_train again: a forced update, deployed as a canary while requests keep coming")
    endpoint = os.environ.get("OGIRI_ENDPOINT_NAME", "ogiri-captioner")
    with _Requests(env, endpoint) as requests:
        _run_dag("ogiri_train", conf={
            "epochs": max(2, args.epochs // 10), "image_size": 64, "batch_size": 32, "use_spot": False,
            "min_new_images": 0, "force_deploy": True, "deployment_strategy": "canary", "canary_percent": 20,
            "candidates": [{}],
            "wait_interval_seconds": 8,
        })
    _print_traffic_shift(env, endpoint, requests)

    banner("ogiri_batch_caption: batch transform over the ingested images")
    _run_dag("ogiri_batch_caption", conf={"ingest_date": dates[-1].isoformat()})
    return train["run_id"]


def _run_loop(env, dates: list[date]) -> tuple[list[datetime], dict, dict]:
    """Close the loop: drift monitoring of two hours, the retraining the drift triggers, a rating job."""
    from ogiri_local import monitoring_demo
    from ogiri_local.labeling_demo import run_rate_job

    endpoint = os.environ.get("OGIRI_ENDPOINT_NAME", "ogiri-captioner")
    banner("Endpoint traffic in two past hours (captured), then ogiri_monitor for each hour")
    starts = monitoring_demo.run_monitoring(env, endpoint, _run_dag)
    banner("ogiri_train on drift: the run the ogiri_drift asset event queued (captions | drift schedule)")
    retrain = monitoring_demo.run_drift_retraining({})
    banner("ogiri_label: people rate the batch captions (Ground Truth, the emulator's simulated workforce)")
    labeling = run_rate_job(env, dates)
    return starts, retrain, labeling


def main(argv: list[str] | None = None) -> None:
    """Run the demo; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="synthetic images to ingest")
    parser.add_argument("--epochs", type=int, default=12,
                        help="training epochs of each of the two candidates (CPU; dag.test trains them one after the other)")
    args = parser.parse_args(argv)

    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir(parents=True)
    _prepare_process_env(ROOT / "airflow")
    from ogiri_local import monitoring_demo
    from ogiri_local.environment import LocalEnvironment
    from ogiri_local.iam_report import print_report, report
    from ogiri_local.labeling_demo import format_summary

    started = time.monotonic()
    banner("Starting the emulator, deploying infra/ogiri.yaml, generating the synthetic image set")
    with LocalEnvironment(ROOT, n_images=args.images) as env:
        os.environ.update(env.env)
        print(f"emulator: {env.emulator.url}   images: {env.images.base_url}   settings: {env.settings}")
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL)

        today = datetime.now(UTC).date()  # the demo's choice of dates to backfill, not pipeline logic
        dates = [today - timedelta(days=d) for d in (3, 2, 1)]
        banner(f"Landing CSVs for {', '.join(d.isoformat() for d in dates)}")
        _land_csvs(env, dates)
        train_run_id = _run_pipelines(env, args, dates)
        starts, retrain, labeling = _run_loop(env, dates)

        _summary(env, dates, train_run_id)
        monitoring_demo.print_summary(env, os.environ.get("OGIRI_ENDPOINT_NAME", "ogiri-captioner"), starts, retrain)
        print("Labeling (ogiri_label, report labeling/<job>/report/summary.json):")
        print(format_summary(labeling))
        print_report(report(env.emulator.url, env.emulator.client("iam")))
    print(f"\nDemo finished in {time.monotonic() - started:.0f} s; every process it started is stopped.")


if __name__ == "__main__":
    main()
