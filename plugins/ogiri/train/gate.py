"""Champion/challenger gate: should the candidate replace the model that is serving?"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

#: Accepted spellings of the two gate metrics in ``evaluation.json`` / ``metrics.json``.
CIDER_KEYS = ("cider", "cider_d", "ciderd", "CIDEr-D", "CIDEr", "val_cider")
BLEU4_KEYS = ("bleu4", "bleu_4", "BLEU-4", "Bleu_4", "val_bleu4")


def metric(metrics: Mapping[str, Any], keys: tuple[str, ...], who: str) -> float:
    """The first of ``keys`` present in ``metrics`` as a finite float; a clear error otherwise."""
    for key in keys:
        if key in metrics and metrics[key] is not None:
            try:
                value = float(metrics[key])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{who} metric {key}={metrics[key]!r} is not a number") from exc
            if not math.isfinite(value):
                raise ValueError(f"{who} metric {key}={value} is not finite")
            return value
    raise ValueError(f"{who} metrics have none of {list(keys)}; got {sorted(metrics)}")


@dataclass(frozen=True)
class GateDecision:
    """The outcome of :func:`decide`; ``reason`` is what the ledger and the log record."""

    deploy: bool
    reason: str
    candidate_cider: float
    candidate_bleu4: float
    champion_cider: float | None = None
    champion_bleu4: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (XCom / ledger friendly)."""
        return asdict(self)


def decide(
    candidate: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    *,
    min_cider_improvement: float,
    max_bleu_regression: float,
    force: bool = False,
) -> GateDecision:
    """Deploy when forced, when there is no champion, or when the candidate beats the champion's CIDEr-D
    by at least ``min_cider_improvement`` without losing more than ``max_bleu_regression`` BLEU-4.

    Both sets of metrics must come from the same frozen test manifest.
    """
    if min_cider_improvement < 0 or max_bleu_regression < 0:
        raise ValueError("min_cider_improvement and max_bleu_regression must be >= 0")
    cand_cider = metric(candidate, CIDER_KEYS, "candidate")
    cand_bleu = metric(candidate, BLEU4_KEYS, "candidate")
    if champion is None:
        reason = "forced deploy; no champion" if force else "no champion is serving"
        return GateDecision(True, reason, cand_cider, cand_bleu)
    champ_cider = metric(champion, CIDER_KEYS, "champion")
    champ_bleu = metric(champion, BLEU4_KEYS, "champion")
    scores = (
        f"CIDEr-D {cand_cider:.4f} vs champion {champ_cider:.4f} (delta {cand_cider - champ_cider:+.4f}), "
        f"BLEU-4 {cand_bleu:.4f} vs champion {champ_bleu:.4f} (delta {cand_bleu - champ_bleu:+.4f})"
    )
    if force:
        return GateDecision(True, f"forced deploy; {scores}", cand_cider, cand_bleu, champ_cider, champ_bleu)
    if cand_cider - champ_cider < min_cider_improvement:
        reason = f"CIDEr-D improvement below the required {min_cider_improvement:+.4f}: {scores}"
        return GateDecision(False, reason, cand_cider, cand_bleu, champ_cider, champ_bleu)
    if champ_bleu - cand_bleu > max_bleu_regression:
        reason = f"BLEU-4 regressed by more than the {max_bleu_regression:.4f} tolerance: {scores}"
        return GateDecision(False, reason, cand_cider, cand_bleu, champ_cider, champ_bleu)
    return GateDecision(True, f"candidate beats champion: {scores}", cand_cider, cand_bleu, champ_cider, champ_bleu)


@dataclass(frozen=True)
class Pick:
    """The best of a run's candidates (:func:`pick_best`); ``reason`` names it, the scores and the left-out."""

    winner: str
    metrics: dict[str, Any]
    reason: str


def pick_best(scored: Mapping[str, Mapping[str, Any]], left_out: Mapping[str, str] | None = None) -> Pick:
    """The candidate with the highest CIDEr-D (the gate metric) on the frozen test set; BLEU-4, then the
    candidate order break ties. ``scored`` is ``{name: metrics}`` in candidate order; ``left_out`` is
    ``{name: why}`` for candidates that were not scored (failed job, unloadable model)."""
    if not scored:
        raise ValueError(f"no candidate was scored; left out: {dict(left_out or {})}")
    order = list(scored)
    ranked = sorted(order, key=lambda n: (-metric(scored[n], CIDER_KEYS, n), -metric(scored[n], BLEU4_KEYS, n),
                                          order.index(n)))
    winner = ranked[0]
    scores = ", ".join(f"{n}: CIDEr-D {metric(scored[n], CIDER_KEYS, n):.4f} BLEU-4 "
                       f"{metric(scored[n], BLEU4_KEYS, n):.4f}" for n in ranked)
    reason = f"best of {len(scored)} scored candidate(s) by CIDEr-D: {winner} ({scores})"
    if left_out:
        reason += "; left out: " + ", ".join(f"{n} ({why})" for n, why in left_out.items())
    return Pick(winner=winner, metrics=dict(scored[winner]), reason=reason)
