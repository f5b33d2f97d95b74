"""
### ogiri_label — people write and rate captions (SageMaker Ground Truth)

Manual runs from the form below; with `OGIRI_LABEL_SCHEDULE` set to a cron expression (e.g.
`0 6 * * 1`, weekly on Mondays) also scheduled (read when the file is parsed; empty = manual only).

* **Task `caption`**: images of the source dates with fewer than `min_captions` captions go to the
  private work team (`OGIRI_WORKTEAM_ARN`); every valid caption becomes a caption item with
  `CaptionSource=human`, its workers' ids, worker count and agreement.
* **Task `rate`**: the latest `ogiri_batch_caption` captions with the lowest scores, plus a
  deterministic random audit sample (`audit_fraction`) of accepted captions, are rated 1–5 for fit
  and humour; the medians go onto the caption item (`RatingFit`, `RatingHumour`, `Rating`, …) or, for
  model captions, onto their `batch_captions` ledger row.

Flow: **select_objects** (`labeling/<job>/objects.jsonl`; skips the run when nothing qualifies) →
**write_manifest** (`input.manifest`, the crowd-html template) → **label_objects** (one Ground Truth
job per run, named from the run key; deferrable; a retry re-attaches to it; killing the task stops
it) → **ingest_labels** (answers checked: empty, malformed, over-long or rule-breaking answers go to
`rejects.jsonl` with reasons; objects in = labeled + rejected + expired, checked) → **write_report**
(`report/summary.json` and SVG pictures) → **record_labeling** (ledger `labeling_jobs`; emits the
`ogiri_captions` Asset, so `ogiri_train` follows). A stopped or expired job ingests what was labeled.
Worker ids are stored, never worker personal data.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, chain, dag, get_current_context, task

from ogiri.assets import captions_asset
from ogiri.config import get_settings, parse_knobs
from ogiri.label.operators import GroundTruthLabelingOperator
from ogiri.label.params import PARAMS

DAG_ID = "ogiri_label"
KNOBS = parse_knobs()
CAPTIONS = captions_asset()


@dag(
    dag_id=DAG_ID,
    doc_md=__doc__,
    schedule=CronTriggerTimetable(KNOBS.label_schedule, timezone="UTC") if KNOBS.label_schedule else None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["ogiri", "labeling", "ground-truth"],
    user_defined_macros={"ogiri_settings": get_settings},
    default_args={"owner": "ogiri-ml", "retries": 2, "retry_delay": timedelta(minutes=2)},
    params=PARAMS,
)
def ogiri_label():
    @task(multiple_outputs=False)
    def select_objects() -> dict:
        from ogiri.label.tasks import run_for
        from ogiri.label.tasks import select_objects as select

        return select(run_for())

    @task(multiple_outputs=False)
    def write_manifest(selected: dict) -> dict:
        from ogiri.label.tasks import run_for
        from ogiri.label.tasks import write_manifest as write

        return write(run_for(), selected)

    selected = select_objects()
    request = write_manifest(selected)
    label_objects = GroundTruthLabelingOperator(
        task_id="label_objects",
        config=request,
        check_interval=KNOBS.sagemaker_poll_seconds,
        aws_conn_id="{{ ogiri_settings().aws_conn_id }}",
        region_name="{{ ogiri_settings().region }}",
        deferrable=True,
    )

    @task(multiple_outputs=False)
    def ingest_labels(job: dict) -> dict:
        from ogiri.label.tasks import ingest_labels as ingest
        from ogiri.label.tasks import run_for

        return ingest(run_for(), job)

    @task(multiple_outputs=False)
    def write_report(ingested: dict) -> dict:
        from ogiri.label.tasks import run_for
        from ogiri.label.tasks import write_report as report

        return report(run_for(), ingested)

    @task(multiple_outputs=False, outlets=[CAPTIONS])
    def record_labeling(report: dict) -> dict:
        from ogiri.label.tasks import record_labeling as record
        from ogiri.label.tasks import run_for

        ctx = get_current_context()
        extra = record(run_for(ctx), report)
        ctx["outlet_events"][CAPTIONS].extra = extra
        return extra

    ingested = ingest_labels(label_objects.output)
    chain(selected, request, label_objects, ingested, record_labeling(write_report(ingested)))


ogiri_label()
