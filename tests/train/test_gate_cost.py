"""Champion/challenger gate and job cost: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ogiri.train.cost import elapsed_seconds, processing_cost, training_cost
from ogiri.train.gate import decide, pick_best

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


def test_pick_best_takes_the_highest_cider_and_names_winner_scores_and_left_out():
    scored = {"ogiri-train-a": {"cider": 0.40, "bleu4": 0.30}, "ogiri-train-b": {"val_cider": 0.55, "bleu4": 0.10},
              "ogiri-train-c": {"cider": 0.55, "bleu4": 0.20}}
    pick = pick_best(scored, {"ogiri-train-d": "training Failed"})
    assert pick.winner == "ogiri-train-c"  # tie on CIDEr-D broken by BLEU-4
    assert pick.metrics == {"cider": 0.55, "bleu4": 0.20}
    assert pick.reason.startswith("best of 3 scored candidate(s) by CIDEr-D: ogiri-train-c (ogiri-train-c: CIDEr-D")
    assert "ogiri-train-a: CIDEr-D 0.4000" in pick.reason and "left out: ogiri-train-d (training Failed)" in pick.reason
    # the first listed wins an exact tie; a candidate without the gate metrics is a clear error
    assert pick_best({"x": {"cider": 1, "bleu4": 1}, "y": {"cider": 1, "bleu4": 1}}).winner == "x"
    with pytest.raises(ValueError, match="no candidate was scored"):
        pick_best({}, {"x": "Failed"})
    with pytest.raises(ValueError, match="none of"):
        pick_best({"x": {"loss": 1}})
