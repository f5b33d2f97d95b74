"""The Airflow Assets the training DAG schedules on: captions (emitted by the ingestion DAG after each
reconciled run) and drift (emitted by the monitoring DAG on a violation). Cheap to import: DAG files
use them at parse time."""

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


#: Emitted by ``ogiri_monitor`` when a window violates its baseline; ``ogiri_train`` schedules on
#: ``captions_asset() | drift_asset()``. Event extra: ``{"endpoint", "window_start", "report_uri",
#: "violations": [feature names]}`` (docs/interfaces.md).
DRIFT_ASSET_NAME = "ogiri_drift"
DRIFT_ASSET_URI = "x-ogiri://drift"


def drift_asset() -> Asset:
    """``Asset(name="ogiri_drift", uri="x-ogiri://drift", group="ogiri")``."""
    return Asset(name=DRIFT_ASSET_NAME, uri=DRIFT_ASSET_URI, group="ogiri")
