"""The work of each ``ogiri_batch_caption`` task, as plain functions over boto3 clients and a ledger.

The DAG file only wires these together; tests call them directly against the emulator.

* :func:`plan_batch` — resolve the model and the sources, write request files, return job configs;
* :func:`collect_captions` — job states + ``.out`` files → ``batch/<run>/captions.jsonl``;
* :func:`record_captions` — upsert the processed items into the ledger;
* :func:`report_summary` — write ``summary.json``, log the counts, fail the run if a job failed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from ogiri.aws import not_found
from ogiri.batch import layout
from ogiri.batch.params import form_defaults
from ogiri.batch.planning import (
    ImageRef,
    InputSet,
    PlanError,
    TransformOptions,
    list_prefix,
    read_manifest,
    split_into_sets,
    transform_config,
    write_input_sets,
)
from ogiri.batch.results import collect_set, from_jsonl, summarize, to_jsonl
from ogiri.batch.sources import images_ingested_on
from ogiri.config import Settings
from ogiri.runs import Run

log = logging.getLogger(__name__)

CHAMPION = "champion"
#: Per-item failures written to the task log one by one before "... and N more".
LOGGED_FAILURES = 50


class BatchRunFailed(AirflowFailException):
    """A transform job of the run did not complete (its items are reported as failures). Not
    retried: the job's state will not change."""


def resolve_model(requested: str | None, *, ledger_factory: Callable[[], Any], endpoint_name: str) -> str:
    """The SageMaker model to use: ``requested``, or the endpoint's champion from the ledger when
    ``requested`` is empty or ``"champion"``."""
    requested = (requested or "").strip()
    if requested and requested.lower() != CHAMPION:
        return requested
    ledger = ledger_factory()
    ledger.ensure_schema()  # a fresh ledger (nothing trained yet) gets the clear error below
    champion = ledger.champion(endpoint_name)
    if not champion or not champion.get("model_name"):
        raise PlanError(
            f"no champion model is recorded for endpoint {endpoint_name!r} in the ledger; run ogiri_train "
            "first or pass a SageMaker model name in the 'model' param"
        )
    return champion["model_name"]


def check_model_exists(sagemaker: Any, model_name: str) -> None:
    """Fail early, with a clear message, when the SageMaker model does not exist."""
    try:
        sagemaker.describe_model(ModelName=model_name)
    except sagemaker.exceptions.ClientError as exc:
        if not_found(exc):
            raise PlanError(f"SageMaker model {model_name!r} does not exist") from exc
        raise


def gather_sources(
    params: Mapping[str, Any], *, partition_date: str | None, s3: Any, dynamodb: Any, settings: Settings
) -> tuple[list[str], list[list[ImageRef]]]:
    """(descriptions, image lists) of the run's sources: the ``input_prefixes`` and
    ``manifest_uri`` params when given, else the images ingested on ``ingest_date`` (param) or on
    the run's partition date."""
    prefixes = params.get("input_prefixes") or []
    if isinstance(prefixes, str):
        prefixes = [p for p in prefixes.replace(",", "\n").splitlines() if p.strip()]
    manifest = (params.get("manifest_uri") or "").strip()
    names, sources = [], []
    for prefix in prefixes:
        names.append(f"prefix {prefix}")
        sources.append(list_prefix(s3, prefix, settings.bucket))
    if manifest:
        names.append(f"manifest {manifest}")
        sources.append(read_manifest(s3, manifest, settings.bucket))
    if not names:
        day = (params.get("ingest_date") or partition_date or "").strip()
        if not day:
            raise PlanError("nothing to caption: give input_prefixes, manifest_uri or ingest_date")
        names.append(f"images ingested on {day}")
        sources.append(images_ingested_on(dynamodb, settings.table, day, settings.bucket))
    return names, sources


def plan_batch(
    params: Mapping[str, Any],
    *,
    run_key: str,
    partition_date: str | None,
    settings: Settings,
    s3: Any,
    sagemaker: Any,
    dynamodb: Any,
    ledger_factory: Callable[[], Any],
) -> dict[str, Any]:
    """Plan a run: write its request files and return ``{"configs", "sets", "model_name", …}``.

    Params the caller left out take the form's defaults (:mod:`ogiri.batch.params`)."""
    params = form_defaults(**params)
    model_name = resolve_model(
        params.get("model"), ledger_factory=ledger_factory, endpoint_name=settings.endpoint_name
    )
    check_model_exists(sagemaker, model_name)
    options = TransformOptions(
        model_name=model_name,
        instance_type=(params["instance_type"] or settings.transform_instance_type).strip(),
        instance_count=params["instance_count"],
        beam_width=params["beam_width"],
        batch_size=params["batch_size"],
        max_concurrent_transforms=params["max_concurrent_transforms"],
    )
    names, sources = gather_sources(
        params, partition_date=partition_date, s3=s3, dynamodb=dynamodb, settings=settings
    )
    sets = split_into_sets(sources, int(params["max_set_size"]))
    planned = write_input_sets(s3, bucket=settings.bucket, run_key=run_key, sets=sets, options=options)
    for name, refs in zip(names, sources, strict=True):
        log.info("source %s: %d images", name, len(refs))
    log.info(
        "planned %d input sets, %d images, model %s, run prefix s3://%s/%s",
        len(planned),
        sum(s.items for s in planned),
        model_name,
        settings.bucket,
        layout.run_prefix(run_key),
    )
    return {
        "configs": [transform_config(s, options, run_key=run_key) for s in planned],
        "sets": [s.to_dict() for s in planned],
        "model_name": model_name,
        "run_key": run_key,
        "sources": names,
    }


def _job_state(sagemaker: Any, job_name: str) -> dict[str, Any]:
    try:
        d = sagemaker.describe_transform_job(TransformJobName=job_name)
    except sagemaker.exceptions.ClientError as exc:
        if not_found(exc):
            return {
                "job_name": job_name,
                "status": "NotStarted",
                "failure_reason": "the job was never created",
            }
        raise
    return {
        "job_name": job_name,
        "status": d["TransformJobStatus"],
        "failure_reason": d.get("FailureReason") or None,
    }


def collect_captions(
    configs: Sequence[Mapping[str, Any]], *, run_key: str, bucket: str, s3: Any, sagemaker: Any
) -> dict[str, Any]:
    """Gather the result of every item the planned transform ``configs`` asked for into
    ``batch/<run>/captions.jsonl``; returns the summary."""
    model_name = configs[0]["ModelName"] if configs else None
    results, states = [], {}
    for config in configs:
        input_set = InputSet.from_config(dict(config))
        state = _job_state(sagemaker, input_set.job_name)
        states[input_set.name] = state
        results += collect_set(
            s3,
            input_set,
            model_name=model_name,
            job_status=state["status"],
            failure_reason=state["failure_reason"],
        )
    s3.put_object(
        Bucket=bucket,
        Key=layout.captions_key(run_key),
        Body=to_jsonl(results),
        ContentType="application/jsonlines",
    )
    failures = [r for r in results if not r.ok]
    for r in failures[:LOGGED_FAILURES]:
        log.warning("caption failed: image=%s set=%s reason=%s", r.image_key, r.set, r.error)
    if len(failures) > LOGGED_FAILURES:
        log.warning(
            "... and %d more failed items (all listed in captions.jsonl)", len(failures) - LOGGED_FAILURES
        )
    summary = summarize(results, states)
    summary.update(
        run_key=run_key, model_name=model_name, captions_uri=f"s3://{bucket}/{layout.captions_key(run_key)}"
    )
    return summary


def record_captions(run_key: str, *, bucket: str, s3: Any, ledger: Any) -> int:
    """Upsert the run's processed items (captions and per-item errors) into the ledger."""
    from ogiri.ledger import BatchCaption

    body = s3.get_object(Bucket=bucket, Key=layout.captions_key(run_key))["Body"].read()
    rows = [
        BatchCaption(
            image_key=r.image_key,
            model_name=r.model_name,
            caption=r.caption,
            score=r.score,
            error=r.error,
            job_name=r.job_name,
            run_key=run_key,
        )
        for r in from_jsonl(body)
        if r.processed
    ]
    ledger.ensure_schema()
    written = ledger.record_batch_captions(rows)
    log.info("ledger: upserted %d batch captions for %s", written, run_key)
    return written


def report_summary(summary: Mapping[str, Any], *, recorded: int, bucket: str, s3: Any) -> dict[str, Any]:
    """Write ``summary.json`` next to ``captions.jsonl``, log it, and raise :class:`BatchRunFailed`
    when a transform job did not complete."""
    final = {**summary, "ledger_rows": recorded}
    key = layout.summary_key(final["run_key"])
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(final, ensure_ascii=False, indent=2).encode("utf-8"),
        ContentType="application/json",
    )
    log.info(
        "batch caption run %s: %d items, %d captioned, %d failed, %d sets, %d ledger rows; summary s3://%s/%s",
        final["run_key"],
        final["items"],
        final["captioned"],
        final["failed"],
        len(final["sets"]),
        recorded,
        bucket,
        key,
    )
    for s in final["sets"]:
        log.info(
            "  %s job=%s status=%s items=%d captioned=%d failed=%d",
            s["set"],
            s.get("job_name"),
            s.get("status"),
            s["items"],
            s["captioned"],
            s["failed"],
        )
    if final["failure_reasons"]:
        log.info("  failure reasons: %s", final["failure_reasons"])
    if final["failed_jobs"]:
        raise BatchRunFailed(
            f"transform jobs did not complete for sets {', '.join(final['failed_jobs'])}; their items are listed "
            f"as failures in {final['captions_uri']}"
        )
    return final


# -- the tasks, on the run context ---------------------------------------------------------------


def plan_for_run(run: Run) -> dict[str, Any]:
    """``plan_input_sets``: :func:`plan_batch` for the run (partition = the day before its logical date)."""
    return plan_batch(
        run.params,
        run_key=run.key,
        partition_date=run.partition_date(),
        settings=run.settings,
        s3=run.client("s3"),
        sagemaker=run.client("sagemaker"),
        dynamodb=run.client("dynamodb"),
        ledger_factory=lambda: run.ledger,
    )


def collect_for_run(run: Run, configs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``collect_captions`` for the run."""
    return collect_captions(configs, run_key=run.key, bucket=run.settings.bucket, s3=run.client("s3"),
                            sagemaker=run.client("sagemaker"))


def record_for_run(run: Run, summary: Mapping[str, Any]) -> int:
    """``record_captions`` for the run."""
    return record_captions(summary["run_key"], bucket=run.settings.bucket, s3=run.client("s3"), ledger=run.ledger)


def report_for_run(run: Run, summary: Mapping[str, Any], recorded: int) -> dict[str, Any]:
    """``report_summary`` for the run."""
    return report_summary(summary, recorded=recorded, bucket=run.settings.bucket, s3=run.client("s3"))
