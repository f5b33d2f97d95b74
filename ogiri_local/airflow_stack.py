"""Run real Airflow 3 (api-server, scheduler, dag-processor, triggerer) on loopback only.

Used by ``make up`` and the real-scheduler end-to-end test. Unlike ``airflow standalone`` every
component is started here with its log-serving side process skipped, because Airflow's log server
binds every interface and this stack must only ever listen on 127.0.0.1 (LocalExecutor writes the
task logs to local files, which the api-server reads directly).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ogiri_local.emulator import REPO, free_port

COMPONENTS = {
    "api-server": ["api-server", "--host", "127.0.0.1", "--port", "{port}"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}


class AirflowStack:
    """Airflow on ``http://127.0.0.1:<port>`` with its own ``AIRFLOW_HOME`` and metadata DB."""

    def __init__(
        self,
        home: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
        sql_alchemy_conn: str | None = None,
    ):
        """``sql_alchemy_conn`` defaults to SQLite under ``home``; pass PostgreSQL for backfills
        created through the API while the scheduler runs (Airflow refuses those on SQLite)."""
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.passwords_file = self.home / "simple_auth_manager_passwords.json.generated"
        bin_dir = str(Path(sys.executable).parent)
        self.env = dict(os.environ)
        self.env.update(
            {
                "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # A real deployment's defaults, even when started from a test session.
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                # Every component must sign and verify the same task tokens and sessions.
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn or f"sqlite:///{self.home}/airflow.db",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            }
        )
        self.env.update(env or {})
        self.procs: dict[str, subprocess.Popen] = {}
        self._token: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 180.0) -> AirflowStack:
        """Migrate the DB, start every component, wait until the API answers."""
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        logs = self.logs
        for name, argv in COMPONENTS.items():
            self.spawn(name, [a.format(port=self.port) for a in argv])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"airflow {name} exited: see {logs / (name + '.log')}")
            try:
                health = self.request("GET", "/api/v2/monitor/health", auth=False)
                if health.get("metadatabase", {}).get("status") == "healthy":
                    return self
            except OSError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"Airflow API not healthy within {timeout:.0f} s (logs in {logs})")

    @property
    def logs(self) -> Path:
        """The folder holding one ``<component>.log`` per process started."""
        path = self.home / "stack-logs"
        path.mkdir(exist_ok=True)
        return path

    def spawn(self, name: str, argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None):
        """Start ``airflow <argv>`` in its own session as component ``name`` (output in its log)."""
        out = open(self.logs / f"{name}.log", "w")  # noqa: SIM115 - handed to the child process
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "airflow", *argv],
            env=env or self.env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        return self.procs[name]

    def __enter__(self) -> AirflowStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop every component and the processes they started (each runs in its own session)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        self.procs.clear()

    # -- REST API v2 ---------------------------------------------------------------------------
    def ensure_pool(self, name: str, slots: int, description: str, *, include_deferred: bool = True) -> dict:
        """Create (or resize) pool ``name``; deferred tasks hold their slot unless told otherwise
        (a deferrable SageMaker operator waits for its job in the triggerer, and still counts)."""
        body = {"name": name, "slots": slots, "description": description, "include_deferred": include_deferred}
        try:
            return self.request("POST", "/api/v2/pools", body)
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise
            return self.request("PATCH", f"/api/v2/pools/{name}", body)

    @property
    def password(self) -> str:
        """The generated password of the ``admin`` user."""
        return json.loads(self.passwords_file.read_text())["admin"]

    def token(self) -> str:
        """A JWT from ``POST /auth/token`` (cached)."""
        if self._token is None:
            body = {"username": "admin", "password": self.password}
            self._token = self.request("POST", "/auth/token", body, auth=False)["access_token"]
        return self._token

    def request(self, method: str, path: str, body: dict | None = None, *, auth: bool = True) -> dict:
        """Call the API and return the decoded JSON (raises ``urllib.error.HTTPError`` with the body)."""
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise urllib.error.HTTPError(exc.url, exc.code, f"{exc.reason}: {detail}", exc.headers, None) from None
        return json.loads(raw) if raw else {}
