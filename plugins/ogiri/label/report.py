"""The label analysis: ``summary.json`` (the shape of docs/interfaces.md) and its SVG pictures.

Annotations per worker, the rating histograms (every worker's answer), agreement, time per task
(from Ground Truth's worker responses), a gallery of the best and worst rated captions, and the
rejects by reason. Worker ids only: no worker personal data is read into the report.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ogiri.label import svg
from ogiri.label.answers import Outcome

AGREEMENT_BINS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
TIME_BINS = [0, 10, 30, 60, 120, 300, 600]
GALLERY = 5


def histogram(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """Counts per bin ``[edges[i], edges[i+1])``, the last bin closed and catching everything above."""
    counts = [0] * (len(edges) - 1)
    for v in values:
        i = next((k for k in range(len(edges) - 1) if v < edges[k + 1]), len(edges) - 2)
        counts[max(i, 0)] += 1
    return counts


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def seconds_of(answer: Mapping[str, Any]) -> float | None:
    """Time one worker spent on one task: ``timeSpentInSeconds``, else submission − acceptance."""
    if isinstance(answer.get("timeSpentInSeconds"), int | float):
        return float(answer["timeSpentInSeconds"])
    try:
        start = datetime.fromisoformat(str(answer["acceptanceTime"]).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(answer["submissionTime"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return (end - start).total_seconds()


def task_times(responses: Iterable[Mapping[str, Any]]) -> list[float]:
    """Seconds per answered task from worker-response documents (``{"answers": [...]}``)."""
    times = []
    for doc in responses:
        for answer in doc.get("answers") or []:
            if isinstance(answer, Mapping) and (s := seconds_of(answer)) is not None and s >= 0:
                times.append(s)
    return times


def _gallery_entry(o: Outcome) -> dict[str, Any]:
    return {"image_key": o.obj["image_key"], "caption_id": o.obj.get("caption_id"), "caption": o.obj.get("caption"),
            "fit": o.fit, "humour": o.humour, "rating": o.rating}


def summarize(*, job: str, task: str, status: str, outcomes: Sequence[Outcome], objects: Mapping[str, int],
              times: Sequence[float]) -> dict[str, Any]:
    """The ``summary.json`` document."""
    per_worker: Counter = Counter()
    for o in outcomes:
        per_worker.update(w for _, ws in o.captions for w in ws)
        per_worker.update(r["workerId"] for r in o.ratings)
        per_worker.update(r["worker_id"] for r in o.rejects if r.get("worker_id"))
    agreements = [o.agreement for o in outcomes if o.status == "labeled" and o.agreement is not None]
    summary: dict[str, Any] = {
        "job_name": job, "task": task, "status": status, "objects": dict(objects),
        "per_worker": dict(sorted(per_worker.items())),
        "agreement": {"mean": round(statistics.fmean(agreements), 4) if agreements else None,
                      "bins": AGREEMENT_BINS, "counts": histogram(agreements, AGREEMENT_BINS)},
        "time_per_task_s": {"median": round(statistics.median(times), 3) if times else None,
                            "p90": _percentile(times, 0.9), "bins": TIME_BINS, "counts": histogram(times, TIME_BINS)},
        "rejects_by_reason": dict(Counter(r["reason"] for o in outcomes for r in o.rejects).most_common()),
    }
    rated = sorted((o for o in outcomes if o.rating is not None), key=lambda o: (o.rating, o.obj["id"]))
    summary["gallery"] = {"best": [_gallery_entry(o) for o in reversed(rated[-GALLERY:])],
                          "worst": [_gallery_entry(o) for o in rated[:GALLERY]]}
    if task == "rate":
        summary["ratings"] = {scale: {str(v): sum(r[scale] == v for o in outcomes for r in o.ratings)
                                      for v in range(1, 6)} for scale in ("fit", "humour")}
    return summary


def _bin_labels(edges: Sequence[float]) -> list[str]:
    return [f"{edges[i]:g}-{edges[i + 1]:g}" for i in range(len(edges) - 1)]


def pictures(summary: Mapping[str, Any]) -> dict[str, str]:
    """``{file name: SVG}`` of the summary."""
    workers = summary["per_worker"]
    ratings = summary.get("ratings") or {"fit": {}, "humour": {}}
    scale = [str(v) for v in range(1, 6)]
    combined = [ratings["fit"].get(v, 0) + ratings["humour"].get(v, 0) for v in scale]
    return {
        "per_worker.svg": svg.bar_chart("Annotations per worker", list(workers), list(workers.values()),
                                        x_title="worker"),
        "ratings.svg": svg.bar_chart(
            "Ratings (fit + humour; fit " + json.dumps(ratings["fit"]) + ")", scale, combined, x_title="rating"),
        "agreement.svg": svg.bar_chart("Agreement per labeled object", _bin_labels(summary["agreement"]["bins"]),
                                       summary["agreement"]["counts"], x_title="agreement"),
        "time_per_task.svg": svg.bar_chart("Time per task", _bin_labels(summary["time_per_task_s"]["bins"]),
                                           summary["time_per_task_s"]["counts"], x_title="seconds"),
    }
