"""
### ogiri_ingest — nightly CSV landing → safe image fetch → S3 → Rekognition labels → DynamoDB

Runs at 02:00 UTC (`CronTriggerTimetable`, so the logical date is the run time) and ingests the
**previous UTC day**: the run of 2026-01-02 reads `s3://<bucket>/landing/dt=2026-01-01/*.csv`.
The `partition_date` param overrides that for manual runs. `catchup=True`: missed days and
backfills each process their own partition; at most 3 runs at once.

1. `resolve_partition` — partition date, run key, the landing wildcard.
2. `wait_for_landing` — the Amazon provider's `S3KeySensor` (deferrable, wildcard) waits up to
   `OGIRI_LANDING_TIMEOUT_S` (default 6 h) from the run's start; retries (transient S3 errors)
   share that window rather than restart it. **Nothing arrives ⇒ the run fails** (a missing nightly
   drop is an incident, not a quiet day); on that timeout, and only then, the sensor logs a clear
   message and writes a `missing_landing` ledger row. Mark the run successful by hand if the day truly had no data.
3. `plan_chunks` — parses the CSVs once (streaming; bad records become rejects with a reason) and
   stages rows as chunks of `chunk_rows`.
4. `ingest_chunk` (mapped, one task per chunk; a failed chunk retries alone and rewrites the same
   keys) — fetch with SSRF guards, normalise to RGB JPEG, store at `images/<sha[:2]>/<sha>.jpg`,
   label with Rekognition under a client-side TPS limit (`OGIRI_REKOGNITION_TPS` / param
   `rekognition_tps`, the run's budget, split over the chunk tasks that run at once: at most 4,
   on any worker), write DynamoDB
   records idempotently. Counts per chunk are in each task's log.
5. `reconcile_run` — fails unless rows in = accepted + duplicates + rejected; writes
   `rejects/dt=<date>/<run>.jsonl`, the ledger row (`ogiri_ledger` connection) and emits the
   `ogiri_captions` Asset (extra: partition, counts) that the training DAG is scheduled on.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task

from ogiri.assets import captions_asset
from ogiri.config import get_settings, parse_knobs
from ogiri.ingest.landing import LandingKeySensor
from ogiri.ingest.tasks import report_missing_landing

DAG_ID = "ogiri_ingest"
CAPTIONS = captions_asset()
#: Operator arguments that cannot be templated, from the parse-safe reader (a bad value falls back
#: to its default with an import warning). ``OGIRI_INGEST_START_DATE`` is the first night of the
#: schedule: local mode (``make up``, the end-to-end test) sets a recent date so that catch-up covers
#: a few nights, not the whole year.
KNOBS = parse_knobs()


@dag(
    dag_id=DAG_ID,
    doc_md=__doc__,
    schedule=CronTriggerTimetable("0 2 * * *", timezone="UTC"),
    start_date=KNOBS.ingest_start_date,
    catchup=True,
    max_active_runs=3,
    tags=["ogiri", "ingest"],
    # Deployment settings are read when a task runs (templates), never at parse time.
    user_defined_macros={"ogiri_settings": get_settings},
    default_args={
        "owner": "ogiri-data",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
    },
    params={
        # Nullable with a date format: the form (and the Backfill dialog) can submit the default,
        # and then every night ingests its own partition, the day before its logical date.
        "partition_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Partition date",
            description="YYYY-MM-DD to ingest. Empty: the day before the run's logical date (nightly and backfill runs).",
        ),
        "chunk_rows": Param(None, type=["null", "integer"], minimum=1, title="Rows per chunk task",
                            description="Empty: OGIRI_INGEST_CHUNK_ROWS (500)."),
        "max_caption_chars": Param(None, type=["null", "integer"], minimum=1, title="Max caption length",
                                   description="In characters. Empty: OGIRI_MAX_CAPTION_CHARS (280)."),
        "rekognition_tps": Param(None, type=["null", "number"], minimum=0, title="DetectLabels calls/s per run",
                                 description="Shared by the run's chunk tasks. 0 = unlimited. Empty: OGIRI_REKOGNITION_TPS (20)."),
        "min_confidence": Param(None, type=["null", "number"], minimum=0, maximum=100, title="Label min confidence",
                                description="Percent. Empty: OGIRI_REKOGNITION_MIN_CONFIDENCE (70)."),
    },
)
def ogiri_ingest():
    @task(multiple_outputs=False)
    def resolve_partition() -> dict[str, str]:
        from ogiri.ingest.tasks import resolve_run, run_for

        return resolve_run(run_for())

    @task
    def plan_chunks(info: dict[str, str]) -> list[dict]:
        from ogiri.ingest.tasks import plan_run, run_for

        return plan_run(run_for(), info)

    @task(multiple_outputs=False, max_active_tis_per_dagrun=4)
    def ingest_chunk(chunk: dict, info: dict[str, str]) -> dict:
        from ogiri.ingest.tasks import ingest_chunk as run_chunk
        from ogiri.ingest.tasks import run_for

        return run_chunk(run_for(), info, chunk)

    @task(multiple_outputs=False, outlets=[CAPTIONS])
    def reconcile_run(info: dict[str, str], chunks: list[dict], results: list[dict]) -> dict:
        from ogiri.ingest.tasks import reconcile_run as reconcile
        from ogiri.ingest.tasks import run_for

        ctx = get_current_context()
        summary = reconcile(run_for(ctx), info, chunks)
        ctx["outlet_events"][CAPTIONS].extra = {
            "bucket": info["bucket"],
            "partition_date": info["partition_date"],
            "run_key": info["run_key"],
            "rows_in": summary["rows_in"],
            "accepted": summary["accepted"],
            "duplicates": summary["duplicates"],
            "rejected": summary["rejected"],
        }
        return summary

    info = resolve_partition()
    wait_for_landing = LandingKeySensor(
        task_id="wait_for_landing",
        bucket_key="{{ ti.xcom_pull(task_ids='resolve_partition')['landing_glob'] }}",
        wildcard_match=True,
        aws_conn_id="{{ ogiri_settings().aws_conn_id }}",
        region_name="{{ ogiri_settings().region }}",
        deferrable=KNOBS.landing_deferrable,
        poke_interval=KNOBS.landing_poke_s,
        timeout=KNOBS.landing_timeout_s,
        mode="poke",
        # Retries cover transient S3 errors while waiting; the window is shared by all tries
        # (LandingKeySensor), and a timeout fails at once, as for any sensor.
        retries=2,
        # Only a timeout means "nothing landed": the sensor then writes the missing_landing row.
        on_timeout=report_missing_landing,
    )
    chunks = plan_chunks(info)
    results = ingest_chunk.partial(info=info).expand(chunk=chunks)
    info >> wait_for_landing >> chunks
    reconcile_run(info, chunks, results)


ogiri_ingest()
