"""The ``ogiri_label`` trigger form: every per-run choice and its default, in one place.

An empty ``source_dates`` means the ``lookback_days`` days before the run's date (the week before, for
the weekly schedule); :data:`SETTING_DEFAULTS` names the Params that fall back to a setting.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from ogiri.runs import form_values

TASKS = ("caption", "rate")

PARAMS = {
    "task": Param("rate", type="string", enum=list(TASKS), title="Task",
                  description="caption: people write captions for images with fewer than min_captions; "
                  "rate: people rate the latest batch captions with the lowest scores, plus an audit sample "
                  "of accepted captions, for fit and humour (1-5)."),
    "max_objects": Param(50, type="integer", minimum=1, maximum=10000, title="Max data objects",
                         description="At most this many images (caption) or captions (rate) go to people."),
    "min_captions": Param(2, type="integer", minimum=1, maximum=20, title="Min captions (caption)",
                          description="caption task: images with fewer captions than this are selected."),
    "audit_fraction": Param(0.2, type="number", minimum=0, maximum=1, title="Audit fraction (rate)",
                            description="rate task: share of max_objects drawn at random (deterministic per "
                            "run) from accepted captions of the source dates, to audit them."),
    "source_dates": Param([], type="array", items={"type": "string", "format": "date"},
                          title="Source dates",
                          description="Ingest dates (YYYY-MM-DD) to select from. Empty: the lookback_days "
                          "days before the run's date."),
    "lookback_days": Param(7, type="integer", minimum=1, maximum=90, title="Lookback days",
                           description="With no source dates: select from this many days before the run's date "
                           "(7 = the week before, for the weekly schedule)."),
    "workers_per_object": Param(3, type="integer", minimum=1, maximum=9, title="Workers per object",
                                description="NumberOfHumanWorkersPerDataObject."),
    "task_time_limit_s": Param(300, type="integer", minimum=30, maximum=28800, title="Task time limit (s)",
                               description="TaskTimeLimitInSeconds: how long one worker has for one object."),
    "task_availability_s": Param(864000, type="integer", minimum=60, maximum=864000,
                                 title="Task availability (s)",
                                 description="TaskAvailabilityLifetimeInSeconds: after this, unanswered "
                                 "objects expire (default 10 days)."),
}

#: Params that fall back to a setting when empty (none today: the workteam is a deployment constant).
SETTING_DEFAULTS: dict[str, str] = {}


def form_defaults(**overrides: Any) -> dict[str, Any]:
    """What an untouched form submits, with ``overrides`` (for tests and scripts)."""
    return form_values(PARAMS, **overrides)
