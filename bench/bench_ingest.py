"""Ingestion: our chunk pipeline vs two per-row loops, same emulator, same run; AWS calls, CPU, memory.

Run: ``.venv/bin/python bench/bench_ingest.py [--rows 300] [--captions-per-image 4] [--also-distinct]``
and, for one night at scale, ``--rows 100000 --captions-per-image 1 --measure-chunks 1 --rtt-ms 25
--rekognition-tps 12.5``.

N synthetic rows (coloured-shape images, Japanese captions; ``--captions-per-image`` captions per
image, as an ogiri prompt collects many answers) are served by a local HTTP server on 127.0.0.1.
All contenders talk to one ``localaws`` emulator (a separate process) and run in worker processes
(started and warmed before any clock starts, as Airflow's task processes are), so a contender's
CPU time is its own process's ``time.process_time`` (not the emulator's, not the image server's):

* **naive**: one Lambda per row, sequentially: download → ``put_object`` → ``DetectLabels`` →
  ``put_item``. No validation, no normalisation, no dedupe.
* **naive+validation**: the same sequential loop doing our per-row work: streaming CSV parse with
  the row policy, SSRF-checked fetch, Pillow validation and normalisation, content-addressed key,
  our item codec. So ours / naive+validation isolates the pipeline's design (concurrency, dedupe,
  conditional writes, batching) from the cost of validating.
* **ours**: the plan task (``stage_chunks``: streaming parse, staged chunks) then one
  ``ingest_chunk`` task per chunk (``process_chunk`` + the staged result), ``--workers`` at a time.

For each contender: rows/s, CPU ms per row, and AWS calls per row by operation (a botocore
``before-call`` counter on every client). ``--rtt-ms`` adds a round trip before every AWS request and
every image download of every contender (0 = the bare emulator). ``--rekognition-tps`` applies the
client-side DetectLabels limit (per task, as in the DAG) to every contender (0 = off).

``--measure-chunks K`` measures a night at scale without running all of it: the plan task over all
rows, then only the first K chunk tasks (images rendered for those chunks only), one task per fresh
process; it prints plan and chunk figures (rows/s, peak RSS, XCom and staging bytes) and the night
they imply. ``--profile`` prints a cProfile of one chunk task (its thread and every fetch thread).
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
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for p in (REPO / "include" / "training", REPO / "plugins", REPO, REPO / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

_HOME = os.environ.setdefault("OGIRI_BENCH_HOME", tempfile.mkdtemp(prefix="bench-ingest-"))
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

import ingest_contenders as contenders  # noqa: E402 - after sys.path

CONTENDERS = ("naive", "naive+validation", "ours")
PARALLEL_CHUNK_TASKS = 4  # the DAG's max_active_tis_per_dagrun for ingest_chunk


def make_rows(images: int, captions_per_image: int, seed: int = 0) -> list[tuple[str, str]]:
    """``(path, caption)`` rows: ``captions_per_image`` captions for each of ``images`` images, shuffled.
    Image ``k`` is ``img/<k>.jpg``, drawn from ``random.Random(k)`` (see :func:`render_images`)."""
    from ogiri_captioner.synthetic import random_scene

    rows = []
    for k in range(images):
        captions = random_scene(random.Random(k)).captions()
        rows.extend((f"img/{k:06d}.jpg", f"{captions[c % len(captions)]}（その{c + 1}）")
                    for c in range(captions_per_image))
    random.Random(seed).shuffle(rows)
    return rows


def render_images(root: Path, paths, seen: set[str] | None = None) -> int:
    """Write each ``img/<k>.jpg`` of ``paths`` (once), byte-distinct from every other; returns how many."""
    from ogiri_captioner.synthetic import random_scene, render

    seen = set() if seen is None else seen
    (root / "img").mkdir(parents=True, exist_ok=True)
    written = 0
    for path in sorted(set(paths)):
        k, salt = int(Path(path).stem), 0
        while True:
            rng = random.Random(k * 7919 + salt)
            img = render(random_scene(random.Random(k)), rng, size=128)
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=90)
            digest = hashlib.sha256(buf.getvalue()).hexdigest()
            if digest not in seen:
                break
            salt += 1
        seen.add(digest)
        (root / path).write_bytes(buf.getvalue())
        written += 1
    return written


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


def _setup_clients():
    return contenders.clients_for(8, 0.0, contenders.Meter())


def land(setup, bucket: str, rows, base_url: str) -> str:
    """Create ``bucket`` (and the table of the same name) and land ``rows`` as one CSV; returns its key."""
    from ogiri.provision import ensure_resources

    ensure_resources(setup.s3, setup.dynamodb, bucket, bucket)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image_url", "caption"])
    w.writerows((f"{base_url}/{p}", c) for p, c in rows)
    key = f"landing/dt={contenders.DATE}/rows.csv"
    setup.s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue().encode())
    return key


class Tally:
    """What one contender cost over a case: rows, wall and CPU seconds, AWS calls by operation."""

    def __init__(self, name: str):
        self.name, self.rows, self.accepted, self.wall_s, self.cpu_s = name, 0, 0, 0.0, 0.0
        self.calls: Counter[str] = Counter()
        self.rss_peak = 0
        self.emulator_cpu_s = 0.0

    def add(self, out: dict, *, rows: bool = True, wall: bool = True) -> None:
        """Fold one job's result in (``rows``/``wall``: whether its rows and wall time count)."""
        self.rows += out["rows"] if rows else 0
        self.accepted += out.get("accepted", 0) if rows else 0
        self.wall_s += out["wall_s"] if wall else 0.0
        self.cpu_s += out["cpu_s"]
        self.calls.update(out["calls"])
        self.rss_peak = max(self.rss_peak, out.get("rss_peak", 0))

    def per_row(self) -> float:
        return sum(self.calls.values()) / max(1, self.rows)

    def line(self) -> str:
        ops = ", ".join(f"{op} {n / max(1, self.rows):.3f}" for op, n in sorted(self.calls.items()))
        n = max(1, self.rows)
        return (f"  {self.name:<17} {self.rows / self.wall_s:8.1f} rows/s  {self.cpu_s * 1000 / n:6.2f} CPU ms/row"
                f" (emulator {self.emulator_cpu_s * 1000 / n:5.2f})  {self.per_row():5.3f} AWS calls/row  ({ops})")


def run_ours(pool, bucket: str, allow: str, args, rtt_s: float) -> Tally:
    """Plan, then every chunk ``--workers`` at a time; wall time is the orchestrator's clock."""
    tally = Tally("ours")
    t0 = time.perf_counter()
    plan = pool.submit(contenders.plan_job, dict(bucket=bucket, chunk_rows=args.chunk_rows, rtt_s=rtt_s)).result()
    jobs = [dict(ref=ref, bucket=bucket, allow=allow, concurrency=args.concurrency, rtt_s=rtt_s,
                 tps=args.rekognition_tps) for ref in plan["refs"]]
    chunks = list(pool.map(contenders.chunk_job, jobs))
    wall = time.perf_counter() - t0
    tally.add(plan, rows=False)
    for out in chunks:
        tally.add(out, wall=False)
    tally.wall_s = wall
    return tally


def run_case(pool, rows, server, args, tag: str, rtt_s: float) -> dict[str, Tally]:
    """All three contenders over the same rows at one RTT."""
    setup = _setup_clients()
    names = {c: f"{c.replace('+', '-')}-{tag}" for c in CONTENDERS}
    keys = {c: land(setup, names[c], rows, server.base_url) for c in CONTENDERS}
    base = dict(rtt_s=rtt_s, tps=args.rekognition_tps, base_url=server.base_url, allow=server.allowlist_entry)
    out: dict[str, Tally] = {}
    for c in args.contenders:
        emulator_cpu = contenders.process_cpu_s(args.emulator_pid)
        if c == "ours":
            out[c] = run_ours(pool, names[c], server.allowlist_entry, args, rtt_s)
        else:
            job = contenders.naive_job if c == "naive" else contenders.naive_validated_job
            out[c] = Tally(c)
            out[c].add(pool.submit(job, dict(base, bucket=names[c], rows=rows, csv_key=keys[c])).result())
        out[c].emulator_cpu_s = contenders.process_cpu_s(args.emulator_pid) - emulator_cpu
    for c, t in out.items():
        if t.accepted != len(rows):
            raise SystemExit(f"{c} accepted {t.accepted} of {len(rows)} rows")
    n_images = len({p for p, _ in rows})
    print(f"{tag}: rtt={rtt_s * 1000:.0f} ms, rows={len(rows)}, images={n_images}", flush=True)
    for t in out.values():
        print(t.line(), flush=True)
    return out


def _pool(workers: int) -> ProcessPoolExecutor:
    """Fresh interpreters (as Airflow task processes are), warmed before any clock starts."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    list(pool.map(contenders.warm, range(workers * 2)))
    return pool


def _summary(results: list[tuple[str, float, dict[str, Tally]]], distinct_per_row: float | None) -> None:
    print("summary: ours vs naive+validation (rows/s ratio, CPU/row ratio) and AWS calls/row")
    for tag, rtt, res in results:
        ours, ref = res.get("ours"), res.get("naive+validation")
        if ours and ref:
            print(f"  {tag:>16} rtt={rtt * 1000:3.0f}ms  {ref.wall_s / ours.wall_s:5.2f}x rows/s, "
                  f"{ours.cpu_s / ref.cpu_s:4.2f}x CPU/row, calls/row ours {ours.per_row():.3f} vs "
                  f"{ref.per_row():.3f}" + (f" (naive {res['naive'].per_row():.3f})" if "naive" in res else ""))
        if ours and distinct_per_row is not None and not tag.startswith("distinct"):
            images = ours.rows // max(1, int(tag.split("-")[0]))
            dup_rows = ours.rows - images
            if dup_rows:
                extra = sum(ours.calls.values()) - images * distinct_per_row
                print(f"  {'':>16} ours: {extra / dup_rows:.3f} AWS calls per duplicate-image row "
                      f"(calls beyond {images} distinct-image rows at {distinct_per_row:.3f})")


def comparison(args) -> int:
    """The three contenders at each ``--rtt-ms``, for each case."""
    from ogiri_local.emulator import Emulator

    work = Path(_HOME)
    cases = [(f"{args.captions_per_image}-per-image", args.captions_per_image)]
    if args.also_distinct and args.captions_per_image != 1:
        cases.insert(0, ("distinct", 1))
    results, distinct_per_row = [], None
    with Emulator(work / "localaws") as emu:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(emu.aws_connection())
        args.emulator_pid = emu.proc.pid
        pool = _pool(args.workers)
        try:
            for n, (tag, cpi) in enumerate(cases):
                root = work / f"site-{tag}"
                rows = make_rows(max(1, -(-args.rows // cpi)), cpi)[: args.rows]
                render_images(root, [p for p, _ in rows])
                for m, rtt in enumerate(args.rtts):
                    with DelayedImageServer(root, rtt) as server:
                        res = run_case(pool, rows, server, args, f"{tag}-{n}{m}", rtt)
                    results.append((tag, rtt, res))
                    if tag == "distinct" and rtt == 0 and "ours" in res:
                        distinct_per_row = res["ours"].per_row()
        finally:
            pool.shutdown()
    _summary(results, distinct_per_row)
    return 0


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def _staged(setup, bucket: str) -> tuple[int, int]:
    """Objects and bytes under the run's staging prefix."""
    from ogiri.ingest.plan import staging_prefix

    n = size = 0
    for page in setup.s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=staging_prefix(contenders.DATE, "bench")
    ):
        for o in page.get("Contents", []):
            n, size = n + 1, size + o["Size"]
    return n, size


def _scale_chunks(setup, bucket, plan, server, root, args) -> list[dict]:
    """Render the images of the first ``--measure-chunks`` chunks, then run each in a fresh process."""
    from ogiri.ingest.plan import read_chunk

    refs = plan["refs"][: args.measure_chunks]
    base = len(server.base_url) + 1
    for ref in refs:
        render_images(root, [e.url[base:] for e in read_chunk(setup.s3, bucket, ref["key"]) if hasattr(e, "url")])
    outs = []
    for ref in refs:
        pool = _pool(1)
        try:
            job = dict(ref=ref, bucket=bucket, allow=server.allowlist_entry, concurrency=args.concurrency,
                       rtt_s=args.rtts[0], tps=args.rekognition_tps, top=30,
                       profile_out=str(Path(_HOME) / "chunk.prof"))
            emulator_cpu = contenders.process_cpu_s(args.emulator_pid)
            outs.append(pool.submit(contenders.profile_chunk_job if args.profile else contenders.chunk_job,
                                    job).result())
            outs[-1]["emulator_cpu_s"] = contenders.process_cpu_s(args.emulator_pid) - emulator_cpu
        finally:
            pool.shutdown()
    return outs


def _print_scale(plan: dict, chunks: list[dict], staged: tuple[int, int], args) -> None:
    rows, n_chunks = plan["rows"], len(plan["refs"])
    print(f"plan task: {rows} rows in {plan['wall_s']:.1f} s ({rows / plan['wall_s']:.0f} rows/s, "
          f"{plan['cpu_s'] * 1e3 / rows:.3f} CPU ms/row), peak RSS {_mib(plan['rss_peak'])} "
          f"(+{_mib(plan['rss_peak'] - plan['rss_start'])} over its start), {n_chunks} chunks, "
          f"XCom {plan['xcom_bytes']} bytes, staging {staged[0]} objects / {staged[1]} bytes, "
          f"{sum(plan['calls'].values())} AWS calls {dict(plan['calls'])}")
    for out in chunks:
        t = Tally("chunk task")
        t.add(out)
        t.emulator_cpu_s = out["emulator_cpu_s"]
        print(t.line())
        print(f"  peak RSS {_mib(out['rss_peak'])} (+{_mib(out['rss_peak'] - out['rss_start'])} over its "
              f"start), counts {out['counts']}")
        if args.profile:
            print(f"profile (pstats): {Path(_HOME) / 'chunk.prof'}")
            print(out["profile_tottime"])
            print(out["profile_cumulative"])
    chunk_s = sum(o["wall_s"] for o in chunks) / len(chunks)
    labels = sum(o["counts"]["labels"] for o in chunks) / len(chunks) * n_chunks
    night = plan["wall_s"] + chunk_s * -(-n_chunks // PARALLEL_CHUNK_TASKS)
    print(f"implied night here: plan {plan['wall_s']:.0f} s + {n_chunks} chunks x {chunk_s:.1f} s / "
          f"{PARALLEL_CHUNK_TASKS} at once = {night / 60:.1f} min ({rows / night:.0f} rows/s); "
          f"~{labels:.0f} DetectLabels calls, {labels / max(args.rekognition_tps * PARALLEL_CHUNK_TASKS, 1e-9):.0f} s "
          f"at {args.rekognition_tps} TPS x {PARALLEL_CHUNK_TASKS} tasks")


def scale(args) -> int:
    """Plan all ``--rows`` rows, then ``--measure-chunks`` chunk tasks (ours only)."""
    from ogiri_local.emulator import Emulator

    work = Path(_HOME)
    root = work / "site-scale"
    rows = make_rows(max(1, -(-args.rows // args.captions_per_image)), args.captions_per_image)[: args.rows]
    with Emulator(work / "localaws") as emu:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(emu.aws_connection())
        args.emulator_pid = emu.proc.pid
        with DelayedImageServer(root, args.rtts[0]) as server:
            setup = _setup_clients()
            bucket = "ours-scale"
            land(setup, bucket, rows, server.base_url)
            del rows
            pool = _pool(1)
            try:
                plan = pool.submit(contenders.plan_job, dict(bucket=bucket, chunk_rows=args.chunk_rows,
                                                             rtt_s=args.rtts[0])).result()
            finally:
                pool.shutdown()
            chunks = _scale_chunks(setup, bucket, plan, server, root, args)
            _print_scale(plan, chunks, _staged(setup, bucket), args)
    return 0


def profile(args) -> int:
    """One chunk task under cProfile: ``--measure-chunks 1 --profile`` at the given rows."""
    args.measure_chunks = max(1, args.measure_chunks)
    return scale(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--captions-per-image", type=int, default=4)
    parser.add_argument("--chunk-rows", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2, help="chunk processes at once (mapped tasks)")
    parser.add_argument("--concurrency", type=int, default=16, help="threads per chunk")
    parser.add_argument("--rtt-ms", default="0,25", help="comma-separated simulated round-trip times")
    parser.add_argument("--rekognition-tps", type=float, default=0.0, help="DetectLabels limit per task (0: off)")
    parser.add_argument("--also-distinct", action="store_true", help="also run with one caption per image")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help=f"subset of {','.join(CONTENDERS)}")
    parser.add_argument("--measure-chunks", type=int, default=0, help="scale mode: plan all, run only K chunks")
    parser.add_argument("--profile", action="store_true", help="cProfile one chunk task (scale mode)")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.captions_per_image < 1:
        parser.error("--rows and --captions-per-image must be >= 1")
    try:
        args.rtts = [float(x) / 1000 for x in args.rtt_ms.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--rtt-ms must be comma-separated numbers, got {args.rtt_ms!r}")
    args.contenders = [c for c in CONTENDERS if c in args.contenders.split(",")]
    import logging

    logging.getLogger("ogiri").setLevel(logging.WARNING)
    logging.getLogger("airflow").setLevel(logging.WARNING)
    print(f"bench_ingest: {os.cpu_count()} CPUs, {args.workers} chunk process(es) x {args.concurrency} threads, "
          f"chunk_rows={args.chunk_rows}, DetectLabels limit {args.rekognition_tps or 'off'} per task", flush=True)
    if args.profile or args.measure_chunks:
        return profile(args) if args.profile else scale(args)
    return comparison(args)


if __name__ == "__main__":
    sys.exit(main())
