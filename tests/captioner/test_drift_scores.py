"""Drift scores on constructed windows: identical ~0, shifted above threshold."""

import numpy as np

from ogiri_captioner import drift

EDGES = np.linspace(0.0, 1.0, 11)


def test_identical_windows_score_zero():
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, 2000)
    h = drift.histogram(values, EDGES)
    assert drift.psi(h, h) < 1e-9
    assert drift.js_distance(h, h) < 1e-6


def test_same_distribution_stays_below_threshold():
    rng = np.random.default_rng(1)
    b = drift.histogram(rng.beta(2, 5, 5000), EDGES)
    w = drift.histogram(rng.beta(2, 5, 5000), EDGES)
    assert drift.psi(b, w) < drift.PSI_THRESHOLD
    assert drift.js_distance(b, w) < drift.JS_THRESHOLD


def test_shifted_window_exceeds_threshold():
    rng = np.random.default_rng(2)
    b = drift.histogram(rng.beta(2, 5, 5000), EDGES)
    w = drift.histogram(rng.beta(5, 2, 5000), EDGES)
    assert drift.psi(b, w) > drift.PSI_THRESHOLD
    assert drift.js_distance(b, w) > drift.JS_THRESHOLD


def test_out_of_range_values_land_in_end_bins():
    h = drift.histogram(np.array([-5.0, 0.05, 7.0]), EDGES)
    assert h[0] == 2 and h[-1] == 1 and h.sum() == 3
