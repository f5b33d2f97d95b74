"""bench/bench_nightly_cost.py: the nightly cycle on paper adds up from its inputs (no clocks)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ogiri.config import DEFAULT_INSTANCE_PRICES

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_nightly_cost.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_nightly_cost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def night(bench, **overrides):
    values = dict(new_images=10_000, dataset_images=100_000, test_images=1_000, epochs=10, candidates=1,
                  gpu_speedup=1.0, spot_discount=0.7, job_overhead_s=300, canary_minutes=15, monitor_windows=4,
                  monitor_minutes=10)
    return bench.Night(**{**values, **overrides})


def test_lines_add_up_to_the_totals_and_spot_discounts_only_training(bench):
    rows = {line: usd for line, _, usd in bench.table(night(bench), DEFAULT_INSTANCE_PRICES)}
    assert rows["ingest: Rekognition DetectLabels"] == pytest.approx(10.0)  # 10k x $0.001
    parts = [usd for line, usd in rows.items() if not line.startswith("TOTAL")]
    assert rows["TOTAL, training on-demand"] == pytest.approx(sum(parts))
    training = rows["training: 1 x ml.g5.xlarge on-demand"]
    # extraction of the new images + 10 epochs over the dataset at the measured rates, + start-up
    seconds = 10_000 / 11.3 + 10 * 100_000 / 537.2 + 300
    assert training == pytest.approx(seconds / 3600 * DEFAULT_INSTANCE_PRICES["ml.g5.xlarge"])
    assert rows["TOTAL, training on Managed Spot"] == pytest.approx(rows["TOTAL, training on-demand"] - 0.7 * training)


def test_candidates_multiply_training_and_widen_the_one_evaluation(bench):
    one = {line.split(":")[0]: usd for line, _, usd in bench.table(night(bench), DEFAULT_INSTANCE_PRICES)}
    three = {line.split(":")[0]: usd for line, _, usd in bench.table(night(bench, candidates=3),
                                                                     DEFAULT_INSTANCE_PRICES)}
    assert three["training"] == pytest.approx(3 * one["training"])
    assert one["evaluation"] < three["evaluation"] < 3 * one["evaluation"]  # one job, more models
    assert three["ingest"] == one["ingest"] and three["batch transform"] == one["batch transform"]


def test_the_script_prints_the_comparison(bench, capsys):
    assert bench.main(["--candidates", "2"]) == 0
    out = capsys.readouterr().out
    assert "K=2 candidate(s)" in out and "the seed's $5/day" in out
    assert "always-on ml.m5.large endpoint: 24 h x $0.115/h = $2.76/day" in out
