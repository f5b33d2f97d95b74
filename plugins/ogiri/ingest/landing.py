"""The landing sensor: the Amazon provider's ``S3KeySensor`` with one wait budget per run.

A plain sensor's ``timeout`` restarts with every try, so giving it retries (for a transient S3
error while it waits) would stretch a 6 h landing window to 18 h. :class:`LandingKeySensor` keeps
the retries and measures the window from the DAG run's start: a retry waits only for what is left
of it. A try that starts after the window still looks once (a late file is taken), then times out;
a timeout fails without retry, as for any sensor.

**Only a timeout is reported as a missing landing.** When the window runs out (poke mode, the
deferred trigger's timeout, or a retry that starts after it), the sensor writes the run's
``missing_landing`` ledger row and logs why, then fails. An earlier task's failure, or an S3 error
that outlives the retries, is not mistaken for a missing drop, and normal runs carry no
always-skipped report task (this replaces a ``one_failed`` report task downstream of the sensor).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk.exceptions import AirflowSensorTimeout


def window_left(
    window_s: float, run_started: datetime | None, try_started: datetime | None, *, try_number: int
) -> float:
    """Seconds of the landing window left when this try started: the whole window for a first try
    (or when a time is unknown), else what the earlier tries since the run's start left."""
    if try_number <= 1 or run_started is None or try_started is None or try_started < run_started:
        return window_s
    return window_s - (try_started - run_started).total_seconds()


class LandingKeySensor(S3KeySensor):
    """``S3KeySensor`` whose ``timeout`` is the run's landing window, shared by all its tries."""

    def __init__(self, *, timeout: float, on_timeout: Callable[[Any, float], None] | None = None, **kwargs):
        super().__init__(timeout=timeout, **kwargs)
        self.landing_window_s = float(timeout)
        #: ``on_timeout(context, window_s)``: called once when the window ran out, before failing.
        self.on_timeout = on_timeout

    def execute(self, context) -> None:
        """Wait for what is left of the window; on timeout, report it and fail."""
        try:
            self._wait(context)
        except AirflowSensorTimeout:
            self._report_timeout(context)
            raise

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context):
        """The deferred wait's end; its timeout (``TaskDeferralTimeout``) arrives here as a sensor timeout."""
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout:
            self._report_timeout(context)
            raise

    def _report_timeout(self, context) -> None:
        if self.on_timeout is not None:
            self.on_timeout(context, self.landing_window_s)

    def _wait(self, context) -> None:
        """Wait for what is left of the window (a retry does not start it again)."""
        dag_run, ti = context.get("dag_run"), context.get("ti")
        left = window_left(
            self.landing_window_s,
            getattr(dag_run, "start_date", None),
            getattr(ti, "start_date", None),
            try_number=int(getattr(ti, "try_number", 1) or 1),
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
