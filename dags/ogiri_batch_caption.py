"""
### Bulk captioning with SageMaker batch transform

Captions many images at once with the champion model (or a named SageMaker model).

**Inputs** (trigger form): one or more S3 prefixes (`s3://bucket/prefix/` or a key prefix in the
product bucket) and/or a manifest (JSON Lines with `s3_uri`/`image_key`, or one URI per line).
With neither, the run captions the images **ingested on `ingest_date`** (DynamoDB ingest-date
index) — which is what the **nightly schedule** does: every day at 03:30 UTC it captions the
previous day's partition (the day before the logical date, which `CronTriggerTimetable` makes
the run time), so backfills of a date work too; a manual run with no inputs does the same.

**Flow**: `plan_input_sets` writes JSON Lines request files, one input set per source (split
above `max_set_size`) → `caption_set`, one retry-safe, deferrable SageMaker transform per set
(dynamic task mapping; deterministic job names from the run key, so a retry re-attaches to or
reuses its job and never pays for a second one) → `collect_captions` writes
`s3://<bucket>/batch/<run>/captions.jsonl` (every item: caption and score, or the reason it failed)
→ `record_captions` upserts `(image, model)` rows in the ledger → `report_summary` writes
`summary.json` with counts and fails the run if any transform job failed.

Per-item failures (a corrupt image, a missing object) never fail the run: they are listed with
their reason in the task log, in `captions.jsonl`, in the ledger and in the summary. Rerunning a
run overwrites its outputs; the ledger never gets duplicate rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, chain, dag, task

from ogiri.batch.operators import RetrySafeTransformOperator
from ogiri.batch.params import PARAMS
from ogiri.config import get_settings, parse_knobs

DAG_ID = "ogiri_batch_caption"
SAGEMAKER_POOL = parse_knobs().sagemaker_pool  # caps SageMaker jobs account-wide (OGIRI_SAGEMAKER_POOL)


@dag(
    dag_id=DAG_ID,
    doc_md=__doc__,
    schedule=CronTriggerTimetable("30 3 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["ogiri", "batch", "sagemaker"],
    # Deployment settings are read when a task runs (templates), never at parse time.
    user_defined_macros={"ogiri_settings": get_settings},
    default_args={"owner": "ogiri-ml", "retries": 2, "retry_delay": timedelta(minutes=2)},
    params=PARAMS,
)
def ogiri_batch_caption():
    @task
    def plan_input_sets() -> list:
        from ogiri.batch.tasks import plan_for_run
        from ogiri.runs import Run

        return plan_for_run(Run.from_context())["configs"]

    configs = plan_input_sets()

    caption_set = RetrySafeTransformOperator.partial(
        task_id="caption_set",
        pool=SAGEMAKER_POOL,
        deferrable=True,
        aws_conn_id="{{ ogiri_settings().aws_conn_id }}",
        region_name="{{ ogiri_settings().region }}",
        max_active_tis_per_dagrun=8,
        map_index_template="{{ task.config['TransformJobName'] }}",
    ).expand(config=configs)

    @task(multiple_outputs=False, trigger_rule="all_done")
    def collect_captions(configs: list) -> dict:
        from ogiri.batch.tasks import collect_for_run
        from ogiri.runs import Run

        return collect_for_run(Run.from_context(), configs)

    @task
    def record_captions(summary: dict) -> int:
        from ogiri.batch.tasks import record_for_run
        from ogiri.runs import Run

        return record_for_run(Run.from_context(), summary)

    @task(multiple_outputs=False)
    def report_summary(summary: dict, recorded: int) -> dict:
        from ogiri.batch.tasks import report_for_run
        from ogiri.runs import Run

        return report_for_run(Run.from_context(), summary, recorded)

    summary = collect_captions(configs)
    recorded = record_captions(summary)
    chain(configs, caption_set, summary, recorded, report_summary(summary, recorded))


ogiri_batch_caption()
