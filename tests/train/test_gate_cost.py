"""Champion/challenger gate and job cost: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ogiri.train.cost import elapsed_seconds, processing_cost, training_cost
from ogiri.train.gate import decide

MARGINS = {"min_cider_improvement": 0.02, "max_bleu_regression": 0.01}


def test_no_champion_deploys():
    d = decide({"cider": 0.1, "bleu4": 0.05}, None, **MARGINS)
    assert d.deploy and "no champion" in d.reason


def test_clear_cider_win_deploys():
    d = decide({"cider": 0.50, "bleu4": 0.20}, {"cider": 0.40, "bleu4": 0.20}, **MARGINS)
    assert d.deploy and d.champion_cider == 0.40


def test_improvement_below_margin_skips_with_reason():
    d = decide({"cider": 0.41, "bleu4": 0.30}, {"cider": 0.40, "bleu4": 0.20}, **MARGINS)
    assert not d.deploy and "CIDEr-D improvement below" in d.reason and "+0.0100" in d.reason


def test_exact_margin_deploys():
    d = decide({"cider": 0.5, "bleu4": 0.2}, {"cider": 0.25, "bleu4": 0.2}, min_cider_improvement=0.25,
               max_bleu_regression=0.0)
    assert d.deploy


def test_bleu_regression_beyond_tolerance_skips():
    d = decide({"cider": 0.60, "bleu4": 0.18}, {"cider": 0.40, "bleu4": 0.20}, **MARGINS)
    assert not d.deploy and "BLEU-4 regressed" in d.reason


def test_bleu_regression_within_tolerance_deploys():
    d = decide({"cider": 0.60, "bleu4": 0.195}, {"cider": 0.40, "bleu4": 0.20}, **MARGINS)
    assert d.deploy


def test_worse_candidate_skips_and_force_overrides():
    worse, champ = {"cider": 0.0, "bleu4": 0.0}, {"cider": 0.4, "bleu4": 0.2}
    assert not decide(worse, champ, **MARGINS).deploy
    forced = decide(worse, champ, force=True, **MARGINS)
    assert forced.deploy and forced.reason.startswith("forced")


def test_metric_aliases_and_bad_input():
    assert decide({"CIDEr-D": 0.5, "Bleu_4": 0.1}, {"val_cider": 0.1, "val_bleu4": 0.1}, **MARGINS).deploy
    with pytest.raises(ValueError, match="none of"):
        decide({"bleu4": 0.1}, None, **MARGINS)
    with pytest.raises(ValueError, match="not finite"):
        decide({"cider": float("nan"), "bleu4": 0.1}, None, **MARGINS)
    with pytest.raises(ValueError, match="not a number"):
        decide({"cider": "high", "bleu4": 0.1}, None, **MARGINS)
    with pytest.raises(ValueError, match=">= 0"):
        decide({"cider": 1, "bleu4": 1}, None, min_cider_improvement=-1, max_bleu_regression=0)


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_training_cost_prefers_billable_time_and_prices_it():
    desc = {
        "TrainingJobName": "j",
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1},
        "TrainingStartTime": T0,
        "TrainingEndTime": T0 + timedelta(hours=1),
        "BillableTimeInSeconds": 1800,  # spot savings
        "EnableManagedSpotTraining": True,
    }
    cost = training_cost(desc, {"ml.g5.xlarge": 1.408})
    assert cost.billable_seconds == 1800 and cost.usd == pytest.approx(0.704) and cost.spot


def test_training_cost_falls_back_to_elapsed_times_count_and_unknown_price():
    desc = {
        "TrainingJobName": "j",
        "ResourceConfig": {"InstanceType": "ml.x.unknown", "InstanceCount": 2},
        "TrainingStartTime": T0,
        "TrainingEndTime": T0 + timedelta(seconds=90.2),
    }
    cost = training_cost(desc, {})
    assert cost.billable_seconds == 182 and cost.usd is None


def test_processing_cost_and_not_started():
    desc = {
        "ProcessingJobName": "p",
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}},
        "ProcessingStartTime": T0,
        "ProcessingEndTime": T0 + timedelta(seconds=3600),
    }
    assert processing_cost(desc, {"ml.m5.xlarge": 0.23}).usd == pytest.approx(0.23)
    assert elapsed_seconds(None, T0) == 0
