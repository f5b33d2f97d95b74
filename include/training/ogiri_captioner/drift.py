"""Drift scores between a baseline histogram and a window histogram (pure numpy).

Both histograms use the same fixed bins, so they compare bin for bin.

* PSI (population stability index): sum((w - b) * ln(w / b)) over bins. Common reading:
  < 0.1 no meaningful shift, 0.1-0.25 moderate shift, > 0.25 significant shift (PSI_THRESHOLD).
* Jensen-Shannon distance (base 2): sqrt of the JS divergence, in [0, 1]; 0 identical,
  1 disjoint support. JS_THRESHOLD = 0.1 flags a shift of about the size PSI calls significant
  for small windows.
"""

from __future__ import annotations

import numpy as np

#: PSI above which a feature is reported as drifted.
PSI_THRESHOLD = 0.25
#: Jensen-Shannon distance (base 2) above which a feature is reported as drifted.
JS_THRESHOLD = 0.1
_EPS = 1e-6


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in fixed ``edges``; values outside fall into the end bins."""
    clipped = np.clip(np.asarray(values, dtype=float), edges[0], edges[-1])
    counts, _ = np.histogram(clipped, bins=edges)
    return counts.astype(float)


def _normalise(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        return np.full(counts.shape, 1.0 / max(len(counts), 1))
    return counts / total


def psi(baseline: np.ndarray, window: np.ndarray) -> float:
    """Population stability index of ``window`` against ``baseline`` (counts or proportions)."""
    b = np.clip(_normalise(baseline), _EPS, None)
    w = np.clip(_normalise(window), _EPS, None)
    return float(np.sum((w - b) * np.log(w / b)))


def js_distance(baseline: np.ndarray, window: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two histograms."""
    b, w = _normalise(baseline), _normalise(window)
    m = 0.5 * (b + w)

    def kl(p: np.ndarray, q: np.ndarray) -> float:
        mask = p > 0
        return float(np.sum(p[mask] * np.log2(p[mask] / q[mask])))

    return float(np.sqrt(max(0.5 * kl(b, m) + 0.5 * kl(w, m), 0.0)))
