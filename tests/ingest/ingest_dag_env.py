"""Constants and DAG helpers shared by the ingestion tests.

A module of its own (not ``conftest``): ``from conftest import ...`` resolves to whichever test
folder's conftest pytest loaded last, so it broke when tests/ingest ran beside tests/batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "ogiri_ingest.py"
BUCKET = "ogiri-test"
TABLE = "ogiri-test-captions"


def load_dag():
    """Parse the DAG file now (module-level env such as the sensor timeout is read at parse time)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags["ogiri_ingest"]


def run_dag(dag, day: int, **conf):
    """``dag.test()`` for 2026-01-``day`` 02:00 UTC; the run and ``task_id -> [states]``."""
    dr = dag.test(logical_date=datetime(2026, 1, day, 2, 0, tzinfo=UTC), run_conf=conf or None)
    states = {}
    for ti in dr.get_task_instances():
        states.setdefault(ti.task_id, []).append(ti.state)
    return dr, states
