"""The FastAPI app behind the Ogiri pages, mounted by the Airflow API server at ``/ogiri``.

Every route is guarded by Airflow's own auth dependencies (``airflow.api_fastapi.core_api.security``):
the JWT comes from the ``Authorization: Bearer`` header or the UI's ``_token`` cookie, and the user
must be allowed to read the DAGs whose data the route shows (``requires_access_dag("GET", …)``).
A browser without a valid session is redirected to the auth manager's login page; any other client
gets 401. Query parameters are checked here (400 with a message for a bad or unknown one).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ogiri.ui import gallery as gallery_page
from ogiri.ui import labeling as labeling_page
from ogiri.ui import markup as html
from ogiri.ui import monitoring as monitoring_page
from ogiri.ui import pages
from ogiri.ui.data import Reader, SourceError

log = logging.getLogger(__name__)

MOUNT = "/ogiri"
IMAGE_KEY = re.compile(r"^[0-9a-f]{64}$")
VERSION = re.compile(r"^ds-[0-9a-f]{12}$")
LABEL = re.compile(r"^[\w][\w .,&'()/-]{0,63}$")
#: SageMaker's rule for endpoint and labeling job names.
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
HOUR = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}$")


class BadParam(ValueError):
    """A query parameter that is not valid (answered 400)."""


# -- query parameters -----------------------------------------------------------------------------------

def _date(value: str) -> str:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise BadParam(f"date={value!r} is not a date (YYYY-MM-DD)") from None


def _int(name: str, low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if not re.fullmatch(r"\d{1,6}", value) or not low <= int(value) <= high:
            raise BadParam(f"{name}={value!r} must be a whole number from {low} to {high}")
        return int(value)

    return parse


def _pattern(name: str, pattern: re.Pattern, what: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if not pattern.fullmatch(value):
            raise BadParam(f"{name}={value[:80]!r} is not {what}")
        return value

    return parse


#: Per page: parameter → parser; defaults for parameters that have one.
PARAMS: dict[str, dict[str, Callable[[str], Any]]] = {
    "ingest": {},
    "dataset": {"version": _pattern("version", VERSION, "a dataset version (ds-<12 hex>)"),
                "top": _int("top", 1, 50)},
    "models": {},
    "gallery": {"date": _date, "label": _pattern("label", LABEL, "a label name (letters, digits, spaces)"),
                "page": _int("page", 1, 100000)},
    "monitoring": {"endpoint": _pattern("endpoint", SAGEMAKER_NAME, "an endpoint name (letters, digits, hyphens)"),
                   "days": _int("days", 1, 90)},
    "labeling": {"job": _pattern("job", SAGEMAKER_NAME, "a labeling job name (letters, digits, hyphens)")},
}
DEFAULTS = {"dataset": {"top": 15}, "gallery": {"page": 1}, "monitoring": {"days": 7}}


def parse_params(page: str, request: Request) -> dict[str, Any]:
    """The page's validated query parameters; :class:`BadParam` for an unknown, repeated or bad one."""
    allowed = PARAMS[page]
    values = dict(DEFAULTS.get(page, {}))
    for name in request.query_params:
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise BadParam(f"unknown query parameter {name!r} (this page takes: {known})")
        given = request.query_params.getlist(name)
        if len(given) > 1:
            raise BadParam(f"query parameter {name!r} given {len(given)} times")
        if given[0] != "":
            values[name] = allowed[name](given[0])
    return values


# -- auth -----------------------------------------------------------------------------------------------

def can_read(*dag_ids: str) -> list[Any]:
    """Dependencies: the caller may read each of ``dag_ids`` (Airflow's own check, 401/403 otherwise)."""
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return [Depends(requires_access_dag("GET", param_dag_id=dag_id)) for dag_id in dag_ids]


def _wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 401 and _wants_html(request):
        from airflow.api_fastapi.app import get_auth_manager

        login = get_auth_manager().get_url_login(next_url=str(request.url))
        return RedirectResponse(login, status_code=303)
    if _wants_html(request):
        return _message_page(request, exc.status_code, f"{exc.status_code}: {exc.detail}")
    return Response(f"{exc.status_code}: {exc.detail}\n", status_code=exc.status_code, media_type="text/plain")


def _message_page(request: Request, status: int, text: str) -> HTMLResponse:
    prefix = request.scope.get("root_path", "")
    return HTMLResponse(html.page(prefix, "", "Ogiri", [], [text]), status_code=status)


# -- routes ---------------------------------------------------------------------------------------------

def reader_of(request: Request) -> Reader:
    """The app's one :class:`Reader`, created on first use (nothing is read at import)."""
    if getattr(request.app.state, "reader", None) is None:
        request.app.state.reader = Reader()
    return request.app.state.reader


ReaderDep = Annotated[Reader, Depends(reader_of)]

BUILDERS = {
    "ingest": ("Ingest", pages.ingest),
    "dataset": ("Dataset", pages.dataset),
    "models": ("Models", pages.models),
    "gallery": ("Gallery", gallery_page.gallery),
    "monitoring": ("Monitoring", monitoring_page.monitoring),
    "labeling": ("Labeling", labeling_page.labeling),
}


def render(page: str, request: Request, reader: Reader) -> HTMLResponse:
    """One page: validated parameters → builder → the framed HTML (400 for bad parameters)."""
    started = time.monotonic()
    prefix = request.scope.get("root_path", "")
    airflow_root = prefix[: -len(MOUNT)] if prefix.endswith(MOUNT) else ""
    title, build = BUILDERS[page]
    try:
        ctx = pages.Ctx(prefix=prefix, airflow=airflow_root, params=parse_params(page, request))
        body, banners = build(reader, ctx)
    except (BadParam, gallery_page.PageOutOfRange) as exc:
        return _message_page(request, 400, f"Bad request: {exc}")
    response = HTMLResponse(html.page(prefix, page, title, body, banners))
    response.headers["Server-Timing"] = f"render;dur={(time.monotonic() - started) * 1000:.1f}"
    return response


def _page_route(app: FastAPI, page: str, dag_ids: tuple[str, ...]) -> None:
    def handler(request: Request, reader: ReaderDep) -> HTMLResponse:
        return render(page, request, reader)

    handler.__name__ = f"{page}_page"
    app.add_api_route(f"/{page}", handler, methods=["GET"], dependencies=can_read(*dag_ids),
                      response_class=HTMLResponse, name=page)


#: Which Ogiri page a DAG's "Ogiri" tab opens.
DAG_PAGES = {pages.INGEST_DAG: "ingest", pages.TRAIN_DAG: "models", pages.BATCH_DAG: "gallery",
             monitoring_page.MONITOR_DAG: "monitoring", labeling_page.LABEL_DAG: "labeling"}


def _data_routes(app: FastAPI) -> None:
    @app.get("/images/{image_key}.jpg", dependencies=can_read(pages.INGEST_DAG), name="image")
    def image(image_key: str, reader: ReaderDep) -> Response:
        from ogiri.catalog import image_s3_key

        if not IMAGE_KEY.fullmatch(image_key):
            raise HTTPException(400, "an image key is 64 lowercase hex characters")
        try:
            body = reader.s3_object(image_s3_key(image_key))
        except SourceError as exc:
            raise HTTPException(502, str(exc)) from None
        if body is None:
            raise HTTPException(404, f"no image {image_key}")
        # Content-addressed: the bytes of a key never change.
        return Response(body, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400, immutable"})

    @app.get("/rejects/{partition_date}", dependencies=can_read(pages.INGEST_DAG), name="rejects")
    def rejects(partition_date: str, reader: ReaderDep) -> Response:
        from ogiri.ingest.accounting import rejects_key
        from ogiri.ingest.plan import run_name

        try:
            day = _date(partition_date)
            body = reader.s3_object(rejects_key(day, run_name(f"{pages.INGEST_DAG}:{day}")))
        except BadParam as exc:
            raise HTTPException(400, str(exc)) from None
        except SourceError as exc:
            raise HTTPException(502, str(exc)) from None
        if body is None:
            raise HTTPException(404, f"no rejects file for {day}")
        return Response(body, media_type="application/x-ndjson",
                        headers={"Content-Disposition": f'inline; filename="rejects-{day}.jsonl"'})


def _report_route(app: FastAPI) -> None:
    @app.get("/monitoring/{endpoint}/{hour}/report.json", dependencies=can_read(monitoring_page.MONITOR_DAG),
             name="monitoring_report")
    def monitoring_report(endpoint: str, hour: str, reader: ReaderDep) -> Response:
        from ogiri.ui.data import monitoring_report_key

        if not SAGEMAKER_NAME.fullmatch(endpoint) or not HOUR.fullmatch(hour):
            raise HTTPException(400, "a report is /monitoring/<endpoint name>/<YYYY-MM-DDTHH>/report.json")
        try:
            body = reader.s3_object(monitoring_report_key(endpoint, hour))
        except SourceError as exc:
            raise HTTPException(502, str(exc)) from None
        if body is None:
            raise HTTPException(404, f"no monitoring report for {endpoint} at {hour}")
        return Response(body, media_type="application/json",
                        headers={"Content-Disposition": f'inline; filename="report-{endpoint}-{hour}.json"'})


def create_app() -> FastAPI:
    """The app (routes only; the reader and its AWS clients are made on the first request)."""
    app = FastAPI(title="Ogiri pages", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.reader = None
    app.add_exception_handler(StarletteHTTPException, _http_error)
    page_dags = {"ingest": (pages.INGEST_DAG,), "dataset": (pages.TRAIN_DAG,), "models": (pages.TRAIN_DAG,),
                 "gallery": (pages.INGEST_DAG, pages.BATCH_DAG), "monitoring": (monitoring_page.MONITOR_DAG,),
                 "labeling": (labeling_page.LABEL_DAG,)}
    for page, dag_ids in page_dags.items():
        _page_route(app, page, dag_ids)
    _data_routes(app)
    _report_route(app)

    from airflow.api_fastapi.core_api.security import requires_access_dag

    @app.get("/", dependencies=can_read(pages.INGEST_DAG), include_in_schema=False)
    def index(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/ingest", status_code=303)

    @app.get("/dag/{dag_id}", dependencies=[Depends(requires_access_dag("GET"))], include_in_schema=False)
    def dag_tab(dag_id: str, request: Request) -> Response:
        page = DAG_PAGES.get(dag_id)
        if page is None:
            return _message_page(request, 200, f"No Ogiri page shows data of {dag_id}.")
        return RedirectResponse(f"{request.scope.get('root_path', '')}/{page}", status_code=303)

    return app
