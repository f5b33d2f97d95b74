"""Drift of a monitoring window against its model's baseline, feature by feature (pure numpy).

Histogram and categorical features get PSI and the Jensen-Shannon distance (see ``drift``) on
their fixed bins, after mixing both distributions with ``SMOOTHING`` (1%) of the uniform one, so a bin
the baseline never saw caps PSI's log ratio instead of blowing it up for a single window record, and
two histograms of the same shape still score 0 whatever their sizes. The headline metric (what
``threshold`` and ``violation`` refer to):

* numeric histograms (``input_*``, ``output_caption_length``, ``output_score``): PSI, threshold
  ``PSI_THRESHOLD`` = 0.25 (the usual "significant shift" reading: < 0.1 stable, 0.1-0.25 moderate);
* categoricals (``rekognition_labels``, ``output_char_frequency``): Jensen-Shannon distance (base 2,
  0 identical, 1 disjoint), threshold ``JS_THRESHOLD`` = 0.1;
* ``embedding``: the normalised Frechet distance between the two Gaussians (projected mean ``m``,
  covariance ``S``): ``(|m_w - m_b|^2 + tr(S_b + S_w - 2 (S_b^1/2 S_w S_b^1/2)^1/2)) / tr(S_b)``. It is
  the squared 2-Wasserstein distance in units of the baseline's total variance: 0 for identical
  statistics; 1 when the window's mean moved by the baseline's whole RMS spread (or the spread changed
  as much). ``DISTANCE_THRESHOLD`` = 0.25 flags a mean moved by half the baseline's RMS spread.

The embedding needs at least ``dim`` (16) window records, else its covariance is rank-deficient.
A feature that could not be computed (Rekognition unavailable, no outputs, too few records for the
embedding) is reported with ``available: false`` and ``value: null`` and never counts as a violation.
"""

from __future__ import annotations

import numpy as np

from .drift import JS_THRESHOLD, PSI_THRESHOLD, js_distance, psi

#: Normalised Frechet distance above which the embedding is reported as drifted.
DISTANCE_THRESHOLD = 0.25
#: Share of the uniform distribution mixed into both histograms before PSI/JS.
SMOOTHING = 0.01
CATEGORICAL = ("rekognition_labels", "output_char_frequency")
STATUSES = ("ok", "violation", "empty", "no_baseline")


def thresholds(psi_threshold: float | None = None, js_threshold: float | None = None,
               distance_threshold: float | None = None) -> dict:
    """The thresholds in force (defaults where ``None``)."""
    return {"psi": PSI_THRESHOLD if psi_threshold is None else float(psi_threshold),
            "js": JS_THRESHOLD if js_threshold is None else float(js_threshold),
            "distance": DISTANCE_THRESHOLD if distance_threshold is None else float(distance_threshold)}


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(baseline: dict, window: dict) -> float:
    """Normalised Frechet distance between two ``embedding`` statistics (see module docstring)."""
    if (baseline["dim"], baseline["projection_seed"]) != (window["dim"], window["projection_seed"]):
        raise ValueError("embedding statistics use different projections")
    mb, mw = np.asarray(baseline["mean"], float), np.asarray(window["mean"], float)
    sb, sw = np.atleast_2d(np.asarray(baseline["cov"], float)), np.atleast_2d(np.asarray(window["cov"], float))
    root = _sqrt_psd(sb)
    cross = np.trace(_sqrt_psd(root @ sw @ root))
    fd = float(np.sum((mw - mb) ** 2) + np.trace(sb) + np.trace(sw) - 2 * cross)
    return max(fd, 0.0) / max(float(np.trace(sb)), 1e-12)


def _smooth(counts: np.ndarray) -> np.ndarray:
    return (1 - SMOOTHING) * counts / counts.sum() + SMOOTHING / counts.size


def _unavailable(metric: str, threshold: float, reason: str) -> dict:
    return {"metric": metric, "value": None, "threshold": threshold, "violation": False, "psi": None, "js": None,
            "available": False, "reason": reason}


def score_feature(name: str, base: dict, window: dict | None, limits: dict) -> dict:
    """The report entry of one feature: headline metric, its value and threshold, violation, PSI and JS."""
    if base.get("kind") == "embedding":
        if window is None or not window.get("n", 1):
            return _unavailable("distance", limits["distance"], "no embedding computed for this window")
        if window.get("n", window["dim"]) < window["dim"]:
            return _unavailable("distance", limits["distance"], f"fewer records than the {window['dim']} "
                                "embedding dims: the window's covariance is not estimable")
        value = frechet_distance(base, window)
        return {"metric": "distance", "value": value, "threshold": limits["distance"],
                "violation": bool(value > limits["distance"]), "psi": None, "js": None, "available": True}
    metric = "js" if name in CATEGORICAL else "psi"
    if window is None:
        return _unavailable(metric, limits[metric], "not computed for this window")
    b, w = np.asarray(base["counts"], float), np.asarray(window["counts"], float)
    if b.shape != w.shape:
        raise ValueError(f"{name}: window has {w.size} bins, baseline {b.size}")
    if w.sum() <= 0 or b.sum() <= 0:
        return _unavailable(metric, limits[metric], "no values in the window" if w.sum() <= 0 else
                            "no values in the baseline")
    b, w = _smooth(b), _smooth(w)
    scores = {"psi": psi(b, w), "js": js_distance(b, w)}
    value = scores[metric]
    return {"metric": metric, "value": value, "threshold": limits[metric], "violation": bool(value > limits[metric]),
            **scores, "available": True}


def score_window(baseline: dict, window: dict, limits: dict | None = None) -> dict:
    """``{feature: report entry}`` for every baseline feature (``window`` maps names to statistics or None)."""
    limits = limits or thresholds()
    return {name: score_feature(name, base, window.get(name), limits)
            for name, base in baseline["features"].items()}


def status_of(features: dict) -> str:
    """``violation`` when any feature is over its threshold, else ``ok``."""
    return "violation" if any(f["violation"] for f in features.values()) else "ok"


def constraint_violations(features: dict) -> dict:
    """Model Monitor's ``constraint_violations.json`` for the drifted features."""
    return {"violations": [
        {"feature_name": name, "constraint_check_type": "baseline_drift_check",
         "description": (f"{f['metric']} {f['value']:.4f} exceeds the threshold {f['threshold']:g} "
                         "against the model's baseline")}
        for name, f in features.items() if f["violation"]]}
