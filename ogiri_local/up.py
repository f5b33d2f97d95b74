"""``make up``: the local environment plus real Airflow, to click through the UI.

Starts the emulator (with the CloudFormation stack deployed into it), the synthetic image set on a
loopback HTTP server, and Airflow's api-server, scheduler, dag-processor and triggerer — all on
127.0.0.1. Prints the UI address and where the generated admin password is; Ctrl-C stops
everything it started. State lives under ``.local/up/`` and is kept between runs except for the
emulator's in-memory AWS state, which starts empty (the stack is redeployed each time).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Generator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from ogiri_local.airflow_stack import AirflowStack
from ogiri_local.celery_stack import (
    DEFAULT_BROKER_URL,
    CeleryStack,
    ServiceUnreachable,
    ThrowawayDatabases,
    check_broker,
)
from ogiri_local.emulator import REPO
from ogiri_local.environment import LocalEnvironment

ROOT = REPO / ".local" / "up"


def hostile_rows(base_url: str) -> list[tuple[str, str]]:
    """A few rows every real landing has, so the quarantine path (``rejects/``) shows in the UI."""
    return [
        ("file:///etc/passwd", "not a web image"),  # scheme_not_allowed
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),  # host_refused
        (f"{base_url}/no-such-image.jpg", "gone"),  # http_error (404)
        (f"{base_url}/no-such-image-either.jpg", ""),  # empty_caption
        (f"{base_url}/still-missing.jpg", "red \x1b[31malert"),  # caption_control_character
    ]


def _land_recent_days(env: LocalEnvironment, days: int = 3) -> list[str]:
    """One CSV per day for the ``days`` days before today (with a few hostile rows each), so the
    nightly runs have data and rejects."""
    rows = env.synthetic_rows(ROOT / "all.csv")
    today = datetime.now(UTC).date()
    return [
        env.land(today - timedelta(days=days - i), [*rows[i::days], *hostile_rows(env.images.base_url)])
        for i in range(days)
    ]


@contextmanager
def _stack(args: argparse.Namespace, airflow_env: dict[str, str]) -> Generator[AirflowStack]:
    """The LocalExecutor stack (SQLite metadata and ledger under ``.local/up``) or the Celery one
    (throwaway PostgreSQL databases for metadata, Celery results and ledger, dropped on exit)."""
    if args.executor == "local":
        print("starting Airflow (api-server, scheduler, dag-processor, triggerer)…", flush=True)
        with AirflowStack(ROOT / "airflow", env=airflow_env, port=args.port) as stack:
            _create_pools(stack)
            yield stack
        return
    print("starting Airflow on the CeleryExecutor (api-server, scheduler, dag-processor, triggerer, "
          "2 Celery workers)…", flush=True)
    with ThrowawayDatabases("metadata", "results", "ledger") as databases:
        env = {**airflow_env, "AIRFLOW_CONN_OGIRI_LEDGER": databases.connection_uri("ledger")}
        with CeleryStack(ROOT / "airflow-celery", databases, env=env, port=args.port) as stack:
            _create_pools(stack)
            yield stack


def _check_celery_services() -> None:
    """Before anything starts: a missing broker or database is a clear error, not a hang."""
    try:
        check_broker(os.environ.get("OGIRI_CELERY_BROKER_URL", DEFAULT_BROKER_URL))
        with ThrowawayDatabases(admin_url=os.environ.get("OGIRI_POSTGRES_URL")):
            pass
    except ServiceUnreachable as exc:
        raise SystemExit(f"make up EXECUTOR=celery: {exc}") from None


def _create_pools(stack: AirflowStack) -> None:
    """The ``sagemaker`` pool the job tasks run in (``OGIRI_SAGEMAKER_POOL``): K jobs at once."""
    slots = int(os.environ.get("OGIRI_SAGEMAKER_POOL_SLOTS", "2"))
    stack.ensure_pool("sagemaker", slots, "SageMaker jobs running at once (training, evaluation, batch transform)")


def _describe(stack: AirflowStack) -> str:
    if isinstance(stack, CeleryStack):
        return (f"CeleryExecutor, broker {stack.broker_url}, queue {stack.queue}, workers "
                f"{', '.join(stack.hostnames)} (working dirs under {stack.worker_root})")
    return "LocalExecutor (metadata and ledger on SQLite)"


def main(argv: list[str] | None = None) -> None:
    """Start everything, print how to reach it, wait for Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("OGIRI_UP_PORT", "8080")))
    parser.add_argument("--emulator-port", type=int, default=int(os.environ.get("OGIRI_EMULATOR_PORT", "5055")))
    parser.add_argument("--executor", choices=["local", "celery"], default=os.environ.get("EXECUTOR") or "local",
                        help="local: LocalExecutor on SQLite; celery: CeleryExecutor (Redis broker, PostgreSQL, "
                             "two workers)")
    args = parser.parse_args(argv)
    if args.executor == "celery":
        _check_celery_services()
    ROOT.mkdir(parents=True, exist_ok=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    with LocalEnvironment(ROOT / "env", emulator_port=args.emulator_port) as env:
        landed = _land_recent_days(env)
        today = datetime.now(UTC)
        # Nightly runs at 02:00 ingest the day before: starting two days ago schedules the runs of
        # the last three nights, whose partitions are exactly the landed days.
        start = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=2)
        airflow_env = {
            **env.env,
            # Catch up only the last few nights, not the whole year since the DAG's start date.
            "OGIRI_INGEST_START_DATE": start.isoformat(),
            "OGIRI_SAGEMAKER_POLL_SECONDS": "2",
            "OGIRI_DEPLOY_WAIT_INTERVAL_S": "20",  # guarded updates bake 20 s per step locally, not 300
            "OGIRI_LANDING_POKE_S": "10",
            "OGIRI_LANDING_TIMEOUT_S": "900",
            "OGIRI_TRAINING_INSTANCE_TYPE": "ml.m5.xlarge",
            "OGIRI_ENDPOINT_INSTANCE_TYPE": "ml.m5.large",
            "OGIRI_SAGEMAKER_POOL": "sagemaker",
        }
        with _stack(args, airflow_env) as stack:
            print(
                f"\nAirflow UI:     {stack.url}\n"
                f"Ogiri pages:    {stack.url}/ogiri/ingest  (\"Ogiri\" in the UI's navigation)\n"
                f"user:           admin\n"
                f"password file:  {stack.passwords_file}\n"
                f"emulator:       {env.emulator.url}  (AWS endpoint for boto3 / the aws CLI)\n"
                f"images served:  {env.images.base_url}\n"
                f"landed:         {', '.join(landed)}\n"
                f"component logs: {stack.home / 'stack-logs'}\n"
                f"executor:       {_describe(stack)}\n\n"
                "DAGs start paused. Unpause ogiri_train FIRST, then ogiri_ingest: ogiri_train runs on the\n"
                "ogiri_captions asset that each ingest run emits, and Airflow queues asset-triggered runs\n"
                "only for consumers that are unpaused when the event arrives.\n"
                "Press Ctrl-C to stop everything.",
                flush=True,
            )
            try:
                while not stop:
                    for name, proc in stack.procs.items():
                        if proc.poll() is not None:
                            raise SystemExit(f"airflow {name} exited; see {stack.home / 'stack-logs'}")
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
            print("\nstopping…", flush=True)
    print("stopped.")


if __name__ == "__main__":
    main()
