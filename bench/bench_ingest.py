"""Ingestion throughput: our chunk pipeline vs a naive per-row loop, same emulator, same run.

Run: ``.venv/bin/python bench/bench_ingest.py [--rows 600] [--captions-per-image 4]``.

N synthetic rows (coloured-shape images, Japanese captions; ``--captions-per-image`` captions per
image, as an ogiri prompt collects many answers) are served by a local HTTP server on 127.0.0.1.
Both contenders talk to one ``localaws`` emulator (a separate process), rate limit lifted:

* **naive** — what one Lambda per row would do, sequentially: download → ``put_object`` →
  ``DetectLabels`` → ``put_item``. No validation, no normalisation, no dedupe.
* **ours** — ``stage_chunks`` (streaming CSV parse from S3) then ``process_chunk`` per chunk
  (SSRF-checked fetch, Pillow normalisation, content-addressed conditional put, labels once per
  image, batched idempotent writes), chunks run ``--workers`` at a time in separate processes as
  Airflow mapped tasks would (worker processes are started and have imported the pipeline before
  the clock starts: that start-up is Airflow's per-task cost, not the ingestion code's).

Prints rows/s of each and the ratio ours/naive (target >= 10x on 2 cores), for each
``--rtt-ms`` value: 0 is the bare emulator, where every call costs only the emulator's CPU (both
contenders share one emulator process on the same 2 cores, so the ratio is bounded by how many
``DetectLabels`` calls ours saves); a positive value adds that round-trip time to every AWS call
and every image download of *both* contenders (a botocore ``before-send`` hook and a delay in the
image server), which is what real AWS and real image hosts cost and what concurrency hides.
``--also-distinct`` repeats the runs with one caption per image (no label reuse possible).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import random
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for p in (REPO / "include" / "training", REPO / "plugins", REPO):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

_HOME = tempfile.mkdtemp(prefix="bench-ingest-")
os.environ.setdefault("AIRFLOW_HOME", _HOME)
for k, v in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "NO_PROXY": "127.0.0.1,localhost",
}.items():
    os.environ[k] = v
os.environ.pop("AWS_PROFILE", None)


def make_site(root: Path, images: int, captions_per_image: int, seed: int = 0) -> list[tuple[str, str]]:
    """Write ``images`` distinct synthetic images under ``root/img``; return (path, caption) rows."""
    from ogiri_captioner.synthetic import random_scene, render

    rng = random.Random(seed)
    rows, seen = [], set()
    (root / "img").mkdir(parents=True, exist_ok=True)
    while len(seen) < images:
        scene = random_scene(rng)
        img = render(scene, rng, size=128)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        data = buf.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        name = f"img/{len(seen):05d}.jpg"
        (root / name).write_bytes(data)
        captions = scene.captions()
        for c in range(captions_per_image):
            rows.append((name, f"{captions[c % len(captions)]}（その{c + 1}）"))
    rng.shuffle(rows)
    return rows


class DelayedImageServer:
    """Static files on 127.0.0.1 with ``delay_s`` added before each response (simulated RTT)."""

    def __init__(self, root: Path, delay_s: float):
        import threading

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server naming
                time.sleep(delay_s)
                super().do_GET()

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self._httpd.daemon_threads = True
        self.host, self.port = self._httpd.server_address[:2]
        self.base_url = f"http://{self.host}:{self.port}"
        self.allowlist_entry = f"{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()


def add_rtt(clients, rtt_s: float):
    """Sleep ``rtt_s`` before every request of these clients (simulated network round trip)."""
    if rtt_s > 0:
        for client in (clients.s3, clients.dynamodb, clients.rekognition):
            client.meta.events.register("before-send", lambda **_: time.sleep(rtt_s))
    return clients


def naive(clients, base_url: str, rows, bucket: str, table: str) -> float:
    """Sequential per-row loop; returns elapsed seconds."""
    t0 = time.perf_counter()
    for path, caption in rows:
        with urllib.request.urlopen(f"{base_url}/{path}", timeout=30) as r:
            data = r.read()
        key = f"naive/{hashlib.sha256(data).hexdigest()}.jpg"
        clients.s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg")
        labels = clients.rekognition.detect_labels(
            Image={"S3Object": {"Bucket": bucket, "Name": key}}, MaxLabels=10, MinConfidence=70
        )
        clients.dynamodb.put_item(
            TableName=table,
            Item={
                "ImageKey": {"S": key},
                "CaptionId": {"S": hashlib.sha256(caption.encode()).hexdigest()[:32]},
                "Caption": {"S": caption},
                "LabelNames": {"L": [{"S": lab["Name"]} for lab in labels["Labels"]] or [{"S": "-"}]},
                "IngestDate": {"S": "2026-01-01"},
            },
        )
    return time.perf_counter() - t0


def _clients(pool: int):
    """The chunk clients the DAG builds, through the ``aws_default`` connection."""
    from ogiri.ingest.tasks import chunk_clients
    from ogiri.runs import Run

    return chunk_clients(Run.for_key("ogiri_ingest:bench"), pool=pool)


def _run_chunk(args) -> dict:
    """One mapped task's worth of work, in a worker process."""
    from ogiri.ingest.fetch import FetchPolicy, SafeFetcher
    from ogiri.ingest.labels import Labeler
    from ogiri.ingest.pipeline import ChunkJob, process_chunk
    from ogiri.ingest.plan import read_chunk

    ref, bucket, table, allow, concurrency, rtt_s = args
    clients = add_rtt(_clients(concurrency + 4), rtt_s)
    fetcher = SafeFetcher(FetchPolicy(private_host_allowlist=(allow,)), s3_client=clients.s3)
    labeler = Labeler(clients.rekognition, tps=0, min_confidence=70)
    job = ChunkJob(bucket, table, "2026-01-01", "bench:2026-01-01", 40_000_000, 512, concurrency)
    entries = read_chunk(clients.s3, bucket, ref["key"])
    result = process_chunk(
        entries, chunk=ref["index"], job=job, clients=clients, fetcher=fetcher, labeler=labeler
    )
    return result.counts()


def _warm(_: int) -> int:
    """Import the pipeline in a worker (Airflow pays this per task process; not what we measure)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: F401

    import ogiri.ingest.pipeline  # noqa: F401
    import ogiri.ingest.tasks  # noqa: F401

    return os.getpid()


def ours(
    clients,
    bucket: str,
    table: str,
    allow: str,
    chunk_rows: int,
    workers: int,
    concurrency: int,
    rtt_s: float,
):
    """Stage + process every chunk; returns (elapsed seconds, totals)."""
    from ogiri.ingest.plan import stage_chunks

    t0 = time.perf_counter()
    refs = stage_chunks(
        clients.s3, bucket, "2026-01-01", "bench", chunk_rows=chunk_rows, max_caption_chars=280
    )
    jobs = [(r.as_dict(), bucket, table, allow, concurrency, rtt_s) for r in refs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        counts = list(pool.map(_run_chunk, jobs))
    elapsed = time.perf_counter() - t0
    totals = {
        k: sum(c[k] for c in counts) for k in ("rows_in", "accepted", "duplicates", "rejected", "labels")
    }
    return elapsed, totals


def run_case(rows, server, args, tag: str, rtt_s: float) -> float:
    from ogiri.provision import ensure_resources

    setup = _clients(args.concurrency + 4)
    for b in (f"naive-{tag}", f"ours-{tag}"):
        ensure_resources(setup.s3, setup.dynamodb, b, b)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image_url", "caption"])
    w.writerows((f"{server.base_url}/{p}", c) for p, c in rows)
    setup.s3.put_object(
        Bucket=f"ours-{tag}", Key="landing/dt=2026-01-01/rows.csv", Body=buf.getvalue().encode()
    )
    clients = add_rtt(_clients(args.concurrency + 4), rtt_s)

    naive_s = naive(clients, server.base_url, rows, f"naive-{tag}", f"naive-{tag}")
    ours_s, totals = ours(
        clients,
        f"ours-{tag}",
        f"ours-{tag}",
        server.allowlist_entry,
        args.chunk_rows,
        args.workers,
        args.concurrency,
        rtt_s,
    )
    if totals["rows_in"] != len(rows) or totals["rejected"] or totals["accepted"] != len(rows):
        raise SystemExit(f"pipeline lost or rejected rows: {totals}")
    n = len(rows)
    ratio = naive_s / ours_s
    print(
        f"{tag:>14} rtt={rtt_s * 1000:3.0f}ms rows={n:5d} images={len({p for p, _ in rows}):5d} | "
        f"naive {n / naive_s:7.1f} rows/s ({naive_s:6.2f}s) | ours {n / ours_s:7.1f} rows/s "
        f"({ours_s:6.2f}s, DetectLabels={totals['labels']}) | ratio {ratio:5.1f}x",
        flush=True,
    )
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--captions-per-image", type=int, default=4)
    parser.add_argument("--chunk-rows", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2, help="chunk processes at once (mapped tasks)")
    parser.add_argument("--concurrency", type=int, default=16, help="threads per chunk")
    parser.add_argument("--rtt-ms", default="0,25", help="comma-separated simulated round-trip times")
    parser.add_argument("--also-distinct", action="store_true", help="also run with one caption per image")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.captions_per_image < 1:
        parser.error("--rows and --captions-per-image must be >= 1")
    try:
        rtts = [float(x) / 1000 for x in args.rtt_ms.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--rtt-ms must be comma-separated numbers, got {args.rtt_ms!r}")

    import logging

    logging.getLogger("ogiri").setLevel(logging.WARNING)
    logging.getLogger("airflow").setLevel(logging.WARNING)
    from ogiri_local.emulator import Emulator

    work = Path(_HOME)
    cases = [(f"{args.captions_per_image}-per-image", args.captions_per_image)]
    if args.also_distinct and args.captions_per_image != 1:
        cases.append(("distinct", 1))
    print(
        f"bench_ingest: {os.cpu_count()} CPUs, {args.workers} chunk process(es) x {args.concurrency} threads, "
        f"chunk_rows={args.chunk_rows}, rate limit off; naive = sequential download/put_object/"
        f"DetectLabels/put_item per row",
        flush=True,
    )
    results = []
    with Emulator(work / "localaws") as emu:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(emu.aws_connection())
        os.environ["AWS_ENDPOINT_URL"] = emu.url
        for n, (tag, cpi) in enumerate(cases):
            root = work / f"site-{tag}"
            rows = make_site(root, max(1, -(-args.rows // cpi)), cpi)[: args.rows]
            for m, rtt in enumerate(rtts):
                with DelayedImageServer(root, rtt) as server:
                    ratio = run_case(rows, server, args, f"{tag}-{n}{m}", rtt)
                results.append((tag, rtt, ratio))
    print("summary (ratio ours/naive, target >= 10x):")
    for tag, rtt, ratio in results:
        print(f"  {tag:>14} rtt={rtt * 1000:3.0f}ms  {ratio:5.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
