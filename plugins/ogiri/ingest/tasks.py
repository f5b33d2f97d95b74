"""The bodies of the ``ogiri_ingest`` tasks, as plain functions of the task's
:class:`~ogiri.runs.Run` (the DAG file only wires them).

Per-run overrides come from the DAG params; an empty param falls back to its ``OGIRI_*`` setting
(:data:`SETTING_DEFAULTS`), merged once when the :class:`~ogiri.runs.Run` is built.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ogiri.runs import Run

log = logging.getLogger(__name__)

STATUS_SUCCESS = "success"
STATUS_MISSING_LANDING = "missing_landing"

#: Params that fall back to a deployment setting (``Settings`` attribute) when the form leaves them empty.
SETTING_DEFAULTS = {
    "chunk_rows": "ingest_chunk_rows",
    "max_caption_chars": "max_caption_chars",
    "rekognition_tps": "rekognition_tps",
    "min_confidence": "rekognition_min_confidence",
}


def run_for(context: Any = None) -> Run:
    """The :class:`~ogiri.runs.Run` of an ``ogiri_ingest`` task."""
    return Run.from_context(context, defaults=SETTING_DEFAULTS)


def chunk_clients(run: Run, pool: int = 10) -> Any:
    """S3, DynamoDB and Rekognition clients for a chunk, with a connection pool of ``pool``.

    Rekognition gets no botocore retries (``total_max_attempts=1``): :mod:`ogiri.ingest.labels`
    retries itself, so every attempt passes through the client-side rate limit.
    """
    from ogiri.aws import client_config
    from ogiri.ingest.pipeline import IngestClients

    return IngestClients(
        s3=run.client("s3", client_config(pool=pool, attempts=5)),
        dynamodb=run.client("dynamodb", client_config(pool=pool, attempts=3)),
        rekognition=run.client("rekognition", client_config(pool=pool, attempts=1)),
    )


def resolve_run(run: Run) -> dict[str, str]:
    """Partition date, run key/name, bucket and the landing wildcard of this run.

    An ingest run is identified by its partition: ``run_key = "<dag_id>:<partition date>"``, so any
    rerun of a date (cleared scheduled run, backfill, manual run with ``partition_date``) reuses the
    same staging prefix, rejects file and ledger row, and overwrites rather than adds.
    """
    from ogiri.ingest.plan import landing_glob, partition_date_for, run_name

    partition = partition_date_for(run.logical_date, run.run_after, str(run.params.get("partition_date") or ""))
    key = f"{run.dag_id}:{partition}"
    info = {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "partition_date": partition,
        "run_key": key,
        "run_name": run_name(key),
        "bucket": run.settings.bucket,
        "table": run.settings.table,
        "landing_glob": landing_glob(run.settings.bucket, partition),
    }
    log.info("run %s ingests partition %s from %s", key, partition, info["landing_glob"])
    return info


def plan_run(run: Run, info: Mapping[str, str]) -> list[dict[str, Any]]:
    """Stage the partition's rows as chunks; returns the chunk refs to map over."""
    from ogiri.ingest.plan import stage_chunks

    refs = stage_chunks(
        chunk_clients(run).s3,
        info["bucket"],
        info["partition_date"],
        info["run_name"],
        chunk_rows=int(run.params["chunk_rows"]),
        max_caption_chars=int(run.params["max_caption_chars"]),
    )
    planned_at = datetime.now(UTC).isoformat()  # for the elapsed time in the log only
    log.info("partition %s: %d rows in %d chunk(s): %s", info["partition_date"], sum(r.rows for r in refs),
             len(refs), [r.rows for r in refs])
    return [dict(r.as_dict(), planned_at=planned_at, chunks=len(refs)) for r in refs]


def result_key(chunk_key: str) -> str:
    """Where a chunk's result is staged (next to the chunk)."""
    return chunk_key.removesuffix(".jsonl") + ".result.json"


def ingest_chunk(run: Run, info: Mapping[str, str], chunk: Mapping[str, Any]) -> dict[str, Any]:
    """Ingest one staged chunk; stage its full result (with rejects) and return its counts."""
    from ogiri.aws import put_if_changed
    from ogiri.ingest.fetch import FetchPolicy, SafeFetcher
    from ogiri.ingest.labels import MAX_CHUNKS_AT_ONCE, Labeler, chunk_tps
    from ogiri.ingest.pipeline import ChunkJob, process_chunk
    from ogiri.ingest.plan import read_chunk

    settings = run.settings
    clients = chunk_clients(run, pool=settings.fetch_concurrency + 4)
    entries = read_chunk(clients.s3, info["bucket"], chunk["key"])
    if len(entries) != chunk["rows"]:
        raise RuntimeError(f"chunk {chunk['key']} holds {len(entries)} rows, planned {chunk['rows']}")
    fetcher = SafeFetcher(FetchPolicy.from_settings(settings), s3_client=clients.s3)
    run_tps = float(run.params["rekognition_tps"])
    labeler = Labeler(clients.rekognition, tps=chunk_tps(run_tps, int(chunk.get("chunks", MAX_CHUNKS_AT_ONCE))),
                      min_confidence=float(run.params["min_confidence"]))
    log.info("chunk %s: DetectLabels at most %.2f/s, its share of the run's %.2f/s (0 = unlimited)",
             chunk["index"], labeler.limiter.rate, run_tps)
    job = ChunkJob(
        bucket=info["bucket"],
        table=info["table"],
        partition_date=info["partition_date"],
        run_key=info["run_key"],
        max_image_pixels=settings.max_image_pixels,
        max_image_side=settings.max_image_side,
        concurrency=settings.fetch_concurrency,
        decode_memory_bytes=settings.decode_memory_mb * 1024 * 1024,
    )
    result = process_chunk(
        entries, chunk=int(chunk["index"]), job=job, clients=clients, fetcher=fetcher, labeler=labeler
    )
    put_if_changed(clients.s3, info["bucket"], result_key(chunk["key"]), result.to_json(), "application/json")
    return result.counts()


def _summarize(s3: Any, info: Mapping[str, str], chunks: list[Mapping[str, Any]]) -> tuple[Any, list]:
    """The run summary from the staged chunk results; raises when rows went missing."""
    from ogiri.aws import read_object
    from ogiri.ingest.accounting import AccountingError, ChunkResult, summarize

    results = [ChunkResult.from_json(read_object(s3, info["bucket"], result_key(c["key"]))) for c in chunks]
    started = min((datetime.fromisoformat(c["planned_at"]) for c in chunks if "planned_at" in c), default=None)
    elapsed = (datetime.now(UTC) - started).total_seconds() if started else 0.0
    summary = summarize(info["partition_date"], results, elapsed_s=elapsed)
    planned = sum(int(c["rows"]) for c in chunks)
    if summary.rows_in != planned:
        raise AccountingError(f"planned {planned} rows but chunks report {summary.rows_in} rows in")
    return summary, results


def _drop_staging(s3: Any, info: Mapping[str, str]) -> None:
    """Remove the run's scratch space; a failure is logged, never raised (the outputs are written, and
    a retry would find its chunk results half deleted)."""
    from botocore.exceptions import ClientError

    from ogiri.ingest.plan import delete_prefix, staging_prefix

    staging = staging_prefix(info["partition_date"], info["run_name"])
    try:
        log.info("removed %d staging object(s)", delete_prefix(s3, info["bucket"], staging))
    except (RuntimeError, ClientError) as exc:
        log.warning("could not remove staging s3://%s/%s: %s", info["bucket"], staging, exc)


def reconcile_run(run: Run, info: Mapping[str, str], chunks: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Check every row is accounted for, write the rejects file and the ledger row, drop staging.

    Raises :class:`~ogiri.ingest.accounting.AccountingError` when rows in != accepted + duplicates +
    rejected (then nothing is published).
    """
    from ogiri.aws import put_if_changed
    from ogiri.ingest.accounting import rejects_jsonl, rejects_key

    s3 = chunk_clients(run).s3
    chunks = sorted(chunks, key=lambda c: int(c["index"]))
    summary, results = _summarize(s3, info, chunks)
    key = rejects_key(info["partition_date"], info["run_name"])
    put_if_changed(s3, info["bucket"], key, rejects_jsonl(results), "application/x-ndjson")
    for line in summary.log_lines():
        log.info("%s", line)
    log.info("rejects: s3://%s/%s", info["bucket"], key)
    message = json.dumps({"rejects": f"s3://{info['bucket']}/{key}", "chunks": summary.chunks})
    _record_run(run, info, STATUS_SUCCESS, summary=summary, message=message)
    _drop_staging(s3, info)
    return summary.as_dict()


def report_missing_landing(context: Any, window_s: float) -> None:
    """The landing sensor's ``on_timeout``: the missing-landing ledger row of this run."""
    info = context["ti"].xcom_pull(task_ids="resolve_partition")
    record_missing_landing(run_for(context), info, window_s)


def record_missing_landing(run: Run, info: Mapping[str, str], timeout_s: float) -> str:
    """Ledger row + log line for a partition whose CSVs never arrived; returns the message."""
    message = (
        f"no CSV arrived at {info['landing_glob']} within {timeout_s:.0f}s "
        f"(or the sensor could not list the bucket; see wait_for_landing's log): partition "
        f"{info['partition_date']} was not ingested"
    )
    log.error("%s", message)
    _record_run(run, info, STATUS_MISSING_LANDING, message=message)
    return message


def _record_run(run: Run, info: Mapping[str, str], status: str, *, summary: Any = None,
                message: str | None = None) -> None:
    """Upsert this run's ``ingest_runs`` row (keyed by the partition's run key)."""
    from ogiri.ledger import IngestRun

    run.ledger.record_ingest_run(
        IngestRun.from_summary(run_key=info["run_key"], dag_id=info["dag_id"], run_id=info["run_id"],
                               partition_date=info["partition_date"], status=status, summary=summary,
                               message=message)
    )
