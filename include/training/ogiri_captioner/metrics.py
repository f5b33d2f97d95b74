"""Caption metrics over character tokens: BLEU-4 and CIDEr-D (pycocoevalcap), distinct-1/2, length.

pycocoevalcap's ``Cider`` scorer is CIDEr-D (Gaussian length penalty, sigma 6, clipped n-gram
counts). Only its pure-Python ``Bleu`` and ``Cider`` scorers are used: the PTB tokenizer, METEOR
and SPICE need Java and English tokenization.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

SPACE_MARK = "\u2581"  # stands for whitespace characters, which space-joining would lose


def char_tokens(text: str) -> str:
    """Space-joined character tokens of ``text`` (the input format of the coco scorers)."""
    return " ".join(SPACE_MARK if ch.isspace() else ch for ch in text)


def distinct_n(captions: Sequence[str], n: int) -> float:
    """Unique character n-grams divided by all character n-grams over ``captions`` (0 if none)."""
    grams = [tuple(c[i : i + n]) for c in captions for i in range(len(c) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def caption_metrics(refs: Mapping[str, Sequence[str]], hyps: Mapping[str, str]) -> dict[str, float]:
    """Corpus metrics of one hypothesis per key against that key's reference captions."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    if set(refs) != set(hyps):
        raise ValueError("references and hypotheses must cover the same keys")
    if not hyps:
        raise ValueError("no captions to score")
    keys = sorted(hyps)
    gts = {}
    for k in keys:
        if not refs[k]:
            raise ValueError(f"no reference caption for {k!r}")
        gts[k] = [char_tokens(r) for r in refs[k]]
    # An empty hypothesis would make the scorers divide by zero; score it as an unknown token.
    res = {k: [char_tokens(hyps[k]) or "<empty>"] for k in keys}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    captions = [hyps[k] for k in keys]
    return {
        "bleu4": float(bleu[3]),
        "bleu1": float(bleu[0]),
        "cider": float(cider),
        "distinct_1": distinct_n(captions, 1),
        "distinct_2": distinct_n(captions, 2),
        "mean_length": sum(len(c) for c in captions) / len(captions),
    }


def most_frequent_caption_baseline(train_captions: Sequence[str], refs: Mapping[str, Sequence[str]]) -> dict:
    """Metrics of answering every image with the most frequent training caption."""
    if not train_captions:
        raise ValueError("no training captions")
    top = Counter(train_captions).most_common(1)[0][0]
    return {"caption": top, **caption_metrics(refs, dict.fromkeys(refs, top))}


def format_metrics(metrics: Mapping[str, float], prefix: str = "") -> str:
    """``name=value`` tokens separated by spaces, scrapeable with ``name=([0-9.eE+-]+)``."""
    parts = []
    for k, v in metrics.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        parts.append(f"{prefix}{k}={v:.6g}" if isinstance(v, float) else f"{prefix}{k}={v}")
    return " ".join(parts)
