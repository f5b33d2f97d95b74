"""Deployment settings from ``OGIRI_*`` environment variables, read lazily.

Nothing here touches AWS or the Airflow metadata DB, so DAG files may import it freely; call
:func:`get_settings` inside tasks (or templates), not at module level, so a changed environment is
picked up by the next task run.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

#: On-demand USD per hour for the instance types we use (us-east-1 list prices); override with
#: ``OGIRI_INSTANCE_PRICES`` (JSON object). Used to make the cost of each run visible.
DEFAULT_INSTANCE_PRICES: dict[str, float] = {
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.c5.xlarge": 0.204,
    "ml.g4dn.xlarge": 0.736,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.g6.xlarge": 1.167,
    "ml.p3.2xlarge": 3.825,
}


class ConfigError(ValueError):
    """A setting is present but not valid."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not an integer") from exc


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(raw: str) -> bool | None:
    """``True``/``False`` for the usual spellings (``1/0``, ``true/false``, ``yes/no``, ``on/off``), else None."""
    value = raw.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "true" if default else "false")
    value = parse_bool(raw)
    if value is None:
        raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")
    return value


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in _env(name, "").split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """All deployment constants. Per-run overrides come from DAG ``Param``s, not from here."""

    bucket: str = "ogiri-mlops"
    table: str = "ogiri-captions"
    region: str = "us-east-1"
    sagemaker_role_arn: str = "arn:aws:iam::123456789012:role/ogiri-sagemaker-execution"
    aws_conn_id: str = "aws_default"
    ledger_conn_id: str = "ogiri_ledger"
    # Training / serving
    training_instance_type: str = "ml.g5.xlarge"
    processing_instance_type: str = "ml.m5.xlarge"
    endpoint_instance_type: str = "ml.g5.xlarge"
    transform_instance_type: str = "ml.m5.xlarge"
    endpoint_name: str = "ogiri-captioner"
    #: Training defaults for runs that leave the form empty (asset-triggered runs always do):
    #: production values here; local mode sets small ones through ``OGIRI_TRAIN_*``.
    train_epochs: int = 10
    train_image_size: int = 224
    train_encoder: str = "resnet50"
    train_use_spot: bool = True
    framework_version: str = "2.5"
    py_version: str = "py311"
    # Ingestion
    max_caption_chars: int = 280
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_image_side: int = 512
    fetch_concurrency: int = 16
    #: One fetch's limits: TCP connect, each socket read, and the whole fetch (DNS, connect, TLS,
    #: status line, headers, body, every redirect hop).
    fetch_connect_timeout_s: float = 5.0
    fetch_read_timeout_s: float = 15.0
    fetch_total_timeout_s: float = 60.0
    #: ``bucket`` or ``bucket/prefix/`` entries ``s3://`` rows may read. Empty = the product
    #: bucket's ``landing/`` and ``images/`` (see :meth:`s3_sources`).
    allowed_s3_sources: tuple[str, ...] = ()
    #: Decoded-pixel memory all concurrent image decodes of one chunk task may hold at once (MiB).
    decode_memory_mb: int = 512
    rekognition_tps: float = 20.0  # one ingest run's DetectLabels budget (its chunk tasks share it)
    rekognition_min_confidence: float = 70.0
    ingest_chunk_rows: int = 500
    #: ``host:port`` pairs (or bare hosts) that may resolve to private/loopback addresses.
    #: Local mode only; empty (off) by default.
    private_host_allowlist: tuple[str, ...] = ()
    # Evaluation gate
    min_cider_improvement: float = 0.02
    max_bleu_regression: float = 0.01
    min_new_images: int = 20
    #: Seconds between SageMaker status polls in task code (endpoint waits, rollbacks, transforms).
    sagemaker_poll_seconds: int = 30
    # Guarded endpoint updates: the auto-rollback alarms on the new fleet
    #: 5XX error rate (Average of Invocation5XXErrors) above which a deployment rolls back.
    alarm_max_5xx_rate: float = 0.05
    #: p99 ModelLatency (milliseconds) above which a deployment rolls back.
    alarm_max_p99_latency_ms: float = 5000.0
    #: The alarms' period (seconds; 10, 30 or a multiple of 60). SageMaker publishes each minute.
    alarm_period_s: int = 60
    #: Baking period after each traffic-shifting step (seconds) when the form leaves it empty.
    deploy_wait_interval_s: int = 300
    instance_prices: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_INSTANCE_PRICES))
    #: Seconds the Ogiri UI pages keep a ledger/S3/DynamoDB answer before reading it again.
    ui_cache_s: float = 30.0
    # Monitoring (issue 14): where the ogiri_monitor DAG sends drift alerts (the template's AlertTopic).
    alert_topic_arn: str = ""
    # Monitoring: endpoint data capture (s3://<bucket>/capture/)
    #: Share of the endpoint's requests captured (0-100) when the ogiri_train form leaves
    #: ``capture_sampling_percent`` empty; 0 turns capture off (EnableCapture false).
    capture_sampling_percent: int = 100
    # Labeling (Ground Truth; the template's outputs)
    #: Private work team (``OGIRI_WORKTEAM_ARN``).
    workteam_arn: str = ""
    #: The pre-annotation and consolidation Lambdas and the labeling execution role of the template.
    labeling_pre_lambda_arn: str = ""
    labeling_consolidation_lambda_arn: str = ""
    labeling_role_arn: str = ""

    def price_per_hour(self, instance_type: str) -> float | None:
        """On-demand price of ``instance_type`` in USD/hour, or None when unknown."""
        return self.instance_prices.get(instance_type)

    def s3_sources(self) -> tuple[str, ...]:
        """The ``s3://`` sources ingestion may read: ``allowed_s3_sources`` or, when empty, the
        product bucket's ``landing/`` and ``images/``."""
        return self.allowed_s3_sources or (f"{self.bucket}/landing/", f"{self.bucket}/images/")

    def s3_uri(self, key: str) -> str:
        """``s3://<bucket>/<key>``."""
        return f"s3://{self.bucket}/{key.lstrip('/')}"

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for logging; holds no secrets)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _instance_prices() -> dict[str, float]:
    """The built-in price table updated with ``OGIRI_INSTANCE_PRICES`` (JSON)."""
    prices = dict(DEFAULT_INSTANCE_PRICES)
    raw_prices = _env("OGIRI_INSTANCE_PRICES", "")
    if raw_prices:
        try:
            prices.update({str(k): float(v) for k, v in json.loads(raw_prices).items()})
        except (ValueError, AttributeError) as exc:
            raise ConfigError("OGIRI_INSTANCE_PRICES must be a JSON object of instance type -> USD/hour") from exc
    return prices


def get_settings() -> Settings:
    """Read ``OGIRI_*`` now. Cheap; call it where the value is used."""
    prices = _instance_prices()
    d = Settings()
    return Settings(
        bucket=_env("OGIRI_BUCKET", d.bucket),
        table=_env("OGIRI_TABLE", d.table),
        region=_env("OGIRI_REGION", _env("AWS_DEFAULT_REGION", d.region)),
        sagemaker_role_arn=_env("OGIRI_SAGEMAKER_ROLE_ARN", d.sagemaker_role_arn),
        aws_conn_id=_env("OGIRI_AWS_CONN_ID", d.aws_conn_id),
        ledger_conn_id=_env("OGIRI_LEDGER_CONN_ID", d.ledger_conn_id),
        training_instance_type=_env("OGIRI_TRAINING_INSTANCE_TYPE", d.training_instance_type),
        processing_instance_type=_env("OGIRI_PROCESSING_INSTANCE_TYPE", d.processing_instance_type),
        endpoint_instance_type=_env("OGIRI_ENDPOINT_INSTANCE_TYPE", d.endpoint_instance_type),
        transform_instance_type=_env("OGIRI_TRANSFORM_INSTANCE_TYPE", d.transform_instance_type),
        endpoint_name=_env("OGIRI_ENDPOINT_NAME", d.endpoint_name),
        train_epochs=_env_int("OGIRI_TRAIN_EPOCHS", d.train_epochs),
        train_image_size=_env_int("OGIRI_TRAIN_IMAGE_SIZE", d.train_image_size),
        train_encoder=_env("OGIRI_TRAIN_ENCODER", d.train_encoder),
        train_use_spot=_env_bool("OGIRI_TRAIN_USE_SPOT", d.train_use_spot),
        framework_version=_env("OGIRI_FRAMEWORK_VERSION", d.framework_version),
        py_version=_env("OGIRI_PY_VERSION", d.py_version),
        max_caption_chars=_env_int("OGIRI_MAX_CAPTION_CHARS", d.max_caption_chars),
        max_image_bytes=_env_int("OGIRI_MAX_IMAGE_BYTES", d.max_image_bytes),
        max_image_pixels=_env_int("OGIRI_MAX_IMAGE_PIXELS", d.max_image_pixels),
        max_image_side=_env_int("OGIRI_MAX_IMAGE_SIDE", d.max_image_side),
        fetch_concurrency=_env_int("OGIRI_FETCH_CONCURRENCY", d.fetch_concurrency),
        fetch_connect_timeout_s=_env_float("OGIRI_FETCH_CONNECT_TIMEOUT_S", d.fetch_connect_timeout_s),
        fetch_read_timeout_s=_env_float("OGIRI_FETCH_READ_TIMEOUT_S", d.fetch_read_timeout_s),
        fetch_total_timeout_s=_env_float("OGIRI_FETCH_TOTAL_TIMEOUT_S", d.fetch_total_timeout_s),
        allowed_s3_sources=_env_list("OGIRI_ALLOWED_S3_SOURCES"),
        decode_memory_mb=_env_int("OGIRI_DECODE_MEMORY_MB", d.decode_memory_mb),
        rekognition_tps=_env_float("OGIRI_REKOGNITION_TPS", d.rekognition_tps),
        rekognition_min_confidence=_env_float("OGIRI_REKOGNITION_MIN_CONFIDENCE", d.rekognition_min_confidence),
        ingest_chunk_rows=_env_int("OGIRI_INGEST_CHUNK_ROWS", d.ingest_chunk_rows),
        private_host_allowlist=_env_list("OGIRI_PRIVATE_HOST_ALLOWLIST"),
        min_cider_improvement=_env_float("OGIRI_MIN_CIDER_IMPROVEMENT", d.min_cider_improvement),
        max_bleu_regression=_env_float("OGIRI_MAX_BLEU_REGRESSION", d.max_bleu_regression),
        min_new_images=_env_int("OGIRI_MIN_NEW_IMAGES", d.min_new_images),
        sagemaker_poll_seconds=max(1, _env_int("OGIRI_SAGEMAKER_POLL_SECONDS", d.sagemaker_poll_seconds)),
        alarm_max_5xx_rate=_env_float("OGIRI_ALARM_MAX_5XX_RATE", d.alarm_max_5xx_rate),
        alarm_max_p99_latency_ms=_env_float("OGIRI_ALARM_MAX_P99_LATENCY_MS", d.alarm_max_p99_latency_ms),
        alarm_period_s=_env_int("OGIRI_ALARM_PERIOD_S", d.alarm_period_s),
        deploy_wait_interval_s=_env_int("OGIRI_DEPLOY_WAIT_INTERVAL_S", d.deploy_wait_interval_s),
        instance_prices=prices,
        ui_cache_s=_env_float("OGIRI_UI_CACHE_S", d.ui_cache_s),
        alert_topic_arn=_env("OGIRI_ALERT_TOPIC_ARN", d.alert_topic_arn),
        capture_sampling_percent=_env_percent("OGIRI_CAPTURE_SAMPLING_PERCENT", d.capture_sampling_percent),
        workteam_arn=_env("OGIRI_WORKTEAM_ARN", d.workteam_arn),
        labeling_pre_lambda_arn=_env("OGIRI_LABELING_PRE_LAMBDA_ARN", d.labeling_pre_lambda_arn),
        labeling_consolidation_lambda_arn=_env(
            "OGIRI_LABELING_CONSOLIDATION_LAMBDA_ARN", d.labeling_consolidation_lambda_arn
        ),
        labeling_role_arn=_env("OGIRI_LABELING_ROLE_ARN", d.labeling_role_arn),
    )


def _env_percent(name: str, default: int) -> int:
    value = _env_int(name, default)
    if not 0 <= value <= 100:
        raise ConfigError(f"{name}={value} must be between 0 and 100")
    return value


@dataclass(frozen=True)
class ParseKnobs:
    """The few deployment knobs a DAG file needs while it is parsed (operator arguments that cannot
    be templated: schedule start, sensor timing, poll intervals). Read by :func:`parse_knobs`."""

    sagemaker_poll_seconds: int = 30
    landing_timeout_s: int = 6 * 3600
    landing_poke_s: int = 300
    landing_deferrable: bool = True
    ingest_start_date: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    #: ``ogiri_train``'s ``max_active_tis_per_dagrun`` on ``train_model``: at most this many candidate
    #: training jobs (GPU instances) of one run at once. The scheduler reads it from the serialized DAG,
    #: so it cannot come from a run's Params.
    max_parallel_training: int = 2
    #: Airflow pool of the tasks that run SageMaker jobs (training, evaluation, batch transform):
    #: ``OGIRI_SAGEMAKER_POOL=sagemaker`` with a pool of K slots (``include_deferred``) caps the jobs
    #: running at once account-wide at K, across DAGs and runs.
    sagemaker_pool: str = "default_pool"
    #: ``ogiri_label``'s schedule: a cron expression (``OGIRI_LABEL_SCHEDULE``, e.g. ``0 6 * * 1`` for
    #: weekly) or empty for manual runs only (the default).
    label_schedule: str | None = None
    # ogiri_monitor (issue 14): when each hourly window is checked, from which hour on, and how long
    # the capture sensor waits before it records the window as empty.
    monitor_cron: str = "0 * * * *"
    monitor_start_date: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    monitor_capture_timeout_s: int = 300
    monitor_capture_poke_s: int = 30


def _knob(name: str, default: Any, convert: Any) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = convert(raw)
    except (TypeError, ValueError):
        value = None
    if value is None:
        message = f"{name}={raw!r} is not valid; using the default {default!r}"
        log.warning("%s", message)
        warnings.warn(message, UserWarning, stacklevel=3)  # shown as a DAG import warning
        return default
    return value


def _positive_int(raw: str) -> int | None:
    value = int(raw)
    return value if value >= 1 else None


def _utc_datetime(raw: str) -> datetime:
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_knobs() -> ParseKnobs:
    """The parse-time knobs from ``OGIRI_*``. Never raises: a bad value falls back to its default
    with a warning (in the DAG's import warnings and log) instead of breaking the DAG's import."""
    d = ParseKnobs()
    return ParseKnobs(
        sagemaker_poll_seconds=_knob("OGIRI_SAGEMAKER_POLL_SECONDS", d.sagemaker_poll_seconds, _positive_int),
        landing_timeout_s=_knob("OGIRI_LANDING_TIMEOUT_S", d.landing_timeout_s, _positive_int),
        landing_poke_s=_knob("OGIRI_LANDING_POKE_S", d.landing_poke_s, _positive_int),
        landing_deferrable=_knob("OGIRI_LANDING_DEFERRABLE", d.landing_deferrable, parse_bool),
        ingest_start_date=_knob("OGIRI_INGEST_START_DATE", d.ingest_start_date, _utc_datetime),
        max_parallel_training=_knob("OGIRI_MAX_PARALLEL_TRAINING", d.max_parallel_training, _positive_int),
        sagemaker_pool=_knob("OGIRI_SAGEMAKER_POOL", d.sagemaker_pool, str),
        label_schedule=_knob("OGIRI_LABEL_SCHEDULE", d.label_schedule, _cron),
        monitor_cron=_knob("OGIRI_MONITOR_CRON", d.monitor_cron, _cron),
        monitor_start_date=_knob("OGIRI_MONITOR_START_DATE", d.monitor_start_date, _utc_datetime),
        monitor_capture_timeout_s=_knob("OGIRI_MONITOR_CAPTURE_TIMEOUT_S", d.monitor_capture_timeout_s, _positive_int),
        monitor_capture_poke_s=_knob("OGIRI_MONITOR_CAPTURE_POKE_S", d.monitor_capture_poke_s, _positive_int),
    )


def _cron(raw: str) -> str | None:
    """A five-field cron expression, else None (a bad one would break the DAG's import)."""
    from croniter import croniter

    return raw if len(raw.split()) == 5 and croniter.is_valid(raw) else None
