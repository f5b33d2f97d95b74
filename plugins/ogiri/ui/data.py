"""What the pages show, read from where the pipelines write it (docs/interfaces.md):

* the run ledger (``ogiri.ledger``; ``include/sql/ledger/ui_*.sql`` and the ledger's own lookups);
* S3 through the one client factory (``ogiri.aws.client`` on the Airflow AWS connection):
  ``rejects/``, ``datasets/<version>/``, ``images/``, ``monitoring/<endpoint>/<hour>/report.json``,
  ``labeling/<job>/report/summary.json``;
* the DynamoDB caption table (``IngestDateIndex``) through the same factory.

Nothing is read at import. Answers are cached for ``Settings.ui_cache_s`` seconds per argument set
(errors are not cached), so a page reloaded by several users costs one read. Any failure of a source
is raised as :class:`SourceError` with a one-line message for the page's banner.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ogiri import catalog
from ogiri.config import Settings, get_settings

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
DATASETS_PREFIX = "datasets"
MONITORING_PREFIX, LABELING_PREFIX = "monitoring", "labeling"


class SourceError(RuntimeError):
    """A data source (ledger, S3, DynamoDB) could not be read; ``str()`` is safe to show."""


class TTLCache:
    """A tiny thread-safe time-to-live cache of successful answers."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self.ttl_s, self.clock = ttl_s, clock
        self._data: dict[tuple, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """The cached value of ``key``, or ``compute()`` (stored only when it returns)."""
        now = self.clock()
        with self._lock:
            hit = self._data.get(key)
            if hit and hit[0] > now:
                return hit[1]
        value = compute()
        with self._lock:
            self._data[key] = (now + self.ttl_s, value)
        return value

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()


def _describe(exc: BaseException) -> str:
    """One line for the banner: the AWS error code and message, or the exception's first line."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        err = response["Error"]
        return f"{err.get('Code', type(exc).__name__)}: {err.get('Message', '')}".strip()
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class Reader:
    """Read-only access to the ledger, S3 and the caption table for the pages."""

    def __init__(self, settings: Settings | None = None, *, ledger: Any = None, clients: dict[str, Any] | None = None):
        self._settings = settings
        self._ledger = ledger
        self._clients = dict(clients or {})
        self.cache = TTLCache((settings or get_settings()).ui_cache_s)

    @property
    def settings(self) -> Settings:
        """The deployment settings (read once, on first use)."""
        if self._settings is None:
            self._settings = get_settings()
        return self._settings

    def _source(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except SourceError:
            raise
        except Exception as exc:
            log.warning("Ogiri UI could not read the %s", what, exc_info=True)
            raise SourceError(f"could not read the {what} ({_describe(exc)})") from exc

    def ledger(self) -> Any:
        """The run ledger (``Settings.ledger_conn_id``)."""
        if self._ledger is None:
            from ogiri.ledger import Ledger

            self._ledger = self._source("run ledger", lambda: Ledger.from_connection(self.settings.ledger_conn_id))
        return self._ledger

    def client(self, service: str) -> Any:
        """A boto3 client from the one factory (AWS connection ``Settings.aws_conn_id``)."""
        if service not in self._clients:
            from ogiri.aws import client

            self._clients[service] = self._source(f"AWS connection for {service}",
                                                  lambda: client(service, settings=self.settings))
        return self._clients[service]

    def _query(self, name: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        return self._source("run ledger", lambda: self.ledger().query(name, values))

    # -- ledger -------------------------------------------------------------------------------------

    def ingest_history(self, limit: int = 60) -> list[dict[str, Any]]:
        """The latest ingest runs, oldest partition first."""
        rows = self.cache.get(("ingest", limit), lambda: self._query("ui_ingest_history", {"limit": limit}))
        return sorted(rows, key=lambda r: r["partition_date"])

    def training_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Training runs joined with their evaluation, newest first."""
        return self.cache.get(("training", limit), lambda: self._query("ui_leaderboard", {"limit": limit}))

    def deployments(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """The endpoint's deployment history (newest first) and the serving champion (or None)."""
        endpoint = self.settings.endpoint_name

        def read() -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
            ledger = self.ledger()
            return ledger.deployment_history(endpoint), ledger.champion(endpoint)

        return self.cache.get(("deployments", endpoint), lambda: self._source("run ledger", read))

    def captions_of(self, image_key: str) -> list[dict[str, Any]]:
        """Every model's batch caption of one image (``images/…jpg`` key), newest first."""
        return self.cache.get(("captions", image_key),
                              lambda: self._query("ui_image_captions", {"image_key": image_key}))

    # -- S3 -----------------------------------------------------------------------------------------

    def s3_object(self, key: str) -> bytes | None:
        """The body of ``key`` in the product bucket, or None when it does not exist."""
        from ogiri.aws import get_if_exists

        bucket = self.settings.bucket
        return self._source(f"object s3://{bucket}/{key}", lambda: get_if_exists(self.client("s3"), bucket, key))

    def cached_object(self, key: str) -> bytes | None:
        """:meth:`s3_object`, cached (for manifests and metadata, not for images)."""
        return self.cache.get(("s3", key), lambda: self.s3_object(key))

    def dataset_meta(self, version: str) -> dict[str, Any] | None:
        """``datasets/<version>/meta.json`` (counts per split), or None when absent."""
        body = self.cached_object(f"{DATASETS_PREFIX}/{version}/meta.json")
        return json.loads(body) if body else None

    def latest_dataset(self) -> str | None:
        """The version of ``datasets/latest.json`` (the last trained version), or None."""
        body = self.cached_object(f"{DATASETS_PREFIX}/latest.json")
        return json.loads(body).get("version") if body else None

    def manifest(self, version: str, split: str) -> list[dict[str, Any]]:
        """The records of ``datasets/<version>/<split>.jsonl`` (empty when absent)."""
        body = self.cached_object(f"{DATASETS_PREFIX}/{version}/{split}.jsonl")
        return [json.loads(line) for line in (body or b"").decode("utf-8").splitlines() if line.strip()]

    # -- DynamoDB -----------------------------------------------------------------------------------

    def captions_on(self, day: str) -> list[dict[str, Any]]:
        """Every caption item ingested for partition ``day`` (``IngestDateIndex``), by image key."""

        def read() -> list[dict[str, Any]]:
            pages = self.client("dynamodb").get_paginator("query").paginate(
                TableName=self.settings.table,
                IndexName=catalog.INGEST_DATE_INDEX,
                KeyConditionExpression="#d = :d",
                ExpressionAttributeNames={"#d": catalog.INGEST_DATE},
                ExpressionAttributeValues={":d": {"S": day}},
            )
            return [catalog.from_typed(item) for page in pages for item in page.get("Items", [])]

        return self.cache.get(("captions_on", day), lambda: self._source("caption table", read))

    # -- monitoring and labeling (ogiri_monitor, ogiri_label) ---------------------------------------

    def monitoring_windows(self, endpoint: str, limit: int) -> list[dict[str, Any]]:
        """The endpoint's latest ``limit`` monitoring windows, oldest first."""
        rows = self.cache.get(("monitoring", endpoint, limit), lambda: self._source(
            "run ledger", lambda: self.ledger().latest_monitoring_windows(endpoint, limit)))
        return sorted(rows, key=lambda r: r["window_start"])

    def monitoring_endpoints(self) -> list[str]:
        """Every endpoint with monitoring windows."""
        return self.cache.get(("monitoring_endpoints",), lambda: self._source(
            "run ledger", lambda: self.ledger().monitored_endpoints()))

    def labeling_jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest labeling jobs, newest first."""
        return self.cache.get(("labeling", limit), lambda: self._source(
            "run ledger", lambda: self.ledger().latest_labeling_jobs(limit)))

    def labeling_summary(self, job: str) -> dict[str, Any] | None:
        """``labeling/<job>/report/summary.json``, or None when the job has no report yet."""
        body = self.cached_object(labeling_summary_key(job))
        return json.loads(body) if body else None

    # -- Airflow's metadata DB (the API server's own) -----------------------------------------------

    def scheduled_run_ids(self, dag_id: str, logical_dates: tuple[str, ...]) -> dict[str, str]:
        """Airflow's run id of each run of ``dag_id`` at ``logical_dates`` (ISO-8601; a scheduled run's
        id comes from its ``run_after``, which the ledger's run key does not hold), keyed by the given text."""
        wanted = {datetime.fromisoformat(d).astimezone(UTC): d for d in logical_dates}

        def read() -> dict[str, str]:
            from airflow.models.dagrun import DagRun
            from airflow.utils.session import create_session
            from sqlalchemy import select

            query = select(DagRun.logical_date, DagRun.run_id).where(
                DagRun.dag_id == dag_id, DagRun.logical_date.in_(list(wanted)))
            with create_session() as session:
                rows = session.execute(query).all()
            return {wanted[ld.astimezone(UTC)]: run_id for ld, run_id in rows if ld.astimezone(UTC) in wanted}

        if not wanted:
            return {}
        return self.cache.get(("run_ids", dag_id, logical_dates),
                              lambda: self._source("Airflow metadata database", read))


def monitoring_report_key(endpoint: str, hour: str) -> str:
    """The S3 key of a window's ``report.json`` (``hour`` is ``YYYY-MM-DDTHH``)."""
    return f"{MONITORING_PREFIX}/{endpoint}/{hour}/report.json"


def labeling_summary_key(job: str) -> str:
    """The S3 key of a labeling job's ``summary.json``."""
    return f"{LABELING_PREFIX}/{job}/report/summary.json"


def label_counts(records: list[dict[str, Any]]) -> Counter:
    """How many manifest records carry each Rekognition label."""
    return Counter(label for r in records for label in (r.get("labels") or []))
