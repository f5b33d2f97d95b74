"""Browser-test fixtures: headless Chromium, and where screenshots go (``.local/ui-artifacts``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow_ui import start_chromium

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
