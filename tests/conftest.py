"""Shared test setup: an isolated Airflow home, and the local AWS emulator as a session fixture.

Environment is set at import time, before anything imports Airflow, so no test ever touches a
user's ~/airflow or a real AWS account.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from ogiri_local.emulator import Emulator
from ogiri_local.environment import load_deploy_stack

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


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """The emulator for the whole session (IAM enforced), wired in as the ``aws_default`` connection.

    The connection signs with the admin keys; tests that run as the stack's principals use ``stack``.

    Only the connection points at it (as in a user's local setup): ``AWS_ENDPOINT_URL`` is not set
    in this process, so code that bypasses the connection would reach for real AWS and fail.
    """
    emu = Emulator(tmp_path_factory.mktemp("localaws"), enforce_iam=True)
    conn = emu.aws_connection()
    saved = {k: os.environ.get(k) for k in ("AIRFLOW_CONN_AWS_DEFAULT",)}
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
def postgres_metadata_db():
    """A throwaway PostgreSQL database for a real Airflow stack's metadata, dropped afterwards.

    Backfills created through the API or the UI while the scheduler runs need more than SQLite.
    """
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"ogiri_e2e_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(autouse=True)
def _emulator_env_only_where_used(request, monkeypatch):
    """Tests that do not use the emulator (e.g. in-process ``mock_aws``) must not inherit its URL."""
    if "emulator" not in request.fixturenames:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)


@pytest.fixture
def aws(emulator):
    """The emulator, reset to an empty account for this test, enforcing IAM (the session default,
    whatever an earlier test switched)."""
    emulator.reset()
    emulator.enforce_iam(True)
    return emulator


@dataclass
class Stack:
    """``infra/ogiri.yaml`` deployed into the emulator, with keys for each principal."""

    outputs: dict[str, str]
    principals: dict[str, dict[str, str]]


@pytest.fixture
def stack(aws, monkeypatch):
    """Deploy ``infra/ogiri.yaml`` (or a copy) into the reset emulator; ``aws_default`` = worker keys.

    Call it with the template parameters (and optionally ``template_path``); the admin keys stay
    for set-up and assertions through ``aws.client``.
    """
    deploy_stack = load_deploy_stack()
    admin = {"endpoint_url": aws.url, "region": "us-east-1"}
    aws.enforce_iam(True)  # whatever an earlier test left

    def deploy(params: dict[str, str], template_path: Path | None = None, name: str = "ogiri-test") -> Stack:
        template = {"template_path": template_path} if template_path else {}
        outputs = deploy_stack.deploy(name, params, poll_s=0.1, timeout_s=60, **template, **admin)
        found = Stack(outputs, deploy_stack.local_principals(outputs, name, **admin))
        conn = aws.aws_connection(keys=found.principals["airflow-worker"])
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
        return found

    return deploy
