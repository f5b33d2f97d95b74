"""The labeling page: the labeling jobs, and for one job (default the latest) its analysis drawn from
``summary.json`` (annotations per worker, fit and humour ratings, agreement, time per task) with the
best and worst rated captions next to their images.

Reads the ledger's ``labeling_jobs`` (written by ``ogiri_label``) and S3
``labeling/<job>/report/summary.json``; the images come through the plugin's image route.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from ogiri.ui import markup as html
from ogiri.ui import svg
from ogiri.ui.data import Reader
from ogiri.ui.pages import Ctx, _guard

LABEL_DAG = "ogiri_label"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _image_sha(image_key: str) -> str | None:
    """The image's content hash from a summary ``image_key`` (the hash itself or ``images/…/<hash>.jpg``)."""
    found = _SHA256.findall(image_key or "")
    return found[-1] if found else None


def _bin_labels(bins: list[Any], counts: list[Any]) -> list[str]:
    """Histogram labels: ``a–b`` when ``bins`` are the edges (one more than the counts), else the bins."""
    def fmt(v: Any) -> str:
        return f"{v:g}" if isinstance(v, int | float) else str(v)

    if len(bins) == len(counts) + 1:
        return [f"{fmt(a)}–{fmt(b)}" for a, b in zip(bins, bins[1:], strict=False)]
    return [fmt(b) for b in bins[: len(counts)]] + [""] * max(0, len(counts) - len(bins))


def _histogram(title: str, label: str, block: dict[str, Any] | None, unit: str) -> list[str]:
    counts = [c if isinstance(c, int | float) else 0 for c in (block or {}).get("counts") or []]
    if not any(counts):
        return [f"<figcaption><strong>{escape(title)}</strong></figcaption>", html.empty(f"No {unit} recorded.")]
    return [f"<figcaption><strong>{escape(title)}</strong></figcaption>",
            svg.bars(label, _bin_labels(list((block or {}).get("bins") or []), counts), [(unit, counts)],
                     size=svg.SMALL)]


def _ratings(summary: dict[str, Any]) -> list[str]:
    ratings = summary.get("ratings") or {}
    if summary.get("task") != "rate" and not ratings:
        return []
    parts = ["<h2>Ratings</h2>", '<div class="charts">']
    for scale, title in (("fit", "Fit (does the caption match the image?)"), ("humour", "Humour")):
        hist = ratings.get(scale) or {}
        grades = [str(g) for g in range(1, 6)]
        counts = [hist.get(g, 0) for g in grades]
        parts.append(f'<figure class="small"><figcaption><strong>{escape(title)}</strong></figcaption>'
                     + (svg.bars(f"{scale} ratings, 1 to 5", grades, [("ratings", counts)], size=svg.SMALL)
                        if any(counts)
                        else html.empty(f"No {scale} rating recorded.")) + "</figure>")
    return [*parts, "</div>"]


def _card(ctx: Ctx, entry: dict[str, Any]) -> str:
    sha = _image_sha(str(entry.get("image_key") or ""))
    img = (f'<img alt="image {escape(sha[:12])}" src="{escape(ctx.prefix)}/images/{sha}.jpg">' if sha
           else '<p class="muted">(no image)</p>')
    scores = " · ".join(f"{k} {html.number(entry.get(k), 2)}" for k in ("rating", "fit", "humour")
                        if entry.get(k) is not None)
    return (f'<figure class="card">{img}<figcaption><p>{escape(str(entry.get("caption") or ""))}</p>'
            f'<p class="muted">{escape(scores) or "not rated"}</p></figcaption></figure>')


def _gallery(ctx: Ctx, summary: dict[str, Any]) -> list[str]:
    gallery = summary.get("gallery") or {}
    parts = []
    for side, title in (("best", "Best rated"), ("worst", "Worst rated")):
        entries = gallery.get(side) or []
        if entries:
            parts += [f"<h3>{title}</h3>", '<div class="gallery">' + "".join(_card(ctx, e) for e in entries) + "</div>"]
    return (["<h2>Best and worst rated captions</h2>", *parts] if parts else [])


def _analysis(ctx: Ctx, summary: dict[str, Any]) -> list[str]:
    per_worker = summary.get("per_worker") or {}
    workers = sorted(per_worker, key=lambda w: (-per_worker[w], w))
    body = ["<h2>Annotations per worker</h2>",
            svg.bars("Annotations per worker", workers, [("annotations", [per_worker[w] for w in workers])])
            if workers else html.empty("No annotation recorded.")]
    body += _ratings(summary)
    agreement = summary.get("agreement") or {}
    timing = summary.get("time_per_task_s") or {}
    body += ['<div class="charts"><figure class="small">',
             *_histogram(f"Agreement between workers (mean {html.number(agreement.get('mean'), 2)})",
                         "Agreement per object, 0 to 1", agreement, "objects"),
             '</figure><figure class="small">',
             *_histogram(f"Time per task in seconds (median {html.number(timing.get('median'), 1)}, "
                         f"p90 {html.number(timing.get('p90'), 1)})", "Time per task, seconds", timing, "tasks"),
             "</figure></div>"]
    reasons = summary.get("rejects_by_reason") or {}
    if reasons:
        body += ["<h2>Rejected objects by reason</h2>", html.table(["Reason", "Objects"], sorted(reasons.items()))]
    return body + _gallery(ctx, summary)


def _jobs_table(ctx: Ctx, jobs: list[dict[str, Any]], chosen: str) -> str:
    rows = [[html.link(f"{ctx.prefix}/labeling", j["job_name"], job=j["job_name"])
             + (" ◀" if j["job_name"] == chosen else ""),
             escape(j.get("task_type") or "–"), escape(j.get("status") or "–"),
             *(str(j.get(k) or 0) for k in ("objects_in", "labeled", "rejected", "expired")),
             html.number(j.get("workers_per_object")), html.number(j.get("mean_agreement"), 2),
             escape(str(j.get("created_at") or "")[:16])] for j in jobs]
    return html.table(["Job", "Task", "Status", "Objects in", "Labeled", "Rejected", "Expired", "Workers / object",
                       "Mean agreement", "Created (UTC)"], rows, raw=True)


def labeling(reader: Reader, ctx: Ctx) -> tuple[list[str], list[str]]:
    """The labeling jobs; the chosen job's analysis pictures and its best/worst gallery."""
    banners: list[str] = []
    jobs = _guard(banners, reader.labeling_jobs)
    if jobs is None:
        return [html.empty("Labeling jobs unavailable.")], banners
    if not jobs:
        return [html.empty("No labeling jobs yet: ogiri_label sends captions (or images) to human workers and "
                           "records each job here.")], banners
    chosen = ctx.params.get("job") or jobs[0]["job_name"]
    body = ["<h2>Jobs</h2>", _jobs_table(ctx, jobs, chosen), f"<h2>Job {escape(chosen)}</h2>"]
    job = next((j for j in jobs if j["job_name"] == chosen), None)
    if job is None:
        return [*body, html.empty(f"No labeling job named {chosen} in the ledger.")], banners
    summary = _guard(banners, reader.labeling_summary, chosen)
    if summary is None:
        if not banners:
            body.append(html.empty(f"No report yet for {chosen} (job status: {job.get('status') or 'unknown'}); "
                                   "ogiri_label writes it when the job ends."))
        return body, banners
    objects = summary.get("objects") or {}
    body.append(f"<p>{escape(str(summary.get('task') or job.get('task_type') or ''))} job, "
                f"{escape(str(summary.get('status') or job.get('status') or ''))}: "
                + ", ".join(f"{escape(k)} {escape(str(objects.get(k, 0)))}" for k in ("in", "labeled", "rejected",
                                                                                       "expired")) + "</p>")
    return body + _analysis(ctx, summary), banners
