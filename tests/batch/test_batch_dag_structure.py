"""Structure of the ogiri_batch_caption DAG: tasks, mapping, trigger rules, params, schedule."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "ogiri_batch_caption.py"))
    assert bag.import_errors == {}
    return bag.dags["ogiri_batch_caption"]


def test_tasks_and_order(dag):
    assert set(dag.task_ids) == {
        "plan_input_sets",
        "caption_set",
        "collect_captions",
        "record_captions",
        "report_summary",
    }
    t = dag.task_dict
    assert t["plan_input_sets"].downstream_task_ids == {"caption_set", "collect_captions"}
    assert t["caption_set"].downstream_task_ids == {"collect_captions"}
    assert t["collect_captions"].downstream_task_ids == {"record_captions", "report_summary"}
    assert t["record_captions"].downstream_task_ids == {"report_summary"}


def test_one_retry_safe_deferrable_transform_per_input_set(dag):
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTransformOperator

    from ogiri.batch.operators import RetrySafeTransformOperator

    mapped = dag.task_dict["caption_set"]
    assert mapped.operator_class is RetrySafeTransformOperator
    assert issubclass(RetrySafeTransformOperator, SageMakerTransformOperator)
    assert mapped.partial_kwargs["deferrable"] is True
    assert set(mapped.expand_input.value) == {"config"}  # expanded over the planned job configs
    # The AWS connection and region come from OGIRI_* when the task runs, not when the file is parsed.
    assert mapped.partial_kwargs["aws_conn_id"] == "{{ ogiri_settings().aws_conn_id }}"
    assert mapped.partial_kwargs["region_name"] == "{{ ogiri_settings().region }}"


def test_collect_runs_after_failed_transforms_so_nothing_is_lost(dag):
    assert dag.task_dict["collect_captions"].trigger_rule == "all_done"
    assert dag.task_dict["record_captions"].trigger_rule == "all_success"


def test_owner_retries_tags_docs(dag):
    assert {"ogiri", "batch"} <= set(dag.tags)
    assert "batch transform" in dag.doc_md
    for task in dag.tasks:
        assert task.owner == "ogiri-ml" and task.retries >= 1


def test_nightly_schedule_over_the_previous_day(dag):
    from datetime import UTC, datetime

    from airflow.sdk import CronTriggerTimetable

    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert dag.max_active_runs == 1 and dag.catchup is False
    # The logical date is the run time; the run covers the day before it, scheduled or manual.
    from airflow.serialization.encoders import coerce_to_core_timetable

    core = coerce_to_core_timetable(dag.timetable)
    assert core.summary == "30 3 * * *"
    from datetime import timedelta, timezone

    from ogiri.runs import Run

    def partition(logical_date, run_after=None):
        run = Run.for_key("ogiri_batch_caption:x")
        run.logical_date, run.run_after = logical_date, run_after
        return run.partition_date()

    assert partition(datetime(2026, 3, 5, 3, 30, tzinfo=UTC)) == "2026-03-04"
    assert partition(None, datetime(2026, 3, 5, 12, 0, tzinfo=UTC)) == "2026-03-04"  # manual, no inputs
    assert partition(datetime(2026, 3, 5, 1, 0, tzinfo=timezone(timedelta(hours=9)))) == "2026-03-03"  # UTC day
    assert partition(None) is None


def test_params_are_typed_with_defaults(dag):
    params = dag.params
    assert params["model"] == "champion"
    assert params["input_prefixes"] == [] and params["manifest_uri"] is None
    assert (params["instance_count"], params["beam_width"], params["batch_size"]) == (1, 3, 32)
    assert params["max_concurrent_transforms"] == 2


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("beam_width", 0),
        ("beam_width", 17),
        ("instance_count", 0),
        ("batch_size", "big"),
        ("input_prefixes", "s3://b/x"),
        ("model", ""),
        ("max_concurrent_transforms", 0),
    ],
)
def test_bad_params_are_refused(dag, name, bad):
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError):
        dag.params.get_param(name).resolve(value=bad)
