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

from airflow.sdk import CronTriggerTimetable, Param, chain, dag, task

from ogiri.batch.operators import RetrySafeTransformOperator
from ogiri.config import get_settings

DAG_ID = "ogiri_batch_caption"


def _client(service: str):
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    settings = get_settings()
    return AwsBaseHook(
        aws_conn_id=settings.aws_conn_id, client_type=service, region_name=settings.region
    ).conn


def _previous_day(run_time) -> str | None:
    """The partition a run covers: the UTC day before its logical date (or run-after time)."""
    return (run_time - timedelta(days=1)).date().isoformat() if run_time else None


def _run_key(dag_run) -> str:
    from ogiri.naming import run_key

    return run_key(DAG_ID, dag_run.run_id, dag_run.logical_date)


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
    params={
        "input_prefixes": Param(
            [],
            type="array",
            items={"type": "string"},
            description="S3 prefixes to caption (one input set each).",
        ),
        "manifest_uri": Param(None, type=["null", "string"], description="S3 URI of a manifest of images."),
        "ingest_date": Param(
            None,
            type=["null", "string"],
            description="YYYY-MM-DD: caption the images ingested that day (default: the run's date).",
        ),
        "model": Param(
            "champion", type="string", minLength=1, description="'champion' or a SageMaker model name."
        ),
        "instance_type": Param(
            None,
            type=["null", "string"],
            description="Transform instance type (default OGIRI_TRANSFORM_INSTANCE_TYPE).",
        ),
        "instance_count": Param(1, type="integer", minimum=1, maximum=100, description="Instances per job."),
        "beam_width": Param(3, type="integer", minimum=1, maximum=16, description="Beam search width."),
        "batch_size": Param(32, type="integer", minimum=1, maximum=1024, description="Images per request."),
        "max_concurrent_transforms": Param(
            2, type="integer", minimum=1, maximum=256, description="Parallel requests per instance."
        ),
        "max_set_size": Param(
            5000,
            type="integer",
            minimum=1,
            description="Sources larger than this are split into several jobs.",
        ),
    },
)
def ogiri_batch_caption():
    @task
    def plan_input_sets(params=None, dag_run=None, logical_date=None) -> list:
        from ogiri.batch.tasks import plan_batch
        from ogiri.ledger import Ledger

        settings = get_settings()
        plan = plan_batch(
            params,
            run_key=_run_key(dag_run),
            partition_date=_previous_day(logical_date or dag_run.run_after),
            settings=settings,
            s3=_client("s3"),
            sagemaker=_client("sagemaker"),
            dynamodb=_client("dynamodb"),
            ledger_factory=Ledger.from_connection,
        )
        return plan["configs"]

    configs = plan_input_sets()

    caption_set = RetrySafeTransformOperator.partial(
        task_id="caption_set",
        deferrable=True,
        aws_conn_id="{{ ogiri_settings().aws_conn_id }}",
        region_name="{{ ogiri_settings().region }}",
        max_active_tis_per_dagrun=8,
        map_index_template="{{ task.config['TransformJobName'] }}",
    ).expand(config=configs)

    @task(multiple_outputs=False, trigger_rule="all_done")
    def collect_captions(configs: list, dag_run=None) -> dict:
        from ogiri.batch.tasks import collect_captions as collect

        return collect(
            configs,
            run_key=_run_key(dag_run),
            bucket=get_settings().bucket,
            s3=_client("s3"),
            sagemaker=_client("sagemaker"),
        )

    @task
    def record_captions(summary: dict) -> int:
        from ogiri.batch.tasks import record_captions as record
        from ogiri.ledger import Ledger

        return record(
            summary["run_key"],
            bucket=get_settings().bucket,
            s3=_client("s3"),
            ledger=Ledger.from_connection(),
        )

    @task(multiple_outputs=False)
    def report_summary(summary: dict, recorded: int) -> dict:
        from ogiri.batch.tasks import report_summary as report

        return report(summary, recorded=recorded, bucket=get_settings().bucket, s3=_client("s3"))

    summary = collect_captions(configs)
    recorded = record_captions(summary)
    chain(configs, caption_set, summary, recorded, report_summary(summary, recorded))


ogiri_batch_caption()
