"""Shared test setup: an isolated Airflow home, and the local AWS emulator as a session fixture.

Environment is set at import time, before anything imports Airflow, so no test ever touches a
user's ~/airflow or a real AWS account.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="ogiri-airflow-home-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # Never reach real AWS from tests, whatever the developer's shell has.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "NO_PROXY": "127.0.0.1,localhost",
    }
)
for _var in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    """A running `python -m localaws serve` process."""

    def __init__(self, home: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home
        self.log_path = home / "localaws.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, LOCALAWS_HOME=str(home), PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "localaws", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited early:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_localaws/health", timeout=1) as r:
                    if json.load(r).get("status") == "ok":
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"emulator not healthy in 30 s:\n{self.log_path.read_text()}")

    def reset(self) -> None:
        """Drop all emulated AWS state (moto reset) and clear injected faults."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()
        req = urllib.request.Request(f"{self.url}/_localaws/faults", method="DELETE")
        urllib.request.urlopen(req, timeout=10).close()

    def inject(self, **fault) -> None:
        """Add a fault rule (see docs/interfaces.md)."""
        req = urllib.request.Request(
            f"{self.url}/_localaws/faults",
            data=json.dumps(fault).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(req, timeout=10).close()

    def client(self, service: str, **kwargs):
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1", **kwargs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """The emulator for the whole session; also wires `aws_default` and boto3 to it."""
    emu = Emulator(tmp_path_factory.mktemp("localaws"))
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"region_name": "us-east-1", "endpoint_url": emu.url},
    }
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AIRFLOW_CONN_AWS_DEFAULT")}
    os.environ["AWS_ENDPOINT_URL"] = emu.url
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(conn)
    try:
        yield emu
    finally:
        emu.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def airflow_db():
    """The isolated Airflow metadata DB (SQLite under the test AIRFLOW_HOME), migrated once.

    Needed by ``dag.test()`` runs. Migrating in a subprocess keeps this process's Airflow
    settings untouched until the tests import them.
    """
    marker = _AIRFLOW_HOME / ".migrated"
    if not marker.exists():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
        )
        marker.touch()
    return _AIRFLOW_HOME


@pytest.fixture
def aws(emulator):
    """The emulator, reset to an empty account for this test."""
    emulator.reset()
    return emulator
