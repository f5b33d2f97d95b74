"""The Airflow Asset the ingestion DAG emits after each reconciled run (and the training DAG
schedules on). Cheap to import: DAG files use it at parse time."""

from __future__ import annotations

from airflow.sdk import Asset

from ogiri.config import Settings, get_settings

#: Asset name; consumers may schedule on ``Asset.ref(name=CAPTIONS_ASSET_NAME)``.
CAPTIONS_ASSET_NAME = "ogiri_captions"


def captions_asset(settings: Settings | None = None) -> Asset:
    """``Asset(name="ogiri_captions", uri="s3://<bucket>/images/")`` for the configured bucket."""
    settings = settings or get_settings()
    return Asset(name=CAPTIONS_ASSET_NAME, uri=settings.s3_uri("images/"), group="ogiri")
