"""In-process moto (``mock_aws``) behind the Airflow AWS connection, for unit tiers that do not need
the emulator (tests/conftest.py puts this folder on ``sys.path``)."""

from __future__ import annotations

import json
from pathlib import Path


def use_inprocess_moto(monkeypatch, ledger_path: Path | None = None) -> None:
    """Point ``aws_default`` at in-process moto (``mock_aws``) instead of the emulator and, with
    ``ledger_path``, the run ledger at a SQLite file."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(
        {"conn_type": "aws", "login": "testing", "password": "testing", "extra": {"region_name": "us-east-1"}}))
    if ledger_path is not None:
        monkeypatch.setenv("AIRFLOW_CONN_OGIRI_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(ledger_path)}))
