"""The monitoring page: an endpoint's drift score per feature and window against its threshold, the
windows (status, records, violated features, report, run) and the count of violations.

Reads the ledger's ``monitoring_windows`` (written by ``ogiri_monitor``, one row per endpoint and
hourly window); each window's ``report.json`` is streamed through the plugin from S3.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import Any

from ogiri.ui import markup as html
from ogiri.ui import svg
from ogiri.ui.data import Reader
from ogiri.ui.pages import Ctx, _guard

MONITOR_DAG = "ogiri_monitor"
#: The monitor's features in reading order (CONTRACTS: baseline.json / report.json feature names).
FEATURES = ("input_brightness", "input_red", "input_green", "input_blue", "input_width", "input_height",
            "embedding", "rekognition_labels", "output_caption_length", "output_score", "output_char_frequency")


def report_hour(window_start: str) -> str:
    """The ``YYYY-MM-DDTHH`` folder of a window under ``monitoring/<endpoint>/``."""
    return window_start[:13]


def _violated(window: dict[str, Any]) -> list[str]:
    """Feature names the window violated (``violations`` holds names, or Model Monitor's dicts)."""
    names = [v.get("feature_name", "?") if isinstance(v, dict) else str(v) for v in window.get("violations") or []]
    return names or sorted(f for f, s in (window.get("scores") or {}).items() if isinstance(s, dict) and s.get("violation"))


def _run_links(reader: Reader, windows: list[dict[str, Any]], ctx: Ctx, banners: list[str]) -> dict[str, str]:
    """Per ``run_key``: a link to its DAG run. A run key (``ogiri.naming.run_key``) holds a manual or
    asset-triggered run's id, but only the logical date of a scheduled one: its run id is looked up in
    Airflow's metadata DB; one not found there links to the DAG's runs."""
    keys = {w["run_key"] for w in windows if (w.get("run_key") or "").startswith(f"{MONITOR_DAG}:")}
    rests = {key: key.split(":", 1)[1] for key in keys}
    dates = []
    for rest in rests.values():
        try:
            if "__" not in rest:
                datetime.fromisoformat(rest)
                dates.append(rest)
        except ValueError:
            pass
    found = (_guard(banners, reader.scheduled_run_ids, MONITOR_DAG, tuple(sorted(dates))) or {}) if dates else {}
    links = {}
    for key, rest in rests.items():
        run_id = rest if "__" in rest else found.get(rest)
        if run_id:
            links[key] = ctx.run_link(MONITOR_DAG, run_id)
        else:
            href = f"{ctx.airflow}/dags/{MONITOR_DAG}/runs"
            links[key] = f'<a target="_top" href="{escape(href)}">run of {escape(rest[:19])}</a>'
    return links


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _in_range(windows: list[dict[str, Any]], days: int) -> list[dict[str, Any]]:
    """The windows of the ``days`` days up to the newest one (not "now": the page shows the last
    monitored days even when the monitor has been paused)."""
    try:
        newest = datetime.fromisoformat(windows[-1]["window_start"])
        return [w for w in windows if datetime.fromisoformat(w["window_start"]) > newest - timedelta(days=days)]
    except ValueError:
        return windows


def _charts(windows: list[dict[str, Any]]) -> list[str]:
    scored = {f for w in windows for f in (w.get("scores") or {})}
    features = [f for f in FEATURES if f in scored] + sorted(scored - set(FEATURES))
    if not features:
        return [html.empty("No window of this range has drift scores (every window was empty, had no baseline "
                           "or failed).")]
    x = [f"{w['window_start'][5:13].replace('T', ' ')}h" for w in windows]
    parts = []
    for feature in features:
        cells = [(w.get("scores") or {}).get(feature) or {} for w in windows]
        values = [c.get("value") if isinstance(c.get("value"), int | float) else None for c in cells]
        limits = [c.get("threshold") if isinstance(c.get("threshold"), int | float) else None for c in cells]
        flags = [bool(c.get("violation")) for c in cells]
        metric = next((c.get("metric") for c in cells if c.get("metric")), "score")
        count = sum(flags)
        note = f' · <span class="bad">{count} violation{"s" if count > 1 else ""}</span>' if count else ""
        parts.append(f'<figure class="small"><figcaption><strong>{escape(feature)}</strong> · '
                     f"{escape(str(metric))}{note}</figcaption>"
                     + svg.drift(f"{feature}: {metric} per window against its threshold", x, values, limits, flags)
                     + "</figure>")
    return ['<div class="charts">', *parts, "</div>"]


def _rows(windows: list[dict[str, Any]], endpoint: str, ctx: Ctx, runs: dict[str, str]) -> list[list[str]]:
    rows = []
    for w in reversed(windows):
        status = w.get("status") or "?"
        report = (html.link(f"{ctx.prefix}/monitoring/{endpoint}/{report_hour(w['window_start'])}/report.json",
                            "report.json") if w.get("report_uri") else "–")
        rows.append([escape(f"{w['window_start'][:16]} → {str(w.get('window_end') or '')[11:16]}"),
                     escape(w.get("model_name") or "–"),
                     f'<span class="status-{escape(status)}">{escape(status)}</span>',
                     str(w.get("records") or 0), str(w.get("bad_records") or 0),
                     escape(", ".join(_violated(w))) or "–", report,
                     runs.get(w.get("run_key") or "", "–")])
    return rows


def _picker(ctx: Ctx, endpoints: list[str], endpoint: str, days: int) -> str:
    names = sorted({*endpoints, endpoint})
    options = "".join(f'<option{" selected" if n == endpoint else ""}>{escape(n)}</option>' for n in names)
    return (f'<form class="filters" method="get" action="{escape(ctx.prefix)}/monitoring">'
            f'<label>Endpoint<br><select name="endpoint">{options}</select></label>'
            f'<label>Days<br><input name="days" type="number" min="1" max="90" value="{days}"></label>'
            '<button type="submit">Show</button></form>')


def monitoring(reader: Reader, ctx: Ctx) -> tuple[list[str], list[str]]:
    """Drift per feature against its threshold, the windows and their violations, for one endpoint."""
    banners: list[str] = []
    endpoint = ctx.params.get("endpoint") or reader.settings.endpoint_name
    days = ctx.params["days"]
    windows = _guard(banners, reader.monitoring_windows, endpoint, days * 24)
    body = [_picker(ctx, (_guard(banners, reader.monitoring_endpoints) or []) if windows is not None else [],
                    endpoint, days)]
    if windows is None:
        return [*body, html.empty("Monitoring windows unavailable.")], banners
    if not windows:
        body.append(html.empty(f"No monitoring windows yet for endpoint {endpoint}: ogiri_monitor checks each hour "
                               "of captured traffic against the serving model's baseline."))
        return body, banners
    windows = _in_range(windows, days)
    violating = [w for w in windows if _violated(w)]
    body.append(f"<p>{_count(len(windows), 'window')} from {escape(windows[0]['window_start'][:16])} to "
                f"{escape(windows[-1]['window_start'][:16])} (UTC): <strong class=\"violations\">"
                f"{_count(sum(len(_violated(w)) for w in violating), 'violation')}</strong> in "
                f"{_count(len(violating), 'window')}.</p>")
    body += ["<h2>Drift per feature</h2>", *_charts(windows), "<h2>Windows</h2>", html.table(
        ["Window (UTC)", "Model", "Status", "Records", "Bad records", "Violated features", "Report", "Run"],
        _rows(windows, endpoint, ctx, _run_links(reader, windows, ctx, banners)), raw=True)]
    return body, banners
