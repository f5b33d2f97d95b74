"""The contenders of ``bench_ingest.py``, each run as one task in a worker process.

Every job returns a dict with its wall time, its own process CPU time (``time.process_time``: the
emulator and the image server run in other processes and are not counted), its AWS calls by
operation (a botocore ``before-call`` counter on each client), and its peak RSS (``VmHWM`` after
resetting it through ``/proc/self/clear_refs`` at the start of the job, so it is this job's peak).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import urllib.request
from collections import Counter
from contextlib import contextmanager
from typing import Any

MAX_PIXELS = 40_000_000
MAX_SIDE = 512
DATE = "2026-01-01"


class Meter:
    """Counts API calls (not HTTP attempts) of the clients it is attached to, by ``service.Operation``."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def attach(self, clients: Any, rtt_s: float = 0.0) -> Any:
        """Count the calls of ``clients`` (an ``IngestClients``); add ``rtt_s`` before every request."""
        for client in (clients.s3, clients.dynamodb, clients.rekognition):
            client.meta.events.register("before-call", self._count)
            if rtt_s > 0:
                client.meta.events.register("before-send", lambda **_: time.sleep(rtt_s))
        return clients

    def _count(self, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        with self._lock:
            self.calls[f"{service}.{operation}"] += 1


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (from ``/proc/<pid>/stat``; 0 without procfs)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status(field: str) -> int:
    """A ``/proc/self/status`` memory field in bytes (0 where there is no procfs)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@contextmanager
def measured(out: dict[str, Any]):
    """Fill ``out`` with wall/CPU seconds and peak/start RSS of the ``with`` block."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    out["rss_start"] = _status("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    yield out
    out["wall_s"] = time.perf_counter() - t0
    out["cpu_s"] = time.process_time() - c0
    out["rss_peak"] = _status("VmHWM")


def clients_for(pool: int, rtt_s: float, meter: Meter) -> Any:
    """The chunk clients the DAG builds (through ``aws_default``), metered."""
    from ogiri.ingest.tasks import chunk_clients
    from ogiri.runs import Run

    return meter.attach(chunk_clients(Run.for_key("ogiri_ingest:bench"), pool=pool), rtt_s)


def warm(_: int) -> int:
    """Import what a task imports (Airflow pays this per task process; not what we measure)."""
    import logging

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: F401

    for name in ("ogiri", "airflow"):
        logging.getLogger(name).setLevel(logging.WARNING)

    import ogiri.ingest.pipeline  # noqa: F401
    import ogiri.ingest.plan  # noqa: F401
    import ogiri.ingest.tasks  # noqa: F401

    return os.getpid()


def _labeler(clients: Any, tps: float) -> Any:
    from ogiri.ingest.labels import Labeler

    return Labeler(clients.rekognition, tps=tps, min_confidence=70)


def naive_job(args: dict[str, Any]) -> dict[str, Any]:
    """Sequential per-row loop (one Lambda per row): download → put_object → DetectLabels → put_item.
    No validation, no normalisation, no dedupe."""
    meter, out = Meter(), {}
    clients = clients_for(4, args["rtt_s"], meter)
    labeler = _labeler(clients, args["tps"])
    bucket = table = args["bucket"]
    with measured(out):
        for path, caption in args["rows"]:
            with urllib.request.urlopen(f"{args['base_url']}/{path}", timeout=30) as r:
                data = r.read()
            key = f"naive/{hashlib.sha256(data).hexdigest()}.jpg"
            clients.s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg")
            labels = labeler.detect(bucket, key)
            clients.dynamodb.put_item(
                TableName=table,
                Item={
                    "ImageKey": {"S": key},
                    "CaptionId": {"S": hashlib.sha256(caption.encode()).hexdigest()[:32]},
                    "Caption": {"S": caption},
                    "LabelNames": {"L": [{"S": n} for n in labels.names] or [{"S": "-"}]},
                    "IngestDate": {"S": DATE},
                },
            )
    return dict(out, calls=dict(meter.calls), rows=len(args["rows"]), accepted=len(args["rows"]))


def naive_validated_job(args: dict[str, Any]) -> dict[str, Any]:
    """The naive loop doing our per-row work: streaming CSV parse with the row policy, SSRF-checked
    fetch, Pillow validation and normalisation, content-addressed key, our item codec; still one
    sequential ``put_object`` / ``DetectLabels`` / ``put_item`` per row, no dedupe, no batching."""
    from ogiri.aws import s3_uri
    from ogiri.catalog import CaptionItem
    from ogiri.ingest.csv_rows import iter_rows
    from ogiri.ingest.fetch import FetchPolicy, SafeFetcher
    from ogiri.ingest.images import normalise_image
    from ogiri.ingest.rows import Row

    meter, out, accepted = Meter(), {}, 0
    clients = clients_for(4, args["rtt_s"], meter)
    labeler = _labeler(clients, args["tps"])
    bucket = table = args["bucket"]
    fetcher = SafeFetcher(FetchPolicy(private_host_allowlist=(args["allow"],)), s3_client=clients.s3)
    with measured(out):
        body = clients.s3.get_object(Bucket=bucket, Key=args["csv_key"])["Body"]
        for row in iter_rows(body.iter_chunks(1 << 16), max_caption_chars=280, source=args["csv_key"]):
            if not isinstance(row, Row):
                continue
            img = normalise_image(fetcher.fetch(row.url).data, max_pixels=MAX_PIXELS, max_side=MAX_SIDE)
            clients.s3.put_object(Bucket=bucket, Key=img.key, Body=img.jpeg, ContentType="image/jpeg")
            item = CaptionItem(
                image_key=img.sha256, caption=row.caption, source_url=row.url, s3_uri=s3_uri(bucket, img.key),
                ingest_date=DATE, source_ref=f"{row.source}#L{row.line}", run_key=f"bench:{DATE}",
                labels=labeler.detect(bucket, img.key), width=img.width, height=img.height,
            )
            clients.dynamodb.put_item(TableName=table, Item=item.item())
            accepted += 1
    return dict(out, calls=dict(meter.calls), rows=accepted, accepted=accepted)


def plan_job(args: dict[str, Any]) -> dict[str, Any]:
    """``stage_chunks`` as the plan task runs it; also the XCom it would return, in bytes."""
    import json
    from datetime import UTC, datetime

    from ogiri.ingest.plan import stage_chunks

    meter, out = Meter(), {}
    clients = clients_for(4, args["rtt_s"], meter)
    with measured(out):
        refs = stage_chunks(clients.s3, args["bucket"], DATE, "bench", chunk_rows=args["chunk_rows"],
                            max_caption_chars=280)
        planned_at = datetime.now(UTC).isoformat()
        xcom = [dict(r.as_dict(), planned_at=planned_at) for r in refs]
    out["xcom_bytes"] = len(json.dumps(xcom).encode())
    return dict(out, calls=dict(meter.calls), refs=[r.as_dict() for r in refs], rows=sum(r.rows for r in refs))


def _chunk_setup(args: dict[str, Any]) -> dict[str, Any]:
    """What an ``ingest_chunk`` task builds before it starts work: clients, fetcher, labeler, job."""
    from ogiri.ingest.fetch import FetchPolicy, SafeFetcher
    from ogiri.ingest.pipeline import ChunkJob

    meter = Meter()
    clients = clients_for(args["concurrency"] + 4, args["rtt_s"], meter)
    return dict(
        meter=meter, clients=clients, labeler=_labeler(clients, args["tps"]),
        fetcher=SafeFetcher(FetchPolicy(private_host_allowlist=(args["allow"],)), s3_client=clients.s3),
        job=ChunkJob(args["bucket"], args["bucket"], DATE, f"bench:{DATE}", MAX_PIXELS, MAX_SIDE,
                     args["concurrency"]),
    )


def _chunk_run(task: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """The task's work: read the chunk, ``process_chunk``, stage the result."""
    from ogiri.aws import put_if_changed
    from ogiri.ingest.pipeline import process_chunk
    from ogiri.ingest.plan import read_chunk
    from ogiri.ingest.tasks import result_key

    out, ref, bucket, clients = {}, args["ref"], args["bucket"], task["clients"]
    with measured(out):
        entries = read_chunk(clients.s3, bucket, ref["key"])
        result = process_chunk(entries, chunk=ref["index"], job=task["job"], clients=clients,
                               fetcher=task["fetcher"], labeler=task["labeler"])
        put_if_changed(clients.s3, bucket, result_key(ref["key"]), result.to_json(), "application/json")
    counts = result.counts()
    return dict(out, calls=dict(task["meter"].calls), rows=counts["rows_in"], counts=counts,
                accepted=counts["accepted"])


def chunk_job(args: dict[str, Any]) -> dict[str, Any]:
    """One mapped ``ingest_chunk`` task (set-up outside the measurement, as for every contender)."""
    return _chunk_run(_chunk_setup(args), args)


def profile_chunk_job(args: dict[str, Any]) -> dict[str, Any]:
    """:func:`chunk_job` under cProfile timed by each thread's CPU clock (``time.thread_time``, so
    waits on sockets and locks cost nothing), the task's thread and every fetch thread merged; adds
    the top functions by own CPU time and by cumulative CPU time."""
    import cProfile
    import io
    import pstats

    from ogiri.ingest import pipeline

    main, per_thread, local, original = cProfile.Profile(time.thread_time), [], threading.local(), pipeline._prepare

    def profiled(*a: Any, **kw: Any) -> Any:
        if not hasattr(local, "profile"):
            local.profile = cProfile.Profile(time.thread_time)
            per_thread.append(local.profile)
        local.profile.enable()
        try:
            return original(*a, **kw)
        finally:
            local.profile.disable()

    task = _chunk_setup(args)
    pipeline._prepare = profiled
    main.enable()
    try:
        out = _chunk_run(task, args)
    finally:
        main.disable()
        pipeline._prepare = original
    stats = pstats.Stats(main)
    for p in per_thread:
        stats.add(p)
    if args.get("profile_out"):
        stats.dump_stats(args["profile_out"])
    for sort in ("tottime", "cumulative"):
        buf = io.StringIO()
        stats.stream = buf
        stats.sort_stats(sort).print_stats(args.get("top", 25))
        out[f"profile_{sort}"] = buf.getvalue()
    return out
