"""Structure of the ogiri_label DAG: tasks in order, the operator, the form, the schedule knob."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load(monkeypatch=None, schedule=None):
    from airflow.dag_processing.dagbag import DagBag

    if monkeypatch is not None:
        monkeypatch.setenv("OGIRI_LABEL_SCHEDULE", schedule)
    bag = DagBag(dag_folder=str(REPO / "dags" / "ogiri_label.py"))
    assert bag.import_errors == {}
    return bag.dags["ogiri_label"]


@pytest.fixture(scope="module")
def dag():
    return _load()


def test_tasks_in_order(dag):
    order = ["select_objects", "write_manifest", "label_objects", "ingest_labels", "write_report", "record_labeling"]
    assert set(dag.task_ids) == set(order)
    for up, down in zip(order, order[1:], strict=False):
        assert down in dag.task_dict[up].downstream_task_ids


def test_one_deferrable_re_attaching_labeling_job(dag):
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    from ogiri.label.operators import GroundTruthLabelingOperator

    op = dag.task_dict["label_objects"]
    assert isinstance(op, GroundTruthLabelingOperator) and op.aws_hook_class is SageMakerHook
    assert op.deferrable is True
    assert op.aws_conn_id == "{{ ogiri_settings().aws_conn_id }}"


def test_record_emits_the_captions_asset(dag):
    from ogiri.assets import CAPTIONS_ASSET_NAME

    assert [o.name for o in dag.task_dict["record_labeling"].outlets] == [CAPTIONS_ASSET_NAME]


def test_form_owner_retries_tags_docs_and_manual_by_default(dag):
    assert set(dag.params) >= {"task", "max_objects", "min_captions", "audit_fraction", "source_dates",
                               "workers_per_object", "task_time_limit_s"}
    assert dag.params.get_param("task").schema["enum"] == ["caption", "rate"]
    assert {"ogiri", "labeling"} <= set(dag.tags) and "Ground Truth" in dag.doc_md
    for task in dag.tasks:
        assert task.owner == "ogiri-ml" and task.retries >= 1
    assert type(dag.timetable).__name__ == "NullTimetable"  # manual only unless OGIRI_LABEL_SCHEDULE is set


def test_schedule_knob_weekly_and_a_bad_value_falls_back_to_manual(monkeypatch):
    assert _load(monkeypatch, "0 6 * * 1").timetable.expression == "0 6 * * 1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert type(_load(monkeypatch, "not a cron").timetable).__name__ == "NullTimetable"
