"""The gallery page: a day's images (served by this plugin from S3) with their submitted captions next
to the champion model's batch captions, filterable by partition date and Rekognition label."""

from __future__ import annotations

from html import escape
from typing import Any

from ogiri import catalog
from ogiri.ui import markup as html
from ogiri.ui.data import Reader
from ogiri.ui.pages import GALLERY_PAGE_SIZE, Ctx, _guard


class PageOutOfRange(ValueError):
    """A ``page`` parameter past the last page (answered 400)."""


def _images(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Caption items grouped per image: key, S3 key, labels and every submitted caption."""
    by_key: dict[str, dict[str, Any]] = {}
    for item in items:
        image = by_key.setdefault(item[catalog.IMAGE_KEY], {
            "key": item[catalog.IMAGE_KEY], "s3_key": catalog.image_s3_key(item[catalog.IMAGE_KEY]),
            "labels": list(item.get(catalog.LABEL_NAMES) or []), "captions": []})
        image["captions"].append(item.get(catalog.CAPTION) or "")
    return sorted(by_key.values(), key=lambda i: i["key"])


def _filters(ctx: Ctx, dates: list[str], day: str, labels: list[str]) -> str:
    chosen = ctx.params.get("label") or ""
    date_opts = "".join(f'<option{" selected" if d == day else ""}>{escape(d)}</option>' for d in dates)
    label_opts = '<option value="">(any)</option>' + "".join(
        f'<option{" selected" if lb == chosen else ""}>{escape(lb)}</option>' for lb in labels)
    return (f'<form class="filters" method="get" action="{escape(ctx.prefix)}/gallery">'
            f'<label>Partition date<br><select name="date">{date_opts}</select></label>'
            f'<label>Label<br><select name="label">{label_opts}</select></label>'
            '<button type="submit">Show</button></form>')


def _card(reader: Reader, ctx: Ctx, image: dict[str, Any], champion_model: str | None, banners: list[str]) -> str:
    rows = _guard(banners, reader.captions_of, image["s3_key"]) or []
    champ = next((r for r in rows if r["model_name"] == champion_model), None)
    if champ:
        model_line = f'<p class="champion">{escape(champ.get("caption") or "(error: " + str(champ.get("error")) + ")")}</p>'
    elif rows:
        model_line = f'<p class="muted">{escape(rows[0]["model_name"])}: {escape(rows[0].get("caption") or "–")}</p>'
    else:
        model_line = '<p class="muted">no model caption yet (ogiri_batch_caption has not captioned it)</p>'
    submitted = "".join(f"<li>{escape(c)}</li>" for c in image["captions"])
    labels = escape(", ".join(image["labels"][:5])) or "no label"
    return (f'<figure class="card"><img alt="image {escape(image["key"][:12])}" '
            f'src="{escape(ctx.prefix)}/images/{escape(image["key"])}.jpg">'
            f'<figcaption><p class="muted">submitted:</p><ul>{submitted}</ul>'
            f'<p class="muted">champion:</p>{model_line}<p class="muted">{labels}</p></figcaption></figure>')


def _pager(ctx: Ctx, day: str, page: int, pages: int) -> str:
    parts = [f"page {page} of {pages}"]
    label = ctx.params.get("label")
    if page > 1:
        parts.insert(0, html.link(f"{ctx.prefix}/gallery", "← previous", date=day, label=label, page=page - 1))
    if page < pages:
        parts.append(html.link(f"{ctx.prefix}/gallery", "next →", date=day, label=label, page=page + 1))
    return f"<p>{' · '.join(parts)}</p>"


def gallery(reader: Reader, ctx: Ctx) -> tuple[list[str], list[str]]:
    """A page of one day's images with their captions; raises :class:`PageOutOfRange`."""
    banners: list[str] = []
    runs = _guard(banners, reader.ingest_history)
    if runs is None:
        return [html.empty("Gallery unavailable.")], banners
    dates = sorted({r["partition_date"] for r in runs if r.get("accepted")}, reverse=True)
    day = ctx.params.get("date") or (dates[0] if dates else None)
    if day is None:
        return [html.empty("No image ingested yet: the gallery fills after the first ingest run.")], banners
    if day not in dates:
        dates = sorted([*dates, day], reverse=True)
    items = _guard(banners, reader.captions_on, day)
    if items is None:
        return [_filters(ctx, dates, day, [])], banners
    images = _images(items)
    labels = sorted({lb for i in images for lb in i["labels"]})
    if ctx.params.get("label"):
        images = [i for i in images if ctx.params["label"] in i["labels"]]
    pages = max(1, -(-len(images) // GALLERY_PAGE_SIZE))
    page = ctx.params["page"]
    if page > pages:
        raise PageOutOfRange(f"page {page} is past the last page ({pages}) for these filters")
    body = [_filters(ctx, dates, day, labels)]
    if not images:
        body.append(html.empty(f"No image for {day}" + (f" with label {ctx.params['label']!r}." if ctx.params.get("label")
                                                         else ".")))
        return body, banners
    deployments = _guard(banners, reader.deployments)
    champion_model = ((deployments or ([], None))[1] or {}).get("model_name")
    shown = images[(page - 1) * GALLERY_PAGE_SIZE : page * GALLERY_PAGE_SIZE]
    body.append(f"<p>{len(images)} images on {escape(day)}; champion model: "
                f"{escape(champion_model or 'none deployed')}</p>")
    body.append('<div class="gallery">' + "".join(_card(reader, ctx, i, champion_model, banners) for i in shown)
                + "</div>")
    body.append(_pager(ctx, day, page, pages))
    return body, banners
