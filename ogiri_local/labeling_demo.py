"""``make demo``'s labeling step: one ``ogiri_label`` ``rate`` job over the batch captions.

Call :func:`run_rate_job` after ``ogiri_batch_caption`` in ``ogiri_local/demo.py`` and print what
:func:`format_summary` returns. The emulator's simulated workforce answers the job, so it completes in
seconds. Its default oracle cannot judge Japanese captions (it matches English image-label words), so
the demo first gives it the answers (:func:`oracle_answers`): fit from how close the rated caption is
to the image's submitted captions in DynamoDB, humour a deterministic spread, and some noise so the
workers disagree. The answers are keyed by the manifest line's ``ogiri-id`` (``answers_by``), since
an image can be in one job twice (a model caption and an audited one) with the same ``source-ref``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from datetime import date
from difflib import SequenceMatcher
from typing import Any

#: The workers' chance of answering differently from the oracle (agreement below 1).
NOISE = 0.2


def fit_rating(caption: str, references: Iterable[str]) -> int:
    """1-5: 5 for a caption equal to a reference, scaled down by character overlap to 1 for none."""
    best = max((SequenceMatcher(None, caption, ref).ratio() for ref in references), default=0.0)
    return 1 + round(4 * best)


def humour_rating(caption: str) -> int:
    """1-5: a deterministic spread over the captions (a hash of the text)."""
    return 1 + int(hashlib.sha256(caption.encode("utf-8")).hexdigest(), 16) % 5


def oracle_answers(batch_rows: Sequence[dict[str, Any]], items: Sequence[dict[str, Any]], *,
                   bucket: str) -> dict[str, dict[str, int]]:
    """``{ogiri-id: {"fit", "humour"}}`` for every caption a ``rate`` job of these rows and caption
    items can select: the batch rows (model captions) and the items (accepted captions, whose own text
    is among the references, so they fit 5)."""
    from ogiri import catalog
    from ogiri.label.selection import batch_image_uri, rate_object

    uri_of = {i[catalog.IMAGE_KEY]: i.get(catalog.S3_URI) or f"s3://{bucket}/{catalog.image_s3_key(i[catalog.IMAGE_KEY])}"
              for i in items}
    references: dict[str, list[str]] = {}
    for item in items:
        references.setdefault(uri_of[item[catalog.IMAGE_KEY]], []).append(item[catalog.CAPTION])
    objects = [rate_object(r["image_key"], r["caption"], batch_image_uri(r["image_key"], bucket), "batch")
               for r in batch_rows]
    objects += [rate_object(i[catalog.IMAGE_KEY], i[catalog.CAPTION], uri_of[i[catalog.IMAGE_KEY]], "audit")
                for i in items]
    return {o["id"]: {"fit": fit_rating(o["caption"], references.get(o["source-ref"], ())),
                      "humour": humour_rating(o["caption"])} for o in objects}


def configure_workforce(env: Any, dates: Sequence[date]) -> int:
    """Give the emulator's workforce the oracle's answers for the captions of ``dates`` and the latest
    batch run (``Emulator.workforce``, the default for every job); returns how many answers."""
    from ogiri.label.request import MANIFEST_FIELDS
    from ogiri.label.selection import items_of_dates
    from ogiri.ledger import Ledger

    items = items_of_dates(env.emulator.client("dynamodb"), env.settings["OGIRI_TABLE"],
                           [d.isoformat() for d in dates])
    answers = oracle_answers(Ledger.from_connection().latest_batch_captions(), items,
                             bucket=env.settings["OGIRI_BUCKET"])
    env.emulator.workforce(answers=answers, answers_by=MANIFEST_FIELDS["id"], noise=NOISE, seed=7)
    return len(answers)


def run_rate_job(env: Any, dates: Sequence[date], *, max_objects: int = 20, workers_per_object: int = 3,
                 workteam_arn: str | None = None) -> dict[str, Any]:
    """Run ``ogiri_label`` (task ``rate``) with ``dag.test()`` over the captions of ``dates`` and the latest
    batch run, its workforce answering from :func:`oracle_answers`; return the job's ``report/summary.json``.
    ``workteam_arn`` (default: ``OGIRI_WORKTEAM_ARN``)
    names the private work team the emulator knows."""
    from ogiri.label import layout
    from ogiri.naming import run_key
    from ogiri_local.demo import _run_dag

    if workteam_arn:
        os.environ["OGIRI_WORKTEAM_ARN"] = workteam_arn
    configure_workforce(env, dates)
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
