"""The ``ogiri_batch_caption`` trigger form: every per-run choice and its default, in one place.

Task code never carries a literal default: :func:`form_defaults` fills what a caller left out from
these Params (an empty ``instance_type`` falls back to ``OGIRI_TRANSFORM_INSTANCE_TYPE``).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from ogiri.runs import form_values

PARAMS = {
    "input_prefixes": Param(
        [],
        type="array",
        items={"type": "string"},
        description="S3 prefixes to caption (one input set each).",
    ),
    "manifest_uri": Param(None, type=["null", "string"], description="S3 URI of a manifest of images."),
    "ingest_date": Param(
        None,
        type=["null", "string"],
        description="YYYY-MM-DD: caption the images ingested that day (default: the run's date).",
    ),
    "model": Param(
        "champion", type="string", minLength=1, description="'champion' or a SageMaker model name."
    ),
    "instance_type": Param(
        None,
        type=["null", "string"],
        description="Transform instance type (default OGIRI_TRANSFORM_INSTANCE_TYPE).",
    ),
    "instance_count": Param(1, type="integer", minimum=1, maximum=100, description="Instances per job."),
    "beam_width": Param(3, type="integer", minimum=1, maximum=16, description="Beam search width."),
    "batch_size": Param(32, type="integer", minimum=1, maximum=1024, description="Images per request."),
    "max_concurrent_transforms": Param(
        2, type="integer", minimum=1, maximum=256, description="Parallel requests per instance."
    ),
    "max_set_size": Param(
        5000,
        type="integer",
        minimum=1,
        description="Sources larger than this are split into several jobs.",
    ),
}


def form_defaults(**overrides: Any) -> dict[str, Any]:
    """What an untouched form submits, with ``overrides`` (for tests and scripts)."""
    return form_values(PARAMS, **overrides)
