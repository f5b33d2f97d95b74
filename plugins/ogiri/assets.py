"""The Airflow Asset the ingestion DAG emits after each reconciled run (and the training DAG
schedules on). Cheap to import: DAG files use it at parse time."""

from __future__ import annotations

from airflow.sdk import Asset

#: Asset name; consumers may schedule on ``Asset.ref(name=CAPTIONS_ASSET_NAME)``.
CAPTIONS_ASSET_NAME = "ogiri_captions"
#: A fixed identity (``x-`` is Airflow's prefix for custom schemes). It deliberately does not embed
#: the bucket: an asset's name and URI must match in every DAG that mentions it, and a URI derived
#: from ``OGIRI_BUCKET`` at parse time would split the asset (Airflow then marks it inactive and the
#: emitting task fails) whenever two DAG files were parsed with different settings. Each event's
#: ``extra`` carries the bucket and partition instead.
CAPTIONS_ASSET_URI = "x-ogiri://captions"


def captions_asset() -> Asset:
    """``Asset(name="ogiri_captions", uri="x-ogiri://captions", group="ogiri")``."""
    return Asset(name=CAPTIONS_ASSET_NAME, uri=CAPTIONS_ASSET_URI, group="ogiri")
