"""The hour one ``ogiri_monitor`` run checks, and where its capture, report and job live.

A run checks one whole UTC hour: by default the hour **before** its logical date's hour. With the
default ``CronTriggerTimetable("0 * * * *", interval=1h)`` the logical date is the run's time (e.g.
15:00), its data interval is 14:00–15:00, and that is the window; a cron that fires later in the
hour (``"15 * * * *"``, for late capture files) still checks the previous whole hour. A backfill of
a logical date checks the hour before it; the ``window_start`` Param names an hour directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ogiri.naming import resource_name

HOUR = timedelta(hours=1)


def floor_hour(when: datetime) -> datetime:
    """``when`` in UTC, truncated to its hour (a naive time is taken as UTC)."""
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return when.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Window:
    """One endpoint's capture hour ``[start, start + 1h)``."""

    endpoint: str
    start: datetime

    @classmethod
    def for_run(cls, endpoint: str, *, window_start: str | None, logical_date: datetime | None,
                run_after: datetime | None = None) -> Window:
        """The hour named by ``window_start`` (ISO, e.g. ``2026-12-07T15``), else the hour before the
        logical date's hour (or the run-after time's, for a run without a logical date)."""
        if window_start:
            return cls(endpoint, floor_hour(datetime.fromisoformat(window_start)))
        when = logical_date or run_after
        if when is None:
            raise ValueError("a monitoring window needs window_start or the run's logical date")
        return cls(endpoint, floor_hour(when) - HOUR)

    @property
    def end(self) -> datetime:
        """The exclusive end of the hour."""
        return self.start + HOUR

    @property
    def label(self) -> str:
        """``YYYY-MM-DDTHH``: the window's name in S3 paths."""
        return self.start.strftime("%Y-%m-%dT%H")

    def capture_prefix(self, destination: str, variant: str) -> str:
        """``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/``: where SageMaker writes this hour's capture."""
        return f"{destination.rstrip('/')}/{self.endpoint}/{variant}/{self.start:%Y/%m/%d/%H}/"

    def report_prefix(self, settings: Any) -> str:
        """``s3://<bucket>/monitoring/<endpoint>/<YYYY-MM-DDTHH>/``: the job's report and violations."""
        return settings.s3_uri(f"monitoring/{self.endpoint}/{self.label}/")

    def as_dict(self) -> dict[str, str]:
        """ISO-8601 UTC start and end (``2026-12-07T15:00:00+00:00``) and the label."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "label": self.label}


def job_name(run_key: str) -> str:
    """The run's Processing job (deterministic: a retry or rerun of the run re-attaches to it)."""
    return resource_name("ogiri-monitor", run_key)
