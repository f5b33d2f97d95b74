"""``/_localaws/sagemaker/<kind>/<name>``: the local target of the tasks' "SageMaker job" links."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_unknown_job_answers_404_in_the_describe_calls_wording(emulator):
    status, page = _get(f"{emulator.url}/_localaws/sagemaker/training/no-such-job?region=us-east-1")
    assert status == 404 and "Requested resource not found" in page, page


@pytest.mark.parametrize("route", ["bogus/x", "training", "training/"])
def test_unknown_kind_or_missing_name_is_404(emulator, route):
    status, page = _get(f"{emulator.url}/_localaws/sagemaker/{route}")
    assert status == 404 and "Unknown page" in page, page
