"""Where a batch-caption run keeps its files in S3, and what its transform jobs are called.

Everything is a pure function of the run key (:func:`ogiri.naming.run_key`), so a retry or a rerun
of the same run finds the same request files, the same transform jobs and the same outputs::

    batch/<run slug>/input/<set>/part-00000.jsonl        request files (JSON Lines)
    batch/<run slug>/output/<set>/part-00000.jsonl.out   transform output (one line per request)
    batch/<run slug>/captions.jsonl                      every item of the run, one line each
    batch/<run slug>/summary.json                        counts per set and failures
"""

from __future__ import annotations

import re

from ogiri.naming import resource_name, short_hash

ROOT = "batch"
#: Prefix of the SageMaker transform job names of this DAG.
JOB_PREFIX = "ogiri-batch"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=-]+")


def run_slug(run_key: str) -> str:
    """An S3-safe, readable folder name for a run key, made unique by a hash of the whole key."""
    if not run_key:
        raise ValueError("run key must not be empty")
    readable = _UNSAFE.sub("-", run_key).strip("-.")[:120]
    return f"{readable}-{short_hash(run_key)}"


def run_prefix(run_key: str) -> str:
    """``batch/<run slug>`` (no trailing slash)."""
    return f"{ROOT}/{run_slug(run_key)}"


def set_name(index: int) -> str:
    """Name of the ``index``-th input set of a run: ``set-000``, ``set-001``…"""
    if index < 0:
        raise ValueError(f"input set index must be >= 0, got {index}")
    return f"set-{index:03d}"


def input_prefix(run_key: str, set_: str) -> str:
    """S3 key prefix (ending in ``/``) of one set's request files."""
    return f"{run_prefix(run_key)}/input/{set_}/"


def output_prefix(run_key: str, set_: str) -> str:
    """S3 key prefix (ending in ``/``) the transform job of one set writes to."""
    return f"{run_prefix(run_key)}/output/{set_}/"


def request_file_key(run_key: str, set_: str, part: int) -> str:
    """Key of one request file of a set."""
    return f"{input_prefix(run_key, set_)}part-{part:05d}.jsonl"


def output_file_key(run_key: str, set_: str, request_key: str) -> str:
    """Key of the ``.out`` file a transform job writes for ``request_key`` (SageMaker's rule)."""
    inp = input_prefix(run_key, set_)
    if not request_key.startswith(inp):
        raise ValueError(f"{request_key!r} is not under the input prefix {inp!r}")
    return f"{output_prefix(run_key, set_)}{request_key[len(inp) :]}.out"


def captions_key(run_key: str) -> str:
    """Key of the run's single JSON Lines result file."""
    return f"{run_prefix(run_key)}/captions.jsonl"


def summary_key(run_key: str) -> str:
    """Key of the run's summary (JSON)."""
    return f"{run_prefix(run_key)}/summary.json"


def transform_job_name(run_key: str, set_: str) -> str:
    """Deterministic SageMaker transform job name of one input set (<= 63 chars, ``[a-zA-Z0-9-]``)."""
    return resource_name(JOB_PREFIX, run_key, suffix=set_)
