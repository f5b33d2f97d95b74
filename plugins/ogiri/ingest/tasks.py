"""The bodies of the ``ogiri_ingest`` tasks, as plain functions (the DAG file only wires them).

Per-run overrides come from the DAG params (``None``/empty = the ``OGIRI_*`` setting).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ogiri.config import Settings, get_settings

log = logging.getLogger(__name__)

STATUS_SUCCESS = "success"
STATUS_MISSING_LANDING = "missing_landing"


def _param(params: Mapping[str, Any] | None, name: str, default: Any) -> Any:
    value = (params or {}).get(name)
    return default if value is None or value == "" else value


def resolve_run(
    *,
    dag_id: str,
    run_id: str,
    logical_date: datetime | None,
    run_after: datetime | None,
    params: Mapping[str, Any] | None,
    settings: Settings | None = None,
) -> dict[str, str]:
    """Partition date, run key/name, bucket and the landing wildcard of this run.

    An ingest run is identified by its partition: ``run_key = "<dag_id>:<partition date>"``, so any
    rerun of a date (cleared scheduled run, backfill, manual run with ``partition_date``) reuses the
    same staging prefix, rejects file and ledger row, and overwrites rather than adds.
    """
    from ogiri.ingest.plan import landing_glob, partition_date_for, run_name

    settings = settings or get_settings()
    partition = partition_date_for(logical_date, run_after, str(_param(params, "partition_date", "")))
    key = f"{dag_id}:{partition}"
    info = {
        "dag_id": dag_id,
        "run_id": run_id,
        "partition_date": partition,
        "run_key": key,
        "run_name": run_name(key),
        "bucket": settings.bucket,
        "table": settings.table,
        "landing_glob": landing_glob(settings.bucket, partition),
    }
    log.info("run %s ingests partition %s from %s", key, partition, info["landing_glob"])
    return info


def plan_run(info: Mapping[str, str], params: Mapping[str, Any] | None, settings: Settings | None = None):
    """Stage the partition's rows as chunks; returns the chunk refs to map over."""
    from ogiri.ingest.clients import make_clients
    from ogiri.ingest.plan import stage_chunks

    settings = settings or get_settings()
    clients = make_clients(settings.aws_conn_id, region_name=settings.region)
    refs = stage_chunks(
        clients.s3,
        info["bucket"],
        info["partition_date"],
        info["run_name"],
        chunk_rows=int(_param(params, "chunk_rows", settings.ingest_chunk_rows)),
        max_caption_chars=int(_param(params, "max_caption_chars", settings.max_caption_chars)),
    )
    planned_at = datetime.now(UTC).isoformat()
    log.info(
        "partition %s: %d rows in %d chunk(s): %s",
        info["partition_date"],
        sum(r.rows for r in refs),
        len(refs),
        [r.rows for r in refs],
    )
    return [dict(r.as_dict(), planned_at=planned_at) for r in refs]


def result_key(chunk_key: str) -> str:
    """Where a chunk's result is staged (next to the chunk)."""
    return chunk_key.removesuffix(".jsonl") + ".result.json"


def ingest_chunk(
    info: Mapping[str, str],
    chunk: Mapping[str, Any],
    params: Mapping[str, Any] | None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Ingest one staged chunk; stage its full result (with rejects) and return its counts."""
    from ogiri.aws import put_if_changed
    from ogiri.ingest.clients import make_clients
    from ogiri.ingest.fetch import FetchPolicy, SafeFetcher
    from ogiri.ingest.labels import Labeler
    from ogiri.ingest.pipeline import ChunkJob, process_chunk
    from ogiri.ingest.plan import read_chunk

    settings = settings or get_settings()
    clients = make_clients(settings.aws_conn_id, pool=settings.fetch_concurrency + 4, region_name=settings.region)
    entries = read_chunk(clients.s3, info["bucket"], chunk["key"])
    if len(entries) != chunk["rows"]:
        raise RuntimeError(f"chunk {chunk['key']} holds {len(entries)} rows, planned {chunk['rows']}")
    fetcher = SafeFetcher(FetchPolicy.from_settings(settings), s3_client=clients.s3)
    labeler = Labeler(
        clients.rekognition,
        tps=float(_param(params, "rekognition_tps", settings.rekognition_tps)),
        min_confidence=float(_param(params, "min_confidence", settings.rekognition_min_confidence)),
    )
    job = ChunkJob(
        bucket=info["bucket"],
        table=info["table"],
        partition_date=info["partition_date"],
        run_key=info["run_key"],
        max_image_pixels=settings.max_image_pixels,
        max_image_side=settings.max_image_side,
        concurrency=settings.fetch_concurrency,
    )
    result = process_chunk(
        entries, chunk=int(chunk["index"]), job=job, clients=clients, fetcher=fetcher, labeler=labeler
    )
    put_if_changed(clients.s3, info["bucket"], result_key(chunk["key"]), result.to_json(), "application/json")
    return result.counts()


def reconcile_run(
    info: Mapping[str, str],
    chunks: Iterable[Mapping[str, Any]],
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Check every row is accounted for, write the rejects file and the ledger row, drop staging.

    ``elapsed_s`` counts from planning (after the landing sensor) to now.

    Raises :class:`~ogiri.ingest.accounting.AccountingError` when rows in != accepted + duplicates +
    rejected (then nothing is published).
    """
    from botocore.exceptions import ClientError

    from ogiri.aws import put_if_changed, read_object
    from ogiri.ingest.accounting import AccountingError, ChunkResult, rejects_jsonl, rejects_key, summarize
    from ogiri.ingest.clients import make_clients
    from ogiri.ingest.plan import delete_prefix, staging_prefix

    settings = settings or get_settings()
    clients = make_clients(settings.aws_conn_id, region_name=settings.region)
    chunks = sorted(chunks, key=lambda c: int(c["index"]))
    results = [
        ChunkResult.from_json(read_object(clients.s3, info["bucket"], result_key(c["key"]))) for c in chunks
    ]
    planned = sum(int(c["rows"]) for c in chunks)
    started = min(
        (datetime.fromisoformat(c["planned_at"]) for c in chunks if "planned_at" in c), default=None
    )
    elapsed = (datetime.now(UTC) - started).total_seconds() if started else 0.0
    summary = summarize(info["partition_date"], results, elapsed_s=elapsed)
    if summary.rows_in != planned:
        raise AccountingError(f"planned {planned} rows but chunks report {summary.rows_in} rows in")
    key = rejects_key(info["partition_date"], info["run_name"])
    put_if_changed(clients.s3, info["bucket"], key, rejects_jsonl(results), "application/x-ndjson")
    for line in summary.log_lines():
        log.info("%s", line)
    log.info("rejects: s3://%s/%s", info["bucket"], key)
    _record_run(
        info,
        settings,
        status=STATUS_SUCCESS,
        rows_in=summary.rows_in,
        accepted=summary.accepted,
        duplicates=summary.duplicates,
        rejected=summary.rejected,
        rejected_by_reason=summary.rejected_by_reason,
        images_fetched=summary.images_fetched,
        bytes_fetched=summary.bytes_fetched,
        labels=summary.labels,
        elapsed_s=summary.elapsed_s,
        message=json.dumps({"rejects": f"s3://{info['bucket']}/{key}", "chunks": summary.chunks}),
    )
    staging = staging_prefix(info["partition_date"], info["run_name"])
    try:  # scratch space: the run's outputs are written; a failed cleanup must not fail (or retry) it
        log.info("removed %d staging object(s)", delete_prefix(clients.s3, info["bucket"], staging))
    except (RuntimeError, ClientError) as exc:
        log.warning("could not remove staging s3://%s/%s: %s", info["bucket"], staging, exc)
    return summary.as_dict()


def record_missing_landing(
    info: Mapping[str, str], timeout_s: float, settings: Settings | None = None
) -> str:
    """Ledger row + log line for a partition whose CSVs never arrived; returns the message."""

    settings = settings or get_settings()
    message = (
        f"no CSV arrived at {info['landing_glob']} within {timeout_s:.0f}s "
        f"(or the sensor could not list the bucket; see wait_for_landing's log): partition "
        f"{info['partition_date']} was not ingested"
    )
    log.error("%s", message)
    _record_run(info, settings, status=STATUS_MISSING_LANDING, message=message)
    return message


def _record_run(info: Mapping[str, str], settings: Settings, **fields: Any) -> None:
    """Upsert this run's ``ingest_runs`` row (keyed by the partition's run key)."""
    from ogiri.ledger import IngestRun, Ledger

    ledger = Ledger.from_connection(settings.ledger_conn_id)
    ledger.ensure_schema()
    ledger.record_ingest_run(
        IngestRun(
            run_key=info["run_key"],
            dag_id=info["dag_id"],
            run_id=info["run_id"],
            partition_date=info["partition_date"],
            **fields,
        )
    )
