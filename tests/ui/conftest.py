"""UI test fixtures: headless Chromium and where screenshots go (``.local/ui-artifacts``); Airflow's
API app with the Ogiri plugin mounted, a TestClient on it, and the product's stack and ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow_ui import start_chromium
from fastapi.testclient import TestClient
from plugin_client import PARAMS

from ogiri_local.environment import load_deploy_stack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def chromium():
    """A headless Chromium session, quit after the test."""
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def ui_artifacts(request) -> Path:
    """``.local/ui-artifacts/<test name>/``: screenshots a failing (or passing) test leaves behind."""
    path = REPO / ".local" / "ui-artifacts" / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def airflow_app(airflow_db):
    """Airflow's API app with the plugins folder loaded (the auth manager initialised by it)."""
    from airflow.api_fastapi.app import create_app, purge_cached_app

    purge_cached_app()
    app = create_app("core")
    for route in app.routes:
        if getattr(route, "path", None) == "/ogiri":
            route.app.state.reader = None  # a fresh reader (and cache) per test
            break
    else:
        raise AssertionError("the Ogiri plugin app is not mounted at /ogiri")
    return app


@pytest.fixture
def ledger_env(tmp_path, monkeypatch):
    """A fresh SQLite ledger behind the ``ogiri_ledger`` connection."""
    monkeypatch.setenv("AIRFLOW_CONN_OGIRI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "l.db")}))
    from ogiri.ledger import Ledger

    ledger = Ledger.from_connection("ogiri_ledger")
    ledger.ensure_schema()
    return ledger


@pytest.fixture
def product(stack, ledger_env, monkeypatch):
    """The template's stack in the emulator, ``OGIRI_*`` pointing at it, the ledger empty."""
    found = stack(PARAMS)
    for name, value in load_deploy_stack().ogiri_settings(found.outputs).items():
        monkeypatch.setenv(name, value)
    return ledger_env


@pytest.fixture
def client(airflow_app):
    """A TestClient on Airflow's API app (no session until a test sets one)."""
    with TestClient(airflow_app, base_url="http://127.0.0.1") as c:
        yield c
