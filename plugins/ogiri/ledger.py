"""The run ledger: ingest runs, training runs, evaluations, deployments, batch captions and monitoring windows in SQL.

The SQL lives in ``include/sql/ledger/*.sql`` (portable between SQLite and PostgreSQL, ``:name``
bind parameters, converted here to the driver's style). Access goes through the common-sql
``DbApiHook`` of the Airflow connection ``ogiri_ledger`` (``Settings.ledger_conn_id``):

* local default, SQLite: ``AIRFLOW_CONN_OGIRI_LEDGER='sqlite://%2Fabs%2Fpath%2Fledger.db'`` or
  ``AIRFLOW_CONN_OGIRI_LEDGER='{"conn_type": "sqlite", "host": "/abs/path/ledger.db"}'``
  (the SQLite hook reads the file path from the connection *host*);
* production, PostgreSQL: ``AIRFLOW_CONN_OGIRI_LEDGER='postgres://user:pass@host:5432/dbname'``.

Every write is an upsert keyed on the natural key, so task retries and reruns never duplicate rows;
:meth:`Ledger.ensure_schema` is idempotent. Only DB-API and the hook are used: no SQLAlchemy models.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

#: Default location of the SQL files; override with ``OGIRI_SQL_DIR`` (a directory holding ``ledger/``).
DEFAULT_SQL_DIR = Path(__file__).resolve().parents[2] / "include" / "sql"

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_JSON_COLUMNS = frozenset(
    {"rejected_by_reason", "hyperparameters", "metrics", "candidate_metrics", "champion_metrics", "alarms",
     "scores", "violations"}
)
#: Columns added to existing tables after their first release: ``ensure_schema`` adds the missing
#: ones to a ledger created before (SQLite and PostgreSQL both take ``ALTER TABLE … ADD COLUMN``).
ADDED_COLUMNS: dict[str, dict[str, str]] = {
    "deployments": {"strategy": "TEXT", "alarms": "TEXT", "outcome": "TEXT", "outcome_alarm": "TEXT"},
    # ogiri_label's ratings of model captions (medians 1-5, their mean, workers, the labeling job).
    "batch_captions": {"rating_fit": "DOUBLE PRECISION", "rating_humour": "DOUBLE PRECISION",
                       "rating": "DOUBLE PRECISION", "rating_count": "INTEGER", "rating_job": "TEXT"},
    # issue 14: what started the training run (captions | drift | manual); see TrainingRun.triggered_by
    "training_runs": {"triggered_by": "TEXT"},
}

DEPLOY_ACTIONS = ("create", "update", "rollback", "skip")
DEPLOY_STATUSES = ("pending", "in_progress", "succeeded", "failed")
#: How a guarded update ended: the new fleet took all traffic, or SageMaker rolled it back because
#: an auto-rollback alarm fired (``outcome_alarm`` names it), or the smoke test rolled it back.
DEPLOY_OUTCOMES = ("succeeded", "rolled_back_by_alarm", "rolled_back_by_smoke_test", "failed")


class LedgerError(RuntimeError):
    """The ledger cannot be reached or a record is not valid."""


def sql_dir() -> Path:
    """The directory holding ``ledger/*.sql``."""
    return Path(os.environ.get("OGIRI_SQL_DIR") or DEFAULT_SQL_DIR)


@cache
def _read_sql(directory: str, name: str) -> str:
    path = Path(directory) / "ledger" / f"{name}.sql"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise LedgerError(f"ledger SQL file {path} is missing (set OGIRI_SQL_DIR?)") from exc
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip()


def load_sql(name: str) -> str:
    """The text of ``ledger/<name>.sql`` without full-line comments."""
    return _read_sql(str(sql_dir()), name)


def to_dialect(sql: str, dialect: str) -> str:
    """Convert ``:name`` bind parameters to the driver's style (``:name`` for SQLite, ``%(name)s`` else)."""
    if dialect == "sqlite":
        return sql
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


def param_names(sql: str) -> list[str]:
    """The ``:name`` parameters a statement needs, in order of first use."""
    return list(dict.fromkeys(_PARAM.findall(sql)))


def utcnow() -> str:
    """Current UTC time as sortable ISO-8601 text with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _json(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@dataclass
class IngestRun:
    """Summary of one ingestion run (one partition date)."""

    run_key: str
    dag_id: str
    run_id: str
    partition_date: str
    status: str
    rows_in: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    images_fetched: int = 0
    bytes_fetched: int = 0
    labels: int = 0
    elapsed_s: float = 0.0
    message: str | None = None

    @classmethod
    def from_summary(cls, *, run_key: str, dag_id: str, run_id: str, partition_date: str, status: str,
                     summary: Any = None, message: str | None = None) -> IngestRun:
        """The row of a run from its :class:`~ogiri.ingest.accounting.RunSummary` (None: nothing counted)."""
        counts = {}
        if summary is not None:
            values = summary.as_dict()
            counts = {f.name: values[f.name] for f in fields(cls) if f.name in values and f.name != "partition_date"}
        return cls(run_key=run_key, dag_id=dag_id, run_id=run_id, partition_date=partition_date, status=status,
                   message=message, **counts)


@dataclass
class TrainingRun:
    """A SageMaker training job. ``None`` fields keep what the ledger already holds."""

    job_name: str
    status: str
    run_key: str | None = None
    dataset_version: str | None = None
    hyperparameters: dict[str, Any] | None = None
    instance_type: str | None = None
    instance_count: int | None = None
    billable_seconds: int | None = None
    cost_usd: float | None = None
    failure_reason: str | None = None
    model_artifact: str | None = None
    metrics: dict[str, Any] | None = None
    #: What started the run: ``captions`` (new data), ``drift`` (an ``ogiri_drift`` event) or ``manual``.
    triggered_by: str | None = None

    @classmethod
    def from_description(cls, job: Mapping[str, Any], *, run_key: str, dataset_version: str | None,
                         hyperparameters: dict[str, Any], cost: Any, metrics: dict[str, Any],
                         triggered_by: str | None = None) -> TrainingRun:
        """The row of a ``DescribeTrainingJob`` answer and its :class:`~ogiri.train.cost.JobCost`."""
        return cls(
            job_name=job["TrainingJobName"],
            status=job["TrainingJobStatus"],
            run_key=run_key,
            dataset_version=dataset_version,
            hyperparameters=hyperparameters,
            instance_type=cost.instance_type,
            instance_count=cost.instance_count,
            billable_seconds=cost.billable_seconds,
            cost_usd=cost.usd,
            failure_reason=job.get("FailureReason"),
            model_artifact=(job.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
            metrics=metrics,
            triggered_by=triggered_by,
        )


@dataclass
class Evaluation:
    """A champion/challenger decision for one candidate training job."""

    candidate_job: str
    decision: str
    run_key: str | None = None
    champion_job: str | None = None
    champion_model: str | None = None
    candidate_metrics: dict[str, Any] | None = None
    champion_metrics: dict[str, Any] | None = None
    reason: str | None = None
    evaluation_uri: str | None = None


@dataclass
class Deployment:
    """An endpoint action of one run. ``status`` in :data:`DEPLOY_STATUSES`, ``action`` in
    :data:`DEPLOY_ACTIONS`; a ``succeeded`` create/update/rollback makes its model the champion."""

    run_key: str
    endpoint_name: str
    action: str
    status: str
    endpoint_config: str | None = None
    model_name: str | None = None
    training_job: str | None = None
    model_artifact: str | None = None
    reason: str | None = None
    #: Traffic shifting of the update (``all_at_once`` / ``canary`` / ``linear``), its auto-rollback
    #: alarms, and how it ended (:data:`DEPLOY_OUTCOMES`; ``outcome_alarm``: the alarm that fired).
    strategy: str | None = None
    alarms: list[str] | None = None
    outcome: str | None = None
    outcome_alarm: str | None = None

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in DEPLOY_OUTCOMES:
            raise LedgerError(f"deployment outcome {self.outcome!r} not in {DEPLOY_OUTCOMES}")
        if self.action not in DEPLOY_ACTIONS:
            raise LedgerError(f"deployment action {self.action!r} not in {DEPLOY_ACTIONS}")
        if self.status not in DEPLOY_STATUSES:
            raise LedgerError(f"deployment status {self.status!r} not in {DEPLOY_STATUSES}")


@dataclass
class BatchCaption:
    """The caption (or error) one model gave one image in a batch transform."""

    image_key: str
    model_name: str
    caption: str | None = None
    score: float | None = None
    error: str | None = None
    job_name: str | None = None
    run_key: str | None = None


@dataclass
class LabelingJob:
    """One Ground Truth labeling job of ``ogiri_label`` (``objects_in = labeled + rejected + expired``)."""

    job_name: str
    task_type: str
    status: str
    run_key: str | None = None
    objects_in: int = 0
    labeled: int = 0
    rejected: int = 0
    expired: int = 0
    workers_per_object: int | None = None
    mean_agreement: float | None = None
    report_uri: str | None = None

    def __post_init__(self) -> None:
        if self.objects_in != self.labeled + self.rejected + self.expired:
            raise LedgerError(f"labeling job {self.job_name}: objects_in {self.objects_in} != labeled "
                              f"{self.labeled} + rejected {self.rejected} + expired {self.expired}")


#: ``monitoring_windows.status``: report.json's statuses, plus ``failed`` (the job did not complete).
MONITOR_STATUSES = ("ok", "violation", "empty", "no_baseline", "failed")


@dataclass
class MonitoringWindow:
    """The drift check of one endpoint's hourly capture window (``ogiri_monitor``)."""

    endpoint_name: str
    window_start: str
    window_end: str
    status: str
    run_key: str | None = None
    model_name: str | None = None
    records: int = 0
    bad_records: int = 0
    scores: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    report_uri: str | None = None
    processing_job: str | None = None
    alert_message_id: str | None = None

    def __post_init__(self) -> None:
        if self.status not in MONITOR_STATUSES:
            raise LedgerError(f"monitoring status {self.status!r} not in {MONITOR_STATUSES}")


class Ledger:
    """Typed access to the ledger tables through a common-sql ``DbApiHook``."""

    def __init__(self, hook: Any):
        self.hook = hook
        self.hook.log_sql = False
        self.dialect = self._detect_dialect(hook)

    @classmethod
    def from_connection(cls, conn_id: str | None = None) -> Ledger:
        """The ledger behind an Airflow connection (default ``get_settings().ledger_conn_id``)."""
        from airflow.sdk import BaseHook

        from ogiri.config import get_settings

        conn_id = conn_id or get_settings().ledger_conn_id
        try:
            conn = BaseHook.get_connection(conn_id)
        except Exception as exc:
            raise LedgerError(
                f"ledger connection {conn_id!r} is not defined; set e.g. "
                f"AIRFLOW_CONN_{conn_id.upper()}='sqlite://%2Fabs%2Fpath%2Fledger.db'"
            ) from exc
        return cls(conn.get_hook())

    @staticmethod
    def _detect_dialect(hook: Any) -> str:
        conn_type = (getattr(hook, "conn_type", None) or "").lower()
        if conn_type == "sqlite" or getattr(hook, "placeholder", None) == "?":
            return "sqlite"
        if conn_type in {"postgres", "postgresql"} or "postgres" in type(hook).__name__.lower():
            return "postgres"
        raise LedgerError(f"unsupported ledger database {type(hook).__name__} (use SQLite or PostgreSQL)")

    # -- plumbing -------------------------------------------------------------------------------

    def _params(self, sql: str, values: Mapping[str, Any]) -> dict[str, Any]:
        missing = [n for n in param_names(sql) if n not in values]
        if missing:
            raise LedgerError(f"missing ledger parameters: {', '.join(missing)}")
        return {n: values[n] for n in param_names(sql)}

    def execute(self, name: str, values: Mapping[str, Any]) -> None:
        """Run the statement ``ledger/<name>.sql`` with ``values`` in its own transaction."""
        self.execute_many(name, [values])

    def execute_many(self, name: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Run ``ledger/<name>.sql`` once per row, all in one transaction. Returns the row count."""
        sql = load_sql(name)
        params = [self._params(sql, row) for row in rows]
        if not params:
            return 0
        with closing(self.hook.get_conn()) as conn:
            cur = conn.cursor()
            try:
                cur.executemany(to_dialect(sql, self.dialect), params)
                conn.commit()
            except Exception:
                conn.rollback()
                raise
            finally:
                cur.close()
        return len(params)

    def query(self, name: str, values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of the query ``ledger/<name>.sql`` as dicts (JSON columns decoded)."""
        sql = load_sql(name)
        params = self._params(sql, values or {})
        with closing(self.hook.get_conn()) as conn:
            cur = conn.cursor()
            try:
                cur.execute(to_dialect(sql, self.dialect), params)
                columns = [d[0] for d in cur.description]
                rows = cur.fetchall()
            finally:
                cur.close()
            conn.rollback()
        return [_decode(dict(zip(columns, row, strict=True))) for row in rows]

    def ensure_schema(self) -> None:
        """Create the ledger tables and indexes if missing (safe to call on every task)."""
        statements = [s.strip() for s in load_sql("schema").split(";") if s.strip()]
        with closing(self.hook.get_conn()) as conn:
            cur = conn.cursor()
            try:
                for statement in statements:
                    cur.execute(statement)
                _add_missing_columns(cur)
                conn.commit()
            except Exception:
                conn.rollback()
                raise
            finally:
                cur.close()

    # -- records --------------------------------------------------------------------------------

    def record_ingest_run(self, run: IngestRun) -> None:
        """Insert or overwrite the summary of ``run.run_key``."""
        self.execute("upsert_ingest_run", _row(run))

    def record_training_run(self, run: TrainingRun) -> None:
        """Insert a training job or update the fields given (``None`` keeps the stored value)."""
        self.execute("upsert_training_run", _row(run))

    def record_evaluation(self, evaluation: Evaluation) -> None:
        """Insert or overwrite the evaluation of ``evaluation.candidate_job``."""
        self.execute("upsert_evaluation", _row(evaluation))

    def record_deployment(self, deployment: Deployment) -> None:
        """Insert or update the deployment of (run_key, endpoint_name)."""
        row = _row(deployment)
        row["deployed_at"] = row["now"] if deployment.status == "succeeded" else None
        self.execute("upsert_deployment", row)

    def record_batch_captions(self, captions: Iterable[BatchCaption]) -> int:
        """Upsert many captions in one transaction; returns how many were written."""
        now = utcnow()
        return self.execute_many("upsert_batch_caption", (_row(c, now) for c in captions))

    def record_labeling_job(self, job: LabelingJob) -> None:
        """Insert or overwrite the row of ``job.job_name``."""
        self.execute("upsert_labeling_job", _row(job))

    def rate_batch_captions(self, ratings: Iterable[Mapping[str, Any]]) -> int:
        """Store people's ratings on ``batch_captions`` rows (``image_key``, ``model_name``, ``rating_fit``,
        ``rating_humour``, ``rating``, ``rating_count``, ``rating_job``); returns how many were given."""
        now = utcnow()
        return self.execute_many("rate_batch_caption", ({**r, "now": now} for r in ratings))

    def record_monitoring_window(self, window: MonitoringWindow) -> None:
        """Insert or overwrite the result of (endpoint_name, window_start)."""
        self.execute("upsert_monitoring_window", _row(window))

    def set_monitoring_alert(self, endpoint_name: str, window_start: str, message_id: str) -> None:
        """Attach the SNS message id of the alert sent for one window."""
        self.execute("set_monitoring_alert", {"endpoint_name": endpoint_name, "window_start": window_start,
                                              "alert_message_id": message_id, "now": utcnow()})

    # -- lookups --------------------------------------------------------------------------------

    def get_ingest_run(self, run_key: str) -> dict[str, Any] | None:
        """The stored summary of one ingest run, or None."""
        return _one(self._select("ingest_runs", "run_key", run_key))

    def ingest_runs_for(self, partition_date: str) -> list[dict[str, Any]]:
        """Every ingest run of a partition date, newest first."""
        return self.query("select_ingest_runs", {"partition_date": partition_date})

    def get_training_run(self, job_name: str) -> dict[str, Any] | None:
        """One training job's row, or None."""
        return _one(self._select("training_runs", "job_name", job_name))

    def get_evaluation(self, candidate_job: str) -> dict[str, Any] | None:
        """The evaluation of one candidate job, or None."""
        return _one(self._select("evaluations", "candidate_job", candidate_job))

    def latest_evaluation_for_run(self, run_key: str) -> dict[str, Any] | None:
        """The most recent evaluation recorded by run ``run_key`` (it names the run's winning candidate)."""
        rows = self._select("evaluations", "run_key", run_key)
        return max(rows, key=lambda r: (r["updated_at"], r["created_at"])) if rows else None

    def deployment_history(self, endpoint_name: str) -> list[dict[str, Any]]:
        """All deployment decisions of an endpoint, newest first."""
        return self.query("deployment_history", {"endpoint_name": endpoint_name})

    def champion(self, endpoint_name: str) -> dict[str, Any] | None:
        """The model now serving on ``endpoint_name`` (latest succeeded create/update/rollback)."""
        return _one(self.query("champion", {"endpoint_name": endpoint_name}))

    def batch_captions(self, job_name: str) -> list[dict[str, Any]]:
        """Captions written by one batch transform job."""
        return self.query("select_batch_captions", {"job_name": job_name})

    def latest_batch_captions(self) -> list[dict[str, Any]]:
        """The captions of the latest batch-caption run, lowest score first (errors left out)."""
        return self.query("select_latest_batch_captions")

    def get_labeling_job(self, job_name: str) -> dict[str, Any] | None:
        """One labeling job's row, or None."""
        return _one(self._select("labeling_jobs", "job_name", job_name))

    def champion_at(self, endpoint_name: str, at: str) -> dict[str, Any] | None:
        """The model that served ``endpoint_name`` at ``at`` (ISO UTC): the latest successful
        create/update/rollback deployed before it, or None."""
        return _one(self.query("champion_at", {"endpoint_name": endpoint_name, "at": at}))

    def monitoring_windows(self, endpoint_name: str) -> list[dict[str, Any]]:
        """The monitored windows of an endpoint, newest first (scores and violations decoded)."""
        return self.query("select_monitoring_windows", {"endpoint_name": endpoint_name})

    def _select(self, table: str, key: str, value: str) -> list[dict[str, Any]]:
        # table/key come from the fixed method set above, never from callers.
        sql = f"SELECT * FROM {table} WHERE {key} = :value"  # noqa: S608
        with closing(self.hook.get_conn()) as conn:
            cur = conn.cursor()
            try:
                cur.execute(to_dialect(sql, self.dialect), {"value": value})
                columns = [d[0] for d in cur.description]
                rows = cur.fetchall()
            finally:
                cur.close()
            conn.rollback()
        return [_decode(dict(zip(columns, row, strict=True))) for row in rows]

    # -- reads for the UI's Monitoring and Labeling pages (ui-pages) ------------------------------

    def latest_monitoring_windows(self, endpoint_name: str, limit: int) -> list[dict[str, Any]]:
        """The latest ``limit`` monitoring windows of an endpoint, newest first (``scores``, ``violations`` decoded)."""
        rows = self.query("ui_monitoring", {"endpoint_name": endpoint_name, "limit": limit})
        for row in rows:
            for key, empty in (("scores", "{}"), ("violations", "[]")):
                if isinstance(row.get(key), str) or row.get(key) is None:
                    row[key] = json.loads(row.get(key) or empty)
        return rows

    def monitored_endpoints(self) -> list[str]:
        """Every endpoint that has at least one monitoring window, by name."""
        return [r["endpoint_name"] for r in self.query("ui_monitoring_endpoints")]

    def latest_labeling_jobs(self, limit: int) -> list[dict[str, Any]]:
        """The latest ``limit`` labeling jobs, newest first."""
        return self.query("ui_labeling", {"limit": limit})


def _add_missing_columns(cur: Any) -> None:
    """``ALTER TABLE … ADD COLUMN`` for each :data:`ADDED_COLUMNS` entry an older ledger lacks."""
    for table, columns in ADDED_COLUMNS.items():
        cur.execute(f"SELECT * FROM {table} WHERE 1 = 0")  # noqa: S608 - table names are constants
        present = {d[0].lower() for d in cur.description}
        for column, kind in columns.items():
            if column not in present:
                cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _row(record: Any, now: str | None = None) -> dict[str, Any]:
    row = {k: (_json(v) if k in _JSON_COLUMNS else v) for k, v in asdict(record).items()}
    row["now"] = now or utcnow()
    return row


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON_COLUMNS & row.keys():
        if isinstance(row[key], str):
            row[key] = json.loads(row[key])
    return row


def _one(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return rows[0] if rows else None
