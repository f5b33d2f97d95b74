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
        items={"type": "string", "minLength": 1},
        title="Input prefixes",
        description="Prefixes to caption, s3://bucket/prefix/ or a key prefix in the product bucket "
        "(one input set each; the template's roles read images/ and batch/). Empty: the manifest, "
        "else the ingest date.",
    ),
    "manifest_uri": Param(None, type=["null", "string"], title="Manifest URI",
                          description="S3 URI (or product-bucket key) of a JSON Lines manifest of images "
                          "(s3_uri or image_key per line)."),
    "ingest_date": Param(
        None,
        type=["null", "string"],
        format="date",
        title="Ingest date",
        description="YYYY-MM-DD: caption the images ingested that day. Empty: the day before the run's date.",
    ),
    "model": Param(
        "champion", type="string", minLength=1, title="Model",
        description="'champion' (the deployed model) or a SageMaker model name."
    ),
    "instance_type": Param(
        None,
        type=["null", "string"],
        title="Instance type",
        description="Transform instance type. Empty: OGIRI_TRANSFORM_INSTANCE_TYPE (ml.m5.xlarge).",
    ),
    "instance_count": Param(1, type="integer", minimum=1, maximum=100, title="Instance count",
                            description="Instances per job."),
    "beam_width": Param(3, type="integer", minimum=1, maximum=16, title="Beam width",
                        description="Beam search width (1 = greedy)."),
    "batch_size": Param(32, type="integer", minimum=1, maximum=1024, title="Batch size",
                        description="Images per request."),
    "max_concurrent_transforms": Param(
        2, type="integer", minimum=1, maximum=256, title="Concurrent requests",
        description="Parallel requests per instance."
    ),
    "max_set_size": Param(
        5000,
        type="integer",
        minimum=1,
        title="Max images per job",
        description="Sources larger than this are split into several jobs.",
    ),
}


def form_defaults(**overrides: Any) -> dict[str, Any]:
    """What an untouched form submits, with ``overrides`` (for tests and scripts)."""
    return form_values(PARAMS, **overrides)
