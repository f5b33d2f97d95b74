"""``OGIRI_SAGEMAKER_POOL``: every task that runs a SageMaker job, and only those, runs in that pool."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
JOB_TASKS = {
    "ogiri_train": {"train_model", "tune_model", "evaluate_models"},
    "ogiri_batch_caption": {"caption_set"},
}


def _pools(dag_id: str) -> dict[str, str]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert bag.import_errors == {}, bag.import_errors
    return {task.task_id: task.pool for task in bag.dags[dag_id].tasks}


@pytest.mark.parametrize("dag_id", sorted(JOB_TASKS))
def test_job_tasks_run_in_the_configured_pool(dag_id, monkeypatch):
    monkeypatch.setenv("OGIRI_SAGEMAKER_POOL", "sagemaker")
    pools = _pools(dag_id)
    assert {t for t, pool in pools.items() if pool == "sagemaker"} == JOB_TASKS[dag_id]
    assert {pool for t, pool in pools.items() if t not in JOB_TASKS[dag_id]} == {"default_pool"}


@pytest.mark.parametrize("dag_id", sorted(JOB_TASKS))
def test_without_the_setting_every_task_is_in_the_default_pool(dag_id, monkeypatch):
    monkeypatch.delenv("OGIRI_SAGEMAKER_POOL", raising=False)
    assert set(_pools(dag_id).values()) == {"default_pool"}
