"""Shape of the ``ogiri_monitor`` DAG: hourly schedule and window, params, wiring, trigger rules, operators."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "ogiri_monitor.py"))
    assert bag.import_errors == {}
    return bag.dags["ogiri_monitor"]


@pytest.fixture(scope="module")
def dag():
    return _load()


def down(dag, task_id):
    return dag.task_dict[task_id].downstream_task_ids


def test_hourly_cron_whose_data_interval_is_the_hour_before_the_logical_date(dag):
    from airflow.sdk import CronTriggerTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable

    from ogiri.monitor.window import Window

    assert isinstance(dag.timetable, CronTriggerTimetable) and not dag.catchup
    core = coerce_to_core_timetable(dag.timetable)
    assert core.summary == "0 * * * *"
    logical = datetime(2026, 12, 7, 15, tzinfo=UTC)
    interval = core.infer_manual_data_interval(run_after=logical)
    assert (interval.start, interval.end) == (logical - timedelta(hours=1), logical)
    # The window the tasks check is that same hour (and the previous whole hour for a later cron minute).
    window = Window.for_run("ep", window_start=None, logical_date=logical)
    assert (window.start, window.end) == (interval.start, interval.end)
    assert Window.for_run("ep", window_start=None, logical_date=logical + timedelta(minutes=15)).start == \
        interval.start


def test_cron_knob_and_a_bad_value_falls_back_with_a_warning(monkeypatch):
    from ogiri.config import parse_knobs

    monkeypatch.setenv("OGIRI_MONITOR_CRON", "15 * * * *")
    assert parse_knobs().monitor_cron == "15 * * * *"
    monkeypatch.setenv("OGIRI_MONITOR_CRON", "every hour")
    with pytest.warns(UserWarning, match="OGIRI_MONITOR_CRON"):
        assert parse_knobs().monitor_cron == "0 * * * *"


def test_typed_params_with_titles(dag):
    from airflow.sdk.exceptions import ParamValidationError

    p = dag.params
    assert set(p) == {"endpoint_name", "window_start", "max_images", "psi_threshold", "js_threshold",
                      "distance_threshold"}
    for name, param in p.items():
        assert param.schema.get("title"), name
    assert p["endpoint_name"] is None and p["window_start"] is None and p["max_images"] == 200
    window = copy.deepcopy(p.get_param("window_start"))
    window.resolve("2026-12-07T15")
    window.resolve("2026-12-07T15:00:00+00:00")
    with pytest.raises(ParamValidationError):
        window.resolve("yesterday")
    psi = copy.deepcopy(p.get_param("psi_threshold"))
    with pytest.raises(ParamValidationError):
        psi.resolve(0)


def test_wiring(dag):
    assert down(dag, "resolve_serving_model") >= {"wait_for_capture", "configure_monitoring"}
    assert down(dag, "wait_for_capture") == {"record_empty_window", "package_code"}
    assert down(dag, "package_code") == {"configure_monitoring"}
    assert down(dag, "configure_monitoring") == {"monitor_window"}
    assert down(dag, "monitor_window") == {"record_window", "record_failed_window"}
    assert down(dag, "record_window") >= {"publish_metrics", "check_violation", "compose_alert", "record_alert"}
    assert down(dag, "publish_metrics") == {"check_violation"}
    assert down(dag, "check_violation") == {"compose_alert"}
    assert down(dag, "compose_alert") == {"publish_alert"}
    assert down(dag, "publish_alert") == {"record_alert"}
    assert down(dag, "record_alert") == set() and down(dag, "record_empty_window") == set()


def test_trigger_rules_make_an_empty_window_a_green_run(dag):
    t = dag.task_dict
    assert t["wait_for_capture"].soft_fail is True  # a timeout skips; an S3 error fails
    assert t["record_empty_window"].trigger_rule == "all_skipped"
    assert t["record_failed_window"].trigger_rule == "one_failed"
    assert t["record_empty_window"].upstream_task_ids == {"wait_for_capture"}


def test_provider_operators_and_the_drift_outlet(dag):
    from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
    from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

    from ogiri.jobs import ReattachingProcessingOperator

    t = dag.task_dict
    assert isinstance(t["wait_for_capture"], S3KeySensor) and t["wait_for_capture"].wildcard_match
    assert isinstance(t["monitor_window"], ReattachingProcessingOperator) and t["monitor_window"].deferrable
    assert isinstance(t["publish_alert"], SnsPublishOperator)
    assert [(a.name, a.uri) for a in t["record_alert"].outlets] == [("ogiri_drift", "x-ogiri://drift")]
