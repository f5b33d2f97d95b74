"""
### ogiri_monitor — hourly drift check of the serving endpoint's captured traffic

Every hour (`OGIRI_MONITOR_CRON`, default `0 * * * *`, `CronTriggerTimetable` in UTC) a run checks
**one whole UTC hour of data capture: the hour before its logical date** (with this timetable the
logical date is the run's time, and `interval=1h` makes the data interval that same hour: the run
of 15:00 checks 14:00–15:00). Backfill a past hour with `airflow backfill create --dag-id
ogiri_monitor --from-date … --to-date …` (each logical date checks the hour before it) or trigger
with the `window_start` Param (`YYYY-MM-DDTHH`). Reruns of a window overwrite its row.

1. **resolve_serving_model** — DescribeEndpoint → endpoint config → model → `ModelDataUrl`, the
   variant and the capture destination; the window's capture prefix
   `capture/<endpoint>/<variant>/yyyy/mm/dd/hh/`. The baseline is that of the model that served the
   window (the ledger's champion deployed before the window ended, else the endpoint's model), so a
   backfill after a redeploy compares like with like. No endpoint: nothing to monitor (skipped).
2. **wait_for_capture** — `S3KeySensor` on that prefix for a short while
   (`OGIRI_MONITOR_CAPTURE_TIMEOUT_S`); nothing captured ⇒ the sensor is skipped (`soft_fail`) and
   **record_empty_window** writes an `empty` row: the run stays green, no job runs.
3. **package_code → configure_monitoring → monitor_window** — one SageMaker Processing job (same
   PyTorch image and code bundle as `ogiri_train`'s evaluation) runs `monitor.py` on the window's
   capture against the serving model's `model.tar.gz` (its `baseline.json`), writing
   `monitoring/<endpoint>/<YYYY-MM-DDTHH>/report.json` and `constraint_violations.json`. The job
   name derives from the run key: a retry re-attaches to it. A failed job ⇒ **record_failed_window**.
4. **record_window** — the `monitoring_windows` ledger row (status ok / violation / no_baseline,
   counts, per-feature scores, violations); **publish_metrics** — CloudWatch `Ogiri/Monitoring`
   `DriftScore` per `EndpointName` and `Feature`.
5. **check_violation** — on a violation only: **compose_alert → publish_alert** (`SnsPublishOperator`
   to `OGIRI_ALERT_TOPIC_ARN`: endpoint, window, violated features and scores, report URI — never
   captured content) **→ record_alert**, which emits the `ogiri_drift` Asset event (extra: endpoint,
   window_start, report_uri, violations) that schedules `ogiri_train`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import CronTriggerTimetable, TriggerRule, chain, dag, get_current_context, task

from ogiri.assets import drift_asset
from ogiri.config import get_settings, parse_knobs
from ogiri.jobs import ReattachingProcessingOperator
from ogiri.monitor.params import PARAMS

DAG_ID = "ogiri_monitor"
DRIFT = drift_asset()
#: Operator arguments that cannot be templated, from the parse-safe reader (a bad value falls back
#: to its default with an import warning).
KNOBS = parse_knobs()
AWS_ARGS = {"aws_conn_id": "{{ ogiri_settings().aws_conn_id }}", "region_name": "{{ ogiri_settings().region }}"}
FOUND = "{{ ti.xcom_pull(task_ids='resolve_serving_model')"


@dag(
    dag_id=DAG_ID,
    doc_md=__doc__,
    # interval=1h: data_interval_start = logical date - 1h, the hour the run checks (default cron).
    schedule=CronTriggerTimetable(KNOBS.monitor_cron, timezone="UTC", interval=timedelta(hours=1)),
    start_date=KNOBS.monitor_start_date,
    catchup=False,  # past hours: airflow backfill create (one run, one window, per hour)
    max_active_runs=2,
    params=PARAMS,
    tags=["ogiri", "monitoring", "sagemaker"],
    # Deployment settings are read when a task runs (templates), never at parse time.
    user_defined_macros={"ogiri_settings": get_settings},
    default_args={"owner": "ogiri-ml", "retries": 2, "retry_delay": timedelta(minutes=1)},
)
def ogiri_monitor():
    @task(multiple_outputs=False)
    def resolve_serving_model() -> dict:
        from ogiri.monitor import steps

        return steps.resolve_serving_model(steps.run_for())

    @task(trigger_rule=TriggerRule.ALL_SKIPPED)
    def record_empty_window() -> str:
        from ogiri.monitor import results, steps

        found = get_current_context()["ti"].xcom_pull(task_ids="resolve_serving_model")
        return results.record_empty_window(steps.run_for(), found)

    @task(multiple_outputs=False)
    def package_code() -> dict:
        from ogiri.monitor import steps

        return steps.package_code(steps.run_for())

    @task(multiple_outputs=False)
    def configure_monitoring(found: dict, source: dict) -> dict:
        from ogiri.monitor import steps

        return steps.configure_monitoring(steps.run_for(), found, source)

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def record_failed_window() -> str:
        from ogiri.monitor import results, steps

        found = get_current_context()["ti"].xcom_pull(task_ids="resolve_serving_model")
        return results.record_failed_window(steps.run_for(), found)

    @task(multiple_outputs=False)
    def record_window(found: dict) -> dict:
        from ogiri.monitor import results, steps

        return results.record_window(steps.run_for(), found)

    @task
    def publish_metrics(summary: dict) -> int:
        from ogiri.monitor import results, steps

        return results.publish_metrics(steps.run_for(), summary)

    @task.branch
    def check_violation(summary: dict) -> list:
        from ogiri.monitor import results

        return results.check_violation(summary)

    @task(multiple_outputs=False)
    def compose_alert(summary: dict) -> dict:
        from ogiri.monitor import results, steps

        return results.compose_alert(steps.run_for(), summary)

    @task(multiple_outputs=False, outlets=[DRIFT])
    def record_alert(summary: dict, published: dict | None) -> dict:
        from ogiri.monitor import results, steps

        extra = results.record_alert(steps.run_for(), summary, published)
        get_current_context()["outlet_events"][DRIFT].extra = extra
        return extra

    found = resolve_serving_model()
    wait_for_capture = S3KeySensor(
        task_id="wait_for_capture",
        bucket_key=FOUND + "['capture_glob'] }}",
        wildcard_match=True,
        mode="poke",
        poke_interval=KNOBS.monitor_capture_poke_s,
        timeout=KNOBS.monitor_capture_timeout_s,
        soft_fail=True,  # only a timeout (nothing captured) skips; S3 errors still fail
        **AWS_ARGS,
    )
    empty = record_empty_window()
    source = package_code()
    config = configure_monitoring(found, source)
    monitor_window = ReattachingProcessingOperator(
        task_id="monitor_window",
        pool=KNOBS.sagemaker_pool,
        config=config,
        deferrable=True,
        check_interval=KNOBS.sagemaker_poll_seconds,
        max_attempts=int(timedelta(hours=2).total_seconds() // KNOBS.sagemaker_poll_seconds),
        **AWS_ARGS,
    )
    failed = record_failed_window()
    summary = record_window(found)
    metrics = publish_metrics(summary)
    violation = check_violation(summary)
    alert = compose_alert(summary)
    publish_alert = SnsPublishOperator(
        task_id="publish_alert",
        target_arn="{{ ti.xcom_pull(task_ids='compose_alert')['topic_arn'] }}",
        subject="{{ ti.xcom_pull(task_ids='compose_alert')['subject'] }}",
        message="{{ ti.xcom_pull(task_ids='compose_alert')['message'] }}",
        **AWS_ARGS,
    )
    alerted = record_alert(summary, publish_alert.output)

    chain(found, wait_for_capture, empty)
    chain(wait_for_capture, source, config, monitor_window, summary, metrics, violation, alert, publish_alert,
          alerted)
    chain(monitor_window, failed)


ogiri_monitor()
