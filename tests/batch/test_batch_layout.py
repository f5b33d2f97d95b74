"""S3 layout and transform job names of a batch-caption run."""

from __future__ import annotations

import re

import pytest

from ogiri.batch import layout
from ogiri.naming import run_key

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
KEY = run_key("ogiri_batch_caption", "manual__2026-11-22T14:23:44.123456+00:00")


def test_job_names_are_deterministic_valid_and_distinct_per_set():
    names = [layout.transform_job_name(KEY, layout.set_name(i)) for i in range(3)]
    assert names == [layout.transform_job_name(KEY, layout.set_name(i)) for i in range(3)]
    assert len(set(names)) == 3
    for name in names:
        assert len(name) <= 63 and SAGEMAKER_NAME.match(name), name
    assert names[0].endswith("-set-000")


def test_job_names_differ_between_runs_even_when_truncated():
    long_a = run_key("ogiri_batch_caption", "manual__" + "x" * 80 + "a")
    long_b = run_key("ogiri_batch_caption", "manual__" + "x" * 80 + "b")
    a, b = (layout.transform_job_name(k, "set-000") for k in (long_a, long_b))
    assert a != b and len(a) <= 63 and len(b) <= 63


def test_scheduled_runs_of_a_date_share_names():
    a = run_key("d", "scheduled__2026-01-02T03:30:00+00:00", "2026-01-02T03:30:00+00:00")
    b = run_key("d", "scheduled__2026-01-02T03:30:00+00:00", "2026-01-02T03:30:00+00:00")
    assert layout.transform_job_name(a, "set-000") == layout.transform_job_name(b, "set-000")
    assert layout.captions_key(a) == layout.captions_key(b)


def test_run_prefix_is_s3_safe_and_unique():
    slug = layout.run_slug(KEY)
    assert re.fullmatch(r"[A-Za-z0-9_.=-]+", slug), slug
    assert layout.run_slug(KEY + "x") != slug
    # Keys that differ only in characters the slug replaces still get different folders.
    assert layout.run_slug("d:a+b") != layout.run_slug("d:a-b")
    assert layout.captions_key(KEY) == f"batch/{slug}/captions.jsonl"
    assert layout.summary_key(KEY) == f"batch/{slug}/summary.json"


def test_input_output_file_keys():
    req = layout.request_file_key(KEY, "set-001", 7)
    assert req == f"batch/{layout.run_slug(KEY)}/input/set-001/part-00007.jsonl"
    assert layout.output_file_key(KEY, "set-001", req) == (
        f"batch/{layout.run_slug(KEY)}/output/set-001/part-00007.jsonl.out"
    )
    with pytest.raises(ValueError, match="not under the input prefix"):
        layout.output_file_key(KEY, "set-002", req)


@pytest.mark.parametrize("bad", ["", None])
def test_empty_run_key_is_refused(bad):
    with pytest.raises(ValueError, match="run key"):
        layout.run_slug(bad or "")


def test_negative_set_index_is_refused():
    with pytest.raises(ValueError, match=">= 0"):
        layout.set_name(-1)
