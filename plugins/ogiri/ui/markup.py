"""The page frame (navigation, theme, banner) and small HTML helpers. Everything shown is escaped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import urlencode

#: (path under the app, title) of every page, in navigation order.
PAGES = (
    ("ingest", "Ingest"),
    ("dataset", "Dataset"),
    ("models", "Models"),
    ("gallery", "Gallery"),
    ("monitoring", "Monitoring"),
    ("labeling", "Labeling"),
)

CSS = """
:root { color-scheme: light; --bg:#ffffff; --fg:#1a202c; --muted:#718096; --grid:#e2e8f0; --card:#f7fafc;
  --c1:#3182ce; --c2:#38a169; --c3:#d69e2e; --c4:#e53e3e; --c5:#805ad5; --c6:#319795;
  --bad-bg:#fff5f5; --bad-fg:#9b2c2c; }
:root[data-theme=dark] { color-scheme: dark; --bg:#0f1115; --fg:#e2e8f0; --muted:#a0aec0; --grid:#2d3748;
  --card:#1a202c; --c1:#63b3ed; --c2:#68d391; --c3:#f6e05e; --c4:#fc8181; --c5:#b794f4; --c6:#4fd1c5;
  --bad-bg:#3b1d1d; --bad-fg:#feb2b2; }
body { background:var(--bg); color:var(--fg); font:14px/1.45 system-ui, "Noto Sans CJK JP", "Hiragino Sans", "Yu Gothic", sans-serif; margin:0 1.2rem 2rem; }
nav { display:flex; gap:1rem; padding:.8rem 0; border-bottom:1px solid var(--grid); margin-bottom:1rem; }
nav a { color:var(--fg); text-decoration:none; } nav a.active { font-weight:700; border-bottom:2px solid var(--c1); }
a { color:var(--c1); } h1 { font-size:1.4rem; } h2 { font-size:1.1rem; margin-top:1.6rem; }
table { border-collapse:collapse; margin:.5rem 0; } td, th { border-bottom:1px solid var(--grid);
  padding:.25rem .6rem; text-align:left; vertical-align:top; } th { color:var(--muted); font-weight:600; }
.banner { background:var(--bad-bg); color:var(--bad-fg); border:1px solid var(--bad-fg); padding:.6rem .9rem;
  border-radius:4px; margin:.6rem 0; }
.empty { color:var(--muted); font-style:italic; }
.chart { max-width:780px; display:block; } .chart .grid { stroke:var(--grid); }
.chart .tick { fill:var(--muted); font-size:11px; } .chart .tag { fill:var(--fg); font-size:11px; font-weight:700; }
.gallery { display:grid; grid-template-columns:repeat(auto-fill, minmax(220px, 1fr)); gap:1rem; }
.card { background:var(--card); border:1px solid var(--grid); border-radius:6px; padding:.5rem; }
.card img { width:100%; height:auto; border-radius:4px; display:block; } .muted { color:var(--muted); }
.charts { display:grid; grid-template-columns:repeat(auto-fill, minmax(380px, 1fr)); gap:.8rem 1.2rem; max-width:1400px; }
.charts figure.small { margin:0; } .bad, .status-violation, .status-failed { color:var(--c4); font-weight:700; }
.champion { font-weight:700; } form.filters { display:flex; gap:.8rem; align-items:end; flex-wrap:wrap; }
"""

#: Follow the Airflow UI's theme (next-themes puts ``class="dark"`` on the parent's <html> and keeps
#: the choice in localStorage ``theme``); otherwise the system's colour scheme.
THEME_JS = """(function(){var d=false;try{var p=window.parent&&window.parent.document.documentElement;
if(p&&p.classList.length){d=p.classList.contains('dark');}else{var t=localStorage.getItem('theme');
d=t==='dark'||((!t||t==='system')&&matchMedia('(prefers-color-scheme: dark)').matches);}}catch(e){
d=matchMedia('(prefers-color-scheme: dark)').matches;}document.documentElement.dataset.theme=d?'dark':'light';})();"""


def page(prefix: str, active: str, title: str, body: Iterable[str], banners: Sequence[str] = ()) -> str:
    """A whole HTML document: navigation, error banners, then ``body``."""
    links = "".join(
        f'<a href="{prefix}/{slug}"{" class=active" if slug == active else ""}>{escape(name)}</a>'
        for slug, name in PAGES
    )
    shown = "".join(f'<div class="banner" role="alert">{escape(b)}</div>' for b in banners)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Ogiri · {escape(title)}</title>'
        f"<script>{THEME_JS}</script><style>{CSS}</style></head><body>"
        f'<nav aria-label="Ogiri pages"><strong>Ogiri</strong>{links}</nav><main><h1>{escape(title)}</h1>'
        f"{shown}{''.join(body)}</main></body></html>"
    )


def empty(text: str) -> str:
    """A plain "nothing here yet" line."""
    return f'<p class="empty">{escape(text)}</p>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False) -> str:
    """A table; cells are escaped unless ``raw`` (then the caller escaped them)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if raw else escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def link(href: str, text: str, **params: str | int | None) -> str:
    """An escaped ``<a>`` (``params`` with a None value are left out)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f'<a href="{escape(href + ("?" + query if query else ""))}">{escape(text)}</a>'


def number(value: object, digits: int = 3) -> str:
    """A metric or count for a table cell ("–" when missing)."""
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
