"""The landing sensor: the Amazon provider's ``S3KeySensor`` with one wait budget per run.

A plain sensor's ``timeout`` restarts with every try, so giving it retries (for a transient S3
error while it waits) would stretch a 6 h landing window to 18 h. :class:`LandingKeySensor` keeps
the retries and measures the window from the DAG run's start: a retry waits only for what is left
of it. A try that starts after the window still looks once (a late file is taken), then times out;
a timeout fails without retry, as for any sensor.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk.exceptions import AirflowSensorTimeout


def window_left(
    window_s: float, run_started: datetime | None, try_started: datetime | None, try_number: int = 2
) -> float:
    """Seconds of the landing window left when this try started: the whole window for a first try
    (or when a time is unknown), else what the earlier tries since the run's start left."""
    if try_number <= 1 or run_started is None or try_started is None or try_started < run_started:
        return window_s
    return window_s - (try_started - run_started).total_seconds()


class LandingKeySensor(S3KeySensor):
    """``S3KeySensor`` whose ``timeout`` is the run's landing window, shared by all its tries."""

    def __init__(self, *, timeout: float, **kwargs):
        super().__init__(timeout=timeout, **kwargs)
        self.landing_window_s = float(timeout)

    def execute(self, context) -> None:
        """Wait for what is left of the window (a retry does not start it again)."""
        dag_run, ti = context.get("dag_run"), context.get("ti")
        left = window_left(
            self.landing_window_s,
            getattr(dag_run, "start_date", None),
            getattr(ti, "start_date", None),
            int(getattr(ti, "try_number", 1) or 1),
        )
        if left <= 0:
            if self.poke(context):
                return
            raise AirflowSensorTimeout(
                f"landing window of {self.landing_window_s:g} s since the run started is over; nothing landed"
            )
        if left < self.landing_window_s:
            self.log.info("Retry: %.0f s of the %g s landing window left", left, self.landing_window_s)
        self.timeout = left
        super().execute(context)
