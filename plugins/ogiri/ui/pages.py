"""The page bodies: what each page shows and which reader calls feed it.

Each builder returns ``(body parts, banners)``; a source that fails becomes a banner and its section
says so, while the other sections still render. ``ctx`` carries the URL prefixes (the app's mount
point and the Airflow UI root) and the validated query parameters.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from html import escape
from typing import Any

from ogiri.ui import markup as html
from ogiri.ui import svg
from ogiri.ui.data import SPLITS, Reader, SourceError, label_counts

INGEST_DAG, TRAIN_DAG, BATCH_DAG = "ogiri_ingest", "ogiri_train", "ogiri_batch_caption"
GALLERY_PAGE_SIZE = 24


@dataclass
class Ctx:
    """Where links point, and the page's validated query parameters."""

    prefix: str
    airflow: str
    params: dict[str, Any]

    def run_link(self, dag_id: str, run_id: str | None) -> str:
        """A link to a DAG run's page in the Airflow UI (out of the iframe)."""
        if not run_id:
            return "–"
        from urllib.parse import quote

        href = f"{self.airflow}/dags/{dag_id}/runs/{quote(run_id, safe='')}"
        return f'<a target="_top" href="{escape(href)}">{escape(run_id)}</a>'


def _guard(banners: list[str], fn, *args):
    try:
        return fn(*args)
    except SourceError as exc:
        banners.append(str(exc))
        return None


# -- Ingest -------------------------------------------------------------------------------------------

def ingest(reader: Reader, ctx: Ctx) -> tuple[list[str], list[str]]:
    """Rows in / accepted / duplicates / rejected per partition date, rejects by reason, the runs."""
    banners: list[str] = []
    runs = _guard(banners, reader.ingest_history)
    if runs is None:
        return [html.empty("Ingest history unavailable.")], banners
    if not runs:
        return [html.empty("No ingest runs recorded yet: trigger ogiri_ingest (or wait for its nightly run).")], banners
    dates = [r["partition_date"] for r in runs]
    body = ["<h2>Rows per partition date</h2>", svg.bars(
        "Rows per partition date: accepted, duplicates, rejected", dates,
        [(name, [r[name] for r in runs]) for name in ("accepted", "duplicates", "rejected")],
    )]
    reasons: Counter = Counter()
    for r in runs:
        reasons.update(r.get("rejected_by_reason") or {})
    body.append("<h2>Rejects by reason</h2>")
    if reasons:
        top = reasons.most_common()
        body.append(svg.bars("Rejected rows by reason, all dates shown", [k for k, _ in top],
                             [("rejected", [v for _, v in top])]))
    else:
        body.append(html.empty("No row was rejected on these dates."))
    rows = [
        [escape(r["partition_date"]), escape(r["status"]), str(r["rows_in"]), str(r["accepted"]), str(r["duplicates"]),
         str(r["rejected"]),
         escape(", ".join(f"{k}: {v}" for k, v in sorted((r.get("rejected_by_reason") or {}).items()))) or "–",
         html.link(f"{ctx.prefix}/rejects/{r['partition_date']}", "rejects.jsonl"),
         ctx.run_link(INGEST_DAG, r.get("run_id"))]
        for r in reversed(runs)
    ]
    body += ["<h2>Runs</h2>", html.table(
        ["Partition", "Status", "Rows in", "Accepted", "Duplicates", "Rejected", "Reasons", "Rejects file", "Run"],
        rows, raw=True)]
    return body, banners


# -- Dataset ------------------------------------------------------------------------------------------

def _versions(runs: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["dataset_version"] for r in runs if r.get("dataset_version")))


def _version_rows(reader: Reader, versions: list[str], latest: str | None, ctx: Ctx) -> list[list[str]]:
    rows = []
    for version in versions[:10]:
        meta = reader.dataset_meta(version) or {}
        counts = meta.get("counts") or {}
        rows.append([html.link(f"{ctx.prefix}/dataset", version, version=version)]
                    + [str(counts.get(s, "–")) for s in SPLITS]
                    + [str(meta.get("new_images", "–")), "yes" if version == latest else ""])
    return rows


def _length_histogram(captions: list[str], bins: int = 16) -> tuple[list[str], list[int]]:
    """Caption lengths in characters (the captions are Japanese: no word breaks; the metrics score
    characters too), in at most ``bins`` equal buckets."""
    lengths = [len(c.strip()) for c in captions]
    top = max(lengths, default=0)
    width = max(1, -(-top // bins))
    counts = [0] * max(1, -(-top // width))
    for n in lengths:
        counts[max(0, n - 1) // width] += 1
    labels = [f"{i * width + 1}" if width == 1 else f"{i * width + 1}–{(i + 1) * width}" for i in range(len(counts))]
    return labels, counts


def dataset(reader: Reader, ctx: Ctx) -> tuple[list[str], list[str]]:
    """Dataset versions with split sizes; the chosen version's label and caption-length histograms."""
    banners: list[str] = []
    runs = _guard(banners, reader.training_runs)
    if runs is None:
        return [html.empty("Dataset versions unavailable.")], banners
    versions = _versions(runs)
    if not versions:
        return [html.empty("No dataset version yet: ogiri_train builds one after an ingest run.")], banners
    latest = _guard(banners, reader.latest_dataset)
    chosen = ctx.params.get("version") or latest or versions[0]
    body = ["<h2>Versions</h2>"]
    rows = _guard(banners, _version_rows, reader, versions, latest, ctx)
    body.append(html.table(["Version", "Train", "Val", "Test", "New images", "Last trained"], rows or [], raw=True))
    records = _guard(banners, lambda: [r for s in SPLITS for r in reader.manifest(chosen, s)])
    body.append(f"<h2>Version {escape(chosen)}</h2>")
    if records is None:
        return body, banners
    if not records:
        body.append(html.empty(f"Dataset version {chosen} has no manifest records in S3."))
        return body, banners
    top_n = ctx.params["top"]
    labels = label_counts(records).most_common(top_n)
    body.append(f"<h3>Top {top_n} Rekognition labels ({len(records)} captions)</h3>")
    body.append(svg.bars(f"Top {top_n} labels of {chosen}", [k for k, _ in labels], [("captions", [v for _, v in labels])])
                if labels else html.empty("No record of this version carries a label."))
    buckets, counts = _length_histogram([r.get("caption") or "" for r in records])
    body += ["<h3>Caption length (characters)</h3>", svg.bars(f"Caption length in characters, {chosen}", buckets,
                                                         [("captions", counts)])]
    return body, banners


# -- Models -------------------------------------------------------------------------------------------

def _metric(metrics: dict[str, Any] | None, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = (metrics or {}).get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


def _deployed_jobs(history: list[dict[str, Any]]) -> set[str]:
    return {d["training_job"] for d in history if d["status"] == "succeeded"
            and d["action"] in ("create", "update", "rollback") and d.get("training_job")}


def _leaderboard_rows(runs, history, champion, ctx: Ctx) -> list[list[str]]:
    from ogiri.train.gate import BLEU4_KEYS, CIDER_KEYS

    deployed, serving = _deployed_jobs(history), (champion or {}).get("training_job")
    rows = []
    for r in runs:
        hps = r.get("hyperparameters") or {}
        key_hps = ", ".join(f"{k}={hps[k]}" for k in ("epochs", "lr", "batch_size", "encoder", "image_size") if k in hps)
        val, test = r.get("metrics") or {}, r.get("candidate_metrics")
        job = escape(r["job_name"]) + (' <span class="champion">★ champion</span>' if r["job_name"] == serving else "")
        rows.append([
            job, escape(r.get("dataset_version") or "–"), escape(key_hps or "–"),
            html.number(_metric(val, ("val_bleu4",))), html.number(_metric(val, ("val_cider",))),
            html.number(_metric(test, BLEU4_KEYS)), html.number(_metric(test, CIDER_KEYS)),
            html.number(r.get("billable_seconds")), html.number(r.get("cost_usd"), 4),
            escape(r.get("status") or "–"),
            escape(f"{r.get('decision') or '–'}: {r.get('reason') or ''}".rstrip(": ")),
            "yes" if r["job_name"] in deployed else "no",
        ])
    return rows


def _metric_chart(runs: list[dict[str, Any]]) -> str:
    from ogiri.train.gate import BLEU4_KEYS, CIDER_KEYS

    done = [r for r in reversed(runs) if r.get("metrics") or r.get("candidate_metrics")]
    if not done:
        return html.empty("No training run has metrics yet.")
    x = [f"{(r.get('created_at') or '')[:10]} {r['job_name'][-6:]}" for r in done]
    series = [
        ("test CIDEr-D", [_metric(r.get("candidate_metrics"), CIDER_KEYS) for r in done]),
        ("test BLEU-4", [_metric(r.get("candidate_metrics"), BLEU4_KEYS) for r in done]),
        ("val CIDEr-D", [_metric(r.get("metrics"), ("val_cider",)) for r in done]),
        ("val BLEU-4", [_metric(r.get("metrics"), ("val_bleu4",)) for r in done]),
    ]
    return svg.lines("Validation and frozen-test metrics per training run", x, series)


def _timeline(history: list[dict[str, Any]], champion: dict[str, Any] | None) -> tuple[str, str]:
    events = [{"when": d.get("deployed_at") or d.get("updated_at"), "action": d["action"], "status": d["status"],
               "model": d.get("model_name"),
               "champion": bool(champion) and d["run_key"] == champion.get("run_key") and d["status"] == "succeeded"}
              for d in reversed(history)]
    rows = [[str(e["when"])[:19], e["action"], e["status"], e["model"] or "–", d.get("reason") or "",
             "★ serving" if e["champion"] else ""] for e, d in zip(events, reversed(history), strict=True)]
    chart = svg.timeline("Deployments of the endpoint, oldest first", events)
    return chart, html.table(["When", "Action", "Status", "Model", "Reason", ""], list(reversed(rows)))


def models(reader: Reader, ctx: Ctx) -> tuple[list[str], list[str]]:
    """The leaderboard, metrics over time and the deployment timeline with the champion marked."""
    banners: list[str] = []
    runs = _guard(banners, reader.training_runs)
    deployments = _guard(banners, reader.deployments)
    history, champion = deployments or ([], None)
    body = []
    if champion:
        body.append(f"<p>Serving on <code>{escape(reader.settings.endpoint_name)}</code>: "
                    f'<span class="champion">{escape(champion.get("model_name") or "?")}</span> '
                    f"(training job {escape(champion.get('training_job') or '?')})</p>")
    body.append("<h2>Leaderboard</h2>")
    if runs is None:
        body.append(html.empty("Training runs unavailable."))
    elif not runs:
        body.append(html.empty("No training run yet: ogiri_train runs after each ingest run."))
    else:
        body.append(html.table(
            ["Training job", "Dataset", "Hyperparameters", "Val BLEU-4", "Val CIDEr-D", "Test BLEU-4", "Test CIDEr-D",
             "Billable s", "Cost USD", "Status", "Gate", "Deployed"],
            _leaderboard_rows(runs, history, champion, ctx), raw=True))
        body += ["<h2>Metrics over time</h2>", _metric_chart(runs)]
    body.append("<h2>Deployment timeline</h2>")
    if deployments is not None and not history:
        body.append(html.empty("Nothing deployed yet."))
    elif history:
        body.extend(_timeline(history, champion))
    return body, banners
