"""The ``ogiri_monitor`` trigger form: every per-run choice and its default, in one place.

Params whose default is ``None`` fall back to the deployment setting named in :data:`SETTING_DEFAULTS`
(or, for the thresholds, to ``monitor.py``'s own defaults), so task code carries no literal default.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from ogiri.runs import form_values

PARAMS = {
    "endpoint_name": Param(None, type=["null", "string"], title="Endpoint",
                           description="Empty: OGIRI_ENDPOINT_NAME (ogiri-captioner)."),
    "window_start": Param(
        None, type=["null", "string"], title="Window (UTC hour)",
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$",
        description="YYYY-MM-DDTHH: check that hour's capture. Empty: the hour before the run's logical "
                    "date (scheduled, backfill and manual runs alike).",
    ),
    "max_images": Param(200, type="integer", minimum=0, maximum=100_000, title="Max images labelled",
                        description="At most this many of the window's images are labelled with Rekognition "
                                    "DetectLabels for the rekognition_labels feature (0: none)."),
    "psi_threshold": Param(0.25, type="number", exclusiveMinimum=0, title="PSI threshold",
                           description="Population stability index of a histogram feature above which it "
                                       "drifted (0.1 = moderate, 0.25 = major shift)."),
    "js_threshold": Param(0.1, type="number", exclusiveMinimum=0, maximum=1, title="Jensen-Shannon threshold",
                          description="JS divergence (base 2, 0..1) of a categorical feature above which it drifted."),
    "distance_threshold": Param(None, type=["null", "number"], exclusiveMinimum=0, title="Embedding distance threshold",
                                description="Distance of the window's embedding statistics from the baseline's "
                                            "above which the embedding drifted. Empty: monitor.py's default."),
}

#: Params that fall back to a deployment setting (``Settings`` attribute) when the form leaves them empty.
SETTING_DEFAULTS = {"endpoint_name": "endpoint_name"}


def form_defaults(**overrides: Any) -> dict[str, Any]:
    """What an untouched form submits, with ``overrides`` (for tests and scripts)."""
    return form_values(PARAMS, **overrides)
