"""Ingestion on the CeleryExecutor: one partition of N rows with 1 worker, then with 2, in one run.

Run: ``.venv/bin/python -m bench celery_ingest`` or ``.venv/bin/python bench/celery_ingest.py
[--rows 240] [--chunk-rows 30]`` (minutes: not part of the default ``make bench``).

One ``CeleryStack`` (Redis broker, throwaway PostgreSQL databases, workers of one task slot each,
the emulator under IAM enforcement): worker 2 is stopped, ``ogiri_ingest`` runs one partition of N
distinct rows; worker 2 is started again and a second partition of N other rows (same sizes, new
images, so nothing is a duplicate) runs on both. Printed per case: the run's wall time (trigger to
success, scheduler latency included), the chunk phase (first ``ingest_chunk`` start to last end),
rows/s over that phase, and which workers ran the chunks; then the ratio. The Rekognition budget is
off (``rekognition_tps`` 0) so the figure is the workers', not the TPS setting's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ogiri_local.celery_stack import CeleryStack, ThrowawayDatabases  # noqa: E402
from ogiri_local.environment import LocalEnvironment  # noqa: E402


def _wait_run(stack: CeleryStack, run_id: str, timeout: float = 1200) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = stack.request("GET", f"/api/v2/dags/ogiri_ingest/dagRuns/{run_id}")
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(1)
    raise SystemExit(f"run {run_id} not finished in {timeout:.0f} s")


def _case(stack: CeleryStack, day: date, rows: int, chunk_rows: int) -> dict:
    started = time.monotonic()
    run_id = stack.request("POST", "/api/v2/dags/ogiri_ingest/dagRuns", {
        "logical_date": None,
        "conf": {"partition_date": day.isoformat(), "chunk_rows": chunk_rows, "rekognition_tps": 0},
    })["dag_run_id"]
    run = _wait_run(stack, run_id)
    wall = time.monotonic() - started
    if run["state"] != "success":
        raise SystemExit(f"ingest run {run_id} {run['state']}; logs in {stack.logs}")
    tis = stack.request("GET", f"/api/v2/dags/ogiri_ingest/dagRuns/{run_id}/taskInstances?limit=200")
    chunks = [ti for ti in tis["task_instances"] if ti["task_id"] == "ingest_chunk"]
    first = min(datetime.fromisoformat(ti["start_date"]) for ti in chunks)
    last = max(datetime.fromisoformat(ti["end_date"]) for ti in chunks)
    phase = (last - first).total_seconds()
    hosts = sorted({ti["hostname"] for ti in chunks})
    return {"wall": wall, "phase": phase, "rows_s": rows / phase, "chunks": len(chunks), "hosts": hosts}


def _stop_worker(stack: CeleryStack, index: int) -> None:
    proc = stack.procs.pop(f"worker-{index}")
    os.killpg(proc.pid, signal.SIGTERM)  # warm shutdown: it has no task at this point
    proc.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    """Run both cases and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=240, help="rows of the partition (distinct images)")
    parser.add_argument("--chunk-rows", type=int, default=30)
    args = parser.parse_args(argv)
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=20), today - timedelta(days=19)]
    root = Path(tempfile.mkdtemp(prefix="ogiri-bench-celery-"))
    try:
        one, two = _both(root, days, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _print(one, two, args)
    return 0


def _both(root: Path, days: list[date], args: argparse.Namespace) -> tuple[dict, dict]:
    with LocalEnvironment(root / "env", n_images=2 * args.rows) as env, \
            ThrowawayDatabases("metadata", "results", "ledger") as databases:
        rows = env.synthetic_rows(root / "all.csv")
        for i, day in enumerate(days):
            env.land(day, rows[i * args.rows : (i + 1) * args.rows])
        airflow_env = {**env.env, "AIRFLOW_CONN_OGIRI_LEDGER": databases.connection_uri("ledger"),
                       "OGIRI_INGEST_START_DATE": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                       "OGIRI_LANDING_POKE_S": "1", "OGIRI_LANDING_DEFERRABLE": "false"}
        with CeleryStack(root / "airflow", databases, env=airflow_env, concurrency=1) as stack:
            deadline = time.monotonic() + 180
            while "ogiri_ingest" not in {d["dag_id"] for d in stack.request("GET", "/api/v2/dags")["dags"]}:
                if time.monotonic() > deadline:
                    raise SystemExit("ogiri_ingest never registered")
                time.sleep(2)
            stack.request("PATCH", "/api/v2/dags/ogiri_ingest", {"is_paused": False})
            _stop_worker(stack, 2)
            one = _case(stack, days[0], args.rows, args.chunk_rows)
            stack.start_worker(2)
            stack.wait_worker_ready(2)
            two = _case(stack, days[1], args.rows, args.chunk_rows)
    return one, two


def _print(one: dict, two: dict, args: argparse.Namespace) -> None:
    print(f"\nogiri_ingest, one partition of {args.rows} rows in {one['chunks']} chunks of {args.chunk_rows}, "
          f"CeleryExecutor, 1 task slot per worker, {os.cpu_count()} CPU(s):")
    print(f"{'workers':>8} {'run wall s':>11} {'chunk phase s':>14} {'rows/s':>8}  chunks ran on")
    for n, case in ((1, one), (2, two)):
        print(f"{n:>8} {case['wall']:>11.1f} {case['phase']:>14.1f} {case['rows_s']:>8.1f}  {', '.join(case['hosts'])}")
    print(f"2 workers / 1 worker (rows/s over the chunk phase): {two['rows_s'] / one['rows_s']:.2f}x; "
          f"run wall {one['wall'] / two['wall']:.2f}x; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
