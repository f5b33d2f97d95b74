"""The labeling job's name and where it keeps its files: pure functions of the run key / job name.

::

    labeling/<job>/objects.jsonl          the selected data objects (one JSON object per line)
    labeling/<job>/input.manifest         Ground Truth's input manifest
    labeling/<job>/template.liquid.html   the worker task template (crowd-html)
    labeling/<job>/output/<job>/...       Ground Truth's output (OutputConfig.S3OutputPath)
    labeling/<job>/labels.jsonl           accepted labels, one per data object
    labeling/<job>/rejects.jsonl          rejected answers and objects, with reasons
    labeling/<job>/report/summary.json    the analysis, and its SVG pictures beside it
"""

from __future__ import annotations

from ogiri.naming import resource_name

ROOT = "labeling"
JOB_PREFIX = "ogiri-label"
#: The label attribute of the output manifest (``LabelAttributeName``; must not end in ``-ref``).
LABEL_ATTRIBUTE = "ogiri-label"
REPORT_PICTURES = ("per_worker.svg", "ratings.svg", "agreement.svg", "time_per_task.svg")


def job_name(run_key: str) -> str:
    """Deterministic labeling job name of a run (≤ 63 characters, ``[a-zA-Z0-9-]``)."""
    return resource_name(JOB_PREFIX, run_key)


def prefix(job: str) -> str:
    """``labeling/<job>`` (no trailing slash)."""
    return f"{ROOT}/{job}"


def objects_key(job: str) -> str:
    return f"{prefix(job)}/objects.jsonl"


def manifest_key(job: str) -> str:
    return f"{prefix(job)}/input.manifest"


def template_key(job: str) -> str:
    return f"{prefix(job)}/template.liquid.html"


def output_prefix(job: str) -> str:
    """``OutputConfig.S3OutputPath`` as a key (Ground Truth writes under ``<it>/<job>/``)."""
    return f"{prefix(job)}/output"


def output_manifest_key(job: str) -> str:
    return f"{output_prefix(job)}/{job}/manifests/output/output.manifest"


def worker_response_prefix(job: str) -> str:
    return f"{output_prefix(job)}/{job}/annotations/worker-response/"


def labels_key(job: str) -> str:
    return f"{prefix(job)}/labels.jsonl"


def rejects_key(job: str) -> str:
    return f"{prefix(job)}/rejects.jsonl"


def report_prefix(job: str) -> str:
    return f"{prefix(job)}/report/"


def summary_key(job: str) -> str:
    return f"{report_prefix(job)}summary.json"
