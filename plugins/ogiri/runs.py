"""One run context per task: the DAG run's params merged with the deployment settings once, its run
key and resource names, AWS clients, the ledger and cached describes.

Task bodies take a :class:`Run` (``def build_dataset(run: Run) -> …``) instead of re-reading the
context, re-merging params with settings, or building their own clients. The DAG file builds it with
:meth:`Run.from_context`; tests and scripts with :meth:`Run.for_key`.

Per-run defaults live in the DAG's ``Param``s; deployment defaults in :class:`~ogiri.config.Settings`.
A pipeline's ``defaults`` map says which ``Param`` falls back to which setting when the form leaves it
empty (``None`` or ``""``), so no task code carries a literal default of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from ogiri.config import Settings, get_settings
from ogiri.naming import run_key as make_run_key

log = logging.getLogger(__name__)


class InvalidParam(AirflowFailException, ValueError):  # noqa: N818 - reads as "invalid param" in the log
    """A trigger-form value no retry can fix: the task fails at once (no retries), naming the param.

    Transient and AWS errors keep raising their own exceptions, so they keep the task's retries.
    """

    def __init__(self, name: str, value: Any, why: str):
        self.param, self.value = name, value
        super().__init__(f"param {name}={value!r}: {why}")


def previous_day(when: datetime) -> str:
    """The UTC day before ``when`` (``YYYY-MM-DD``): the partition a nightly run covers."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return (when.date() - timedelta(days=1)).isoformat()


def form_values(params: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """What an untouched trigger form with these ``Param``s submits, with ``overrides``."""
    values = {name: param.value for name, param in params.items()}
    values.update(overrides)
    return values


def merge_params(params: Mapping[str, Any] | None, settings: Settings, defaults: Mapping[str, str]) -> dict:
    """``params`` with every empty (``None``/``""``) entry named in ``defaults`` replaced by that setting."""
    merged = dict(params or {})
    for name, setting in defaults.items():
        if merged.get(name) in (None, ""):
            merged[name] = getattr(settings, setting)
    return merged


def triggering_events(accessor: Mapping[Any, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """``{asset name: [event extra, …]}`` of a context's ``triggering_asset_events`` (aliases left out)."""
    events: dict[str, list[dict[str, Any]]] = {}
    for asset in accessor or {}:
        name = getattr(asset, "name", None)
        if name and getattr(asset, "uri", None) is not None:
            events[name] = [dict(getattr(event, "extra", None) or {}) for event in accessor[asset]]
    return events


@dataclass
class Run:
    """What one task knows about its DAG run (see the module docstring)."""

    dag_id: str
    run_id: str
    key: str
    params: dict[str, Any]
    settings: Settings
    logical_date: datetime | None = None
    run_after: datetime | None = None
    names: Any = None
    #: ``{asset name: [event extra, …]}`` of the asset events that triggered the run (empty for
    #: scheduled and manual runs): e.g. ``ogiri_train`` tells a drift-triggered run by it.
    asset_events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    #: The AWS connection, looked up and wrapped once per task (not once per client).
    _connection: Any = field(default=None, repr=False)
    _describes: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    _ledger: Any = field(default=None, repr=False)

    @classmethod
    def from_context(
        cls,
        context: Mapping[str, Any] | None = None,
        *,
        defaults: Mapping[str, str] | None = None,
        names: Callable[[str], Any] | None = None,
    ) -> Run:
        """The run of the running task (Airflow context); ``names`` builds resource names from the key."""
        if context is None:
            from airflow.sdk import get_current_context

            context = get_current_context()
        dag_run = context["dag_run"]
        logical_date = context.get("logical_date")
        settings = get_settings()
        key = make_run_key(dag_run.dag_id, dag_run.run_id, logical_date)
        return cls(
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            key=key,
            params=merge_params(context.get("params"), settings, defaults or {}),
            settings=settings,
            logical_date=logical_date,
            run_after=getattr(dag_run, "run_after", None),
            names=names(key) if names else None,
            asset_events=triggering_events(context.get("triggering_asset_events")),
        )

    @classmethod
    def for_key(
        cls,
        key: str,
        params: Mapping[str, Any] | None = None,
        *,
        defaults: Mapping[str, str] | None = None,
        names: Callable[[str], Any] | None = None,
        settings: Settings | None = None,
    ) -> Run:
        """A run outside Airflow (tests, scripts), identified by its run key ``<dag_id>:<id>``."""
        settings = settings or get_settings()
        dag_id, _, run_id = key.partition(":")
        return cls(
            dag_id=dag_id,
            run_id=run_id,
            key=key,
            params=merge_params(params, settings, defaults or {}),
            settings=settings,
            names=names(key) if names else None,
        )

    def partition_date(self) -> str | None:
        """The UTC day before the logical date (or the run-after time of a run without one)."""
        when = self.logical_date or self.run_after
        return previous_day(when) if when else None

    def client(self, service: str, config: Any = None) -> Any:
        """A boto3 client through the configured AWS connection. Plain clients are shared per service
        within the task; a client with its own ``config`` (pool size, retries) is built as asked."""
        from ogiri.aws import client, connection

        if self._connection is None:
            self._connection = connection(self.settings)
        if config is not None:
            return client(service, settings=self.settings, config=config, conn=self._connection)
        if service not in self._clients:
            self._clients[service] = client(service, settings=self.settings, conn=self._connection)
        return self._clients[service]

    @property
    def ledger(self) -> Any:
        """The run ledger (``Settings.ledger_conn_id``), its schema ensured once per task."""
        if self._ledger is None:
            from ogiri.ledger import Ledger

            book = Ledger.from_connection(self.settings.ledger_conn_id)
            book.ensure_schema()
            self._ledger = book
        return self._ledger

    def describe(self, kind: str, name: str, *, fresh: bool = False) -> dict[str, Any]:
        """``sagemaker.describe_<kind>`` of ``name`` (e.g. ``training_job``), cached for this task."""
        if fresh or (kind, name) not in self._describes:
            call = getattr(self.client("sagemaker"), f"describe_{kind}")
            field_name = "".join(part.capitalize() for part in kind.split("_")) + "Name"
            self._describes[(kind, name)] = call(**{field_name: name})
        return self._describes[(kind, name)]
