"""``make demo``'s labeling step: one ``ogiri_label`` ``rate`` job over the batch captions.

Call :func:`run_rate_job` after ``ogiri_batch_caption`` in ``ogiri_local/demo.py`` and print what
:func:`format_summary` returns. The emulator's simulated workforce answers the job (its default
oracle rates from the image, with some noise), so the job completes in seconds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import date
from typing import Any


def run_rate_job(env: Any, dates: Sequence[date], *, max_objects: int = 20, workers_per_object: int = 3,
                 workteam_arn: str | None = None) -> dict[str, Any]:
    """Run ``ogiri_label`` (task ``rate``) with ``dag.test()`` over the captions of ``dates`` and the latest
    batch run; return the job's ``report/summary.json``. ``workteam_arn`` (default: ``OGIRI_WORKTEAM_ARN``)
    names the private work team the emulator knows."""
    from ogiri.label import layout
    from ogiri.naming import run_key
    from ogiri_local.demo import _run_dag

    if workteam_arn:
        os.environ["OGIRI_WORKTEAM_ARN"] = workteam_arn
    run = _run_dag("ogiri_label", conf={
        "task": "rate", "max_objects": max_objects, "audit_fraction": 0.25, "workers_per_object": workers_per_object,
        "source_dates": [d.isoformat() for d in dates], "task_time_limit_s": 60})
    job = layout.job_name(run_key("ogiri_label", run["run_id"]))
    s3 = env.emulator.client("s3")
    body = s3.get_object(Bucket=env.settings["OGIRI_BUCKET"], Key=layout.summary_key(job))["Body"].read()
    return json.loads(body)


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines for the terminal: counts, agreement, rating histograms, time per task, gallery."""
    o = summary["objects"]
    lines = [f"labeling job {summary['job_name']} ({summary['task']}) {summary['status']}: "
             f"{o['in']} objects = {o['labeled']} labeled + {o['rejected']} rejected + {o['expired']} expired",
             f"  annotations per worker: {summary['per_worker']}",
             f"  agreement: mean {summary['agreement']['mean']}; time per task: median "
             f"{summary['time_per_task_s']['median']} s, p90 {summary['time_per_task_s']['p90']} s"]
    for scale, counts in (summary.get("ratings") or {}).items():
        lines.append(f"  {scale:7} " + "  ".join(f"{k}:{v}" for k, v in counts.items()))
    for side in ("best", "worst"):
        for g in summary["gallery"][side][:3]:
            lines.append(f"  {side:5} {g['rating']} (fit {g['fit']}, humour {g['humour']}) {g['caption']!r}")
    if summary["rejects_by_reason"]:
        lines.append(f"  rejects: {summary['rejects_by_reason']}")
    return "\n".join(lines)
