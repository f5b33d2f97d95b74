"""Issue 12: the landing sensor retries transient errors without extending the landing window."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout

from ogiri.ingest.landing import LandingKeySensor, window_left

RUN_START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def test_window_left_counts_from_the_run_start():
    assert window_left(600, RUN_START, RUN_START + timedelta(seconds=30), try_number=2) == 570
    assert window_left(600, RUN_START, RUN_START + timedelta(seconds=900), try_number=3) == -300
    assert window_left(600, None, RUN_START, try_number=2) == 600
    assert window_left(600, RUN_START, RUN_START + timedelta(seconds=900), try_number=1) == 600  # first try


def sensor(account, key: str, window_s: float) -> LandingKeySensor:
    return LandingKeySensor(
        task_id="wait_for_landing",
        bucket_name=account.bucket,
        bucket_key=key,
        wildcard_match=True,
        aws_conn_id="aws_default",
        deferrable=False,
        poke_interval=0.2,
        timeout=window_s,
        mode="poke",
        retries=2,
    )


def context(tried_after_s: float) -> dict:
    return {
        "dag_run": SimpleNamespace(start_date=RUN_START),
        "ti": SimpleNamespace(start_date=RUN_START + timedelta(seconds=tried_after_s), try_number=2),
    }


def test_a_retry_waits_only_for_what_is_left_of_the_window(account):
    s = sensor(account, "landing/dt=2026-03-01/*.csv", window_s=600)
    started = time.monotonic()
    with pytest.raises(AirflowSensorTimeout):
        s.execute(context(tried_after_s=599))  # a retry 599 s into a 600 s window
    assert time.monotonic() - started < 30  # not another 600 s
    assert s.timeout == pytest.approx(1)


def test_a_try_after_the_window_still_takes_a_file_that_landed(account):
    account.put_csv("landing/dt=2026-03-01/late.csv", "image_url,caption\n")
    sensor(account, "landing/dt=2026-03-01/*.csv", window_s=600).execute(context(tried_after_s=7200))
    with pytest.raises(AirflowSensorTimeout, match="landing window of 600 s"):
        sensor(account, "landing/dt=2026-03-02/*.csv", window_s=600).execute(context(tried_after_s=7200))


def test_only_a_timeout_reports_a_missing_landing(account):
    reported = []
    waiting = sensor(account, "landing/dt=2026-03-05/*.csv", window_s=600)
    waiting.on_timeout = lambda ctx, window: reported.append(window)
    with pytest.raises(AirflowSensorTimeout):
        waiting.execute(context(tried_after_s=599))
    assert reported == [600.0]

    account.put_csv("landing/dt=2026-03-06/a.csv", "image_url,caption\n")
    found = sensor(account, "landing/dt=2026-03-06/*.csv", window_s=600)
    found.on_timeout = lambda ctx, window: reported.append("wrong")
    found.execute(context(tried_after_s=0))
    assert reported == [600.0]
