"""The local Airflow stack on the CeleryExecutor: a Redis broker, PostgreSQL, two Celery workers.

Used by ``make up EXECUTOR=celery`` and the Celery end-to-end tests. What a distributed deployment
(MWAA, the ``celery`` docker-compose profile) changes is made real here:

* the broker is the local Redis (``OGIRI_CELERY_BROKER_URL``, default ``redis://127.0.0.1:6379/0``;
  RabbitMQ works too: ``amqp://guest:guest@127.0.0.1:5672//``);
* the Airflow metadata, the Celery result backend and the run ledger are throwaway PostgreSQL
  databases (:class:`ThrowawayDatabases`, created on start and dropped on exit), never SQLite files;
* every worker runs in its own temporary working directory with its own ``HOME``, ``TMPDIR`` and
  ``AIRFLOW_HOME``, under its own hostname (Celery ``-H`` and Airflow's ``hostname_callable``), so
  a task that relied on a file another task left on "the" disk fails here as it would on AWS.
  Only the task-log folder is shared, as the official compose file shares its ``logs`` volume.

Each stack uses its own Celery queue, so stacks of several sessions can share one Redis.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from ogiri_local.airflow_stack import AirflowStack

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: How to start each service when it is not reachable (said in the error).
START_HINTS = {
    "redis": "redis-server --bind {host} --port {port} --daemonize yes   (or: sudo service redis-server start)",
    "amqp": "sudo service rabbitmq-server start   (listens on {host}:{port}, user guest/guest)",
    "postgresql": "sudo service postgresql start   (trust auth for user postgres on {host}:{port})",
}
DEFAULT_PORTS = {"redis": 6379, "amqp": 5672, "postgresql": 5432}


class ServiceUnreachable(RuntimeError):
    """A service the Celery stack needs does not answer; the message says how to start it."""


def _unreachable(what: str, url: str, scheme: str, exc: BaseException) -> ServiceUnreachable:
    parts = urlsplit(url)
    hint = START_HINTS[scheme].format(host=parts.hostname or "127.0.0.1", port=parts.port or DEFAULT_PORTS[scheme])
    return ServiceUnreachable(
        f"{what} at {url} is not reachable ({exc}). Start it with:\n    {hint}\n"
        f"or point OGIRI_CELERY_BROKER_URL / OGIRI_POSTGRES_URL at a running one."
    )


def check_broker(url: str, timeout: float = 3.0) -> None:
    """Raise :class:`ServiceUnreachable` unless the broker answers (Redis ``PING``; AMQP protocol header)."""
    parts = urlsplit(url)
    scheme = "amqp" if parts.scheme.startswith("amqp") or parts.scheme == "pyamqp" else "redis"
    port = parts.port or (5672 if scheme == "amqp" else 6379)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n" if scheme == "redis" else b"AMQP\x00\x00\x09\x01")
            answer = sock.recv(16)
    except OSError as exc:
        raise _unreachable("the Celery broker", url, scheme, exc) from None
    expected = b"+PONG" if scheme == "redis" else b"\x01\x00"
    if not answer.startswith(expected) and not (scheme == "redis" and answer.startswith(b"-NOAUTH")):
        raise _unreachable("the Celery broker", url, scheme, OSError(f"unexpected answer {answer!r}"))


class ThrowawayDatabases:
    """PostgreSQL databases created for one stack and dropped (``WITH (FORCE)``) when it ends.

    ``with ThrowawayDatabases("metadata", "results", "ledger") as dbs: dbs["ledger"]`` is a
    ``postgresql://`` URL; :meth:`sqlalchemy` gives the ``postgresql+psycopg2://`` form.
    """

    def __init__(self, *purposes: str, admin_url: str | None = None):
        self.admin_url = admin_url or os.environ.get("OGIRI_POSTGRES_URL", DEFAULT_POSTGRES_URL)
        suffix = uuid.uuid4().hex[:10]
        self.names = {purpose: f"ogiri_{purpose}_{suffix}" for purpose in purposes}
        self._admin = None

    def __getitem__(self, purpose: str) -> str:
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{self.names[purpose]}"

    def connection_uri(self, purpose: str) -> str:
        """The database as an Airflow ``postgres`` connection URI (e.g. ``AIRFLOW_CONN_OGIRI_LEDGER``)."""
        return self[purpose].replace("postgresql://", "postgres://", 1)

    def sqlalchemy(self, purpose: str) -> str:
        """The database URL as SQLAlchemy wants it (psycopg2 driver)."""
        return self[purpose].replace("postgresql://", "postgresql+psycopg2://", 1)

    def __enter__(self) -> ThrowawayDatabases:
        import psycopg2

        try:
            self._admin = psycopg2.connect(self.admin_url, connect_timeout=5)
        except psycopg2.OperationalError as exc:
            raise _unreachable("PostgreSQL", self.admin_url, "postgresql", exc) from None
        self._admin.autocommit = True
        with self._admin.cursor() as cur:
            for name in self.names.values():
                cur.execute(f'CREATE DATABASE "{name}"')
        return self

    def __exit__(self, *exc) -> None:
        if self._admin is None:
            return
        with self._admin.cursor() as cur:
            for name in self.names.values():
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin.close()
        self._admin = None


class CeleryStack(AirflowStack):
    """:class:`AirflowStack` on the CeleryExecutor with ``workers`` Celery workers.

    ``databases`` must hold ``metadata`` and ``results`` (see :class:`ThrowawayDatabases`); the
    ledger connection is the caller's (``env``). Worker ``i`` is component ``worker-<i>`` with
    hostname :attr:`hostnames` ``[i - 1]``.
    """

    def __init__(self, home: Path, databases: ThrowawayDatabases, env: dict[str, str] | None = None,
                 port: int | None = None, *, workers: int = 2, concurrency: int = 2, broker_url: str | None = None):
        super().__init__(home, env=env, port=port, sql_alchemy_conn=databases.sqlalchemy("metadata"))
        self.broker_url = broker_url or os.environ.get("OGIRI_CELERY_BROKER_URL", DEFAULT_BROKER_URL)
        tag = uuid.uuid4().hex[:8]
        self.queue = f"ogiri-{tag}"
        self.hostnames = [f"ogiri-worker-{i}-{tag}" for i in range(1, workers + 1)]
        self.concurrency = concurrency
        self.worker_root = Path(tempfile.mkdtemp(prefix="ogiri-celery-workers-"))
        self.env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + databases["results"],
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "ogiri_local.hostname.worker_hostname",
            }
        )
        self.env.update(env or {})

    def worker_env(self, hostname: str) -> tuple[dict[str, str], Path]:
        """The environment and working directory of one worker: nothing shared but the log folder."""
        root = self.worker_root / hostname
        for sub in ("home", "tmp", "airflow"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        env = dict(self.env)
        env.update({"HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), "AIRFLOW_HOME": str(root / "airflow"),
                    "OGIRI_WORKER_HOSTNAME": hostname})
        return env, root

    def start_worker(self, index: int):
        """Start (or restart) worker ``index`` (1-based) and return its process."""
        hostname = self.hostnames[index - 1]
        env, cwd = self.worker_env(hostname)
        argv = ["celery", "worker", "--queues", self.queue, "--concurrency", str(self.concurrency),
                "--celery-hostname", hostname, "--skip-serve-logs", "--without-mingle", "--without-gossip"]
        return self.spawn(f"worker-{index}", argv, env=env, cwd=cwd)

    def start(self, timeout: float = 180.0) -> CeleryStack:
        """Check the broker, start the Airflow components, then the workers; wait until each is ready."""
        check_broker(self.broker_url)
        super().start(timeout=timeout)
        try:
            for index in range(1, len(self.hostnames) + 1):
                self.start_worker(index)
            for index in range(1, len(self.hostnames) + 1):
                self.wait_worker_ready(index, timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_worker_ready(self, index: int, timeout: float = 120.0) -> None:
        """Wait for worker ``index``'s ``celery@<hostname> ready.`` line (raise if it exits first)."""
        name = f"worker-{index}"
        log = self.logs / f"{name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"celery {name} exited: see {log}")
            if log.exists() and f"@{self.hostnames[index - 1]} ready." in log.read_text(errors="replace"):
                return
            time.sleep(1)
        raise RuntimeError(f"celery {name} not ready within {timeout:.0f} s: see {log}")

    def stop(self) -> None:
        """Stop every process, then remove the workers' temporary directories."""
        super().stop()
        shutil.rmtree(self.worker_root, ignore_errors=True)
