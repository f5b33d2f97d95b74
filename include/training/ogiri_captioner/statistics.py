"""Fixed-bin statistics of (image, caption, score) records: what baseline.json and a monitoring window hold.

Every feature has fixed bins (numeric edges or categories chosen once, from the baseline), so a
window compares with its baseline bin for bin. Feature names (docs/interfaces.md):

* ``input_brightness``, ``input_red``, ``input_green``, ``input_blue``: pixel histograms (16 bins of
  width 16 over 0..255) of every image shrunk to at most ``PIXEL_SIDE`` px a side (each image weighs
  about the same); brightness is ITU-R 601 luma (Pillow's ``L``).
* ``input_width``, ``input_height``: image sizes in pixels (``SIZE_EDGES``; outside values fall into
  the end bins).
* ``embedding``: the encoder's features (mean over the spatial grid) through a seeded Gaussian random
  projection to ``EMBED_DIM`` dims; mean and covariance (population, ddof 0).
* ``rekognition_labels``: DetectLabels label names, one count per (image, label); categories are the
  baseline's ``TOP_LABELS`` most frequent labels plus ``other``.
* ``output_caption_length``: caption length in characters (``CAPTION_LENGTH_EDGES``).
* ``output_score``: the endpoint's ``score`` (summed token log-probability incl. ``<eos>``) divided by
  ``len(caption) + 1``: the mean log-probability per token (char tokenizer), so it does not move with
  length alone (``SCORE_EDGES``, finer near 0 where a trained model's captions sit).
* ``output_char_frequency``: characters of the captions; the baseline's ``TOP_CHARS`` most frequent
  plus ``other``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
from PIL import Image

from .drift import histogram

VERSION = 1
PIXEL_SIDE = 64
PIXEL_EDGES = [float(x) for x in range(0, 257, 16)]
SIZE_EDGES = [1.0, 32.0, 64.0, 96.0, 128.0, 192.0, 256.0, 384.0, 512.0, 768.0, 1024.0, 1536.0, 2048.0, 4096.0,
              8192.0]
CAPTION_LENGTH_EDGES = [float(x) for x in range(0, 65, 2)]
SCORE_EDGES = [-8.0, -4.0, -3.0, -2.0, -1.5, -1.0, -0.7, -0.5, -0.3, -0.2, -0.1, -0.05, 0.0]
EMBED_DIM = 16
PROJECTION_SEED = 20261207
TOP_LABELS = 20
TOP_CHARS = 40
OTHER = "other"

INPUT_FEATURES = ("input_brightness", "input_red", "input_green", "input_blue", "input_width", "input_height")
OUTPUT_FEATURES = ("output_caption_length", "output_score", "output_char_frequency")
FEATURES = (*INPUT_FEATURES, "embedding", "rekognition_labels", *OUTPUT_FEATURES)


def _hist(values: Iterable[float], edges: list[float]) -> dict:
    counts = histogram(np.asarray(list(values), dtype=float), np.asarray(edges))
    return {"kind": "histogram", "edges": list(edges), "counts": [int(c) for c in counts]}


def _categorical(items: Iterable[str], categories: list[str]) -> dict:
    known = set(categories)
    tally = Counter(x if x in known else OTHER for x in items)
    return {"kind": "histogram", "categories": list(categories), "counts": [int(tally[c]) for c in categories]}


def top_categories(items: Iterable[str], n: int) -> list[str]:
    """The ``n`` most frequent items (ties by name) plus ``other``: a categorical feature's fixed bins."""
    tally = Counter(x for x in items if x != OTHER)
    return [x for x, _ in sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))[:n]] + [OTHER]


def thumbnail(img: Image.Image) -> Image.Image:
    """The RGB image shrunk to at most ``PIXEL_SIDE`` a side (what the pixel histograms count)."""
    small = img.convert("RGB")
    small.thumbnail((PIXEL_SIDE, PIXEL_SIDE), Image.Resampling.BILINEAR)
    return small


def edges_of(baseline: dict | None, name: str, default: list[float]) -> list[float]:
    """A histogram feature's edges: the baseline's (a window uses its baseline's bins), else ``default``."""
    return list(baseline["features"][name]["edges"]) if baseline else list(default)


class ImageAccumulator:
    """Pixel and size histograms, accumulated image by image (no image is kept), in ``baseline``'s bins."""

    def __init__(self, baseline: dict | None = None):
        self.edges = {name: edges_of(baseline, name, PIXEL_EDGES) for name in INPUT_FEATURES[:4]}
        self.edges.update({name: edges_of(baseline, name, SIZE_EDGES) for name in INPUT_FEATURES[4:]})
        self.pixels = {name: np.zeros(len(self.edges[name]) - 1) for name in INPUT_FEATURES[:4]}
        self.widths: list[int] = []
        self.heights: list[int] = []

    def add(self, img: Image.Image, size: tuple[int, int] | None = None) -> None:
        """Count ``img`` (or its ``thumbnail``, given the original ``size``)."""
        width, height = size or img.size
        self.widths.append(width)
        self.heights.append(height)
        small = thumbnail(img)
        rgb = np.asarray(small, dtype=float).reshape(-1, 3)
        luma = np.asarray(small.convert("L"), dtype=float).ravel()
        for name, values in zip(INPUT_FEATURES[:4], (luma, rgb[:, 0], rgb[:, 1], rgb[:, 2]), strict=True):
            self.pixels[name] += histogram(values, np.asarray(self.edges[name]))

    def features(self) -> dict:
        out = {name: {"kind": "histogram", "edges": self.edges[name], "counts": [int(x) for x in v]}
               for name, v in self.pixels.items()}
        out["input_width"] = _hist(self.widths, self.edges["input_width"])
        out["input_height"] = _hist(self.heights, self.edges["input_height"])
        return out


def projection(feature_dim: int, dim: int = EMBED_DIM, seed: int = PROJECTION_SEED) -> np.ndarray:
    """The fixed ``(feature_dim, dim)`` Gaussian random projection for ``seed`` (columns scaled 1/sqrt(feature_dim))."""
    return np.random.default_rng(seed).standard_normal((feature_dim, dim)) / np.sqrt(feature_dim)


def embedding_stats(pooled: np.ndarray, dim: int = EMBED_DIM, seed: int = PROJECTION_SEED) -> dict:
    """Mean and covariance of ``pooled`` encoder features ``(N, C)`` after the seeded projection."""
    pooled = np.asarray(pooled, dtype=np.float64)
    z = pooled @ projection(pooled.shape[1], dim, seed)
    cov = np.cov(z, rowvar=False, bias=True) if len(z) else np.zeros((dim, dim))
    return {"kind": "embedding", "projection_seed": int(seed), "dim": int(dim), "feature_dim": int(pooled.shape[1]),
            "n": len(z), "mean": [float(x) for x in (z.mean(0) if len(z) else np.zeros(dim))],
            "cov": [[float(x) for x in row] for row in np.atleast_2d(cov)]}


def mean_token_logprob(caption: str, score: float) -> float:
    """The endpoint's summed log-probability per token (the caption's characters plus ``<eos>``)."""
    return float(score) / (len(caption) + 1)


def output_features(outputs: list[tuple[str, float]], char_categories: list[str], baseline: dict | None = None) -> dict:
    """Caption length, mean token log-probability and character histograms of ``(caption, score)`` pairs."""
    return {
        "output_caption_length": _hist((len(c) for c, _ in outputs),
                                       edges_of(baseline, "output_caption_length", CAPTION_LENGTH_EDGES)),
        "output_score": _hist((mean_token_logprob(c, s) for c, s in outputs),
                              edges_of(baseline, "output_score", SCORE_EDGES)),
        "output_char_frequency": _categorical((ch for c, _ in outputs for ch in c), char_categories),
    }


def label_feature(label_lists: list[Iterable[str]], categories: list[str]) -> dict:
    """Label histogram: one count per (image, distinct label)."""
    return _categorical((lb for labels in label_lists for lb in sorted(set(labels))), categories)


def build_baseline(images: Iterable[Image.Image], pooled: np.ndarray, outputs: list[tuple[str, float]],
                   label_lists: list[Iterable[str]], model: dict) -> dict:
    """baseline.json's content (docs/interfaces.md): fixed bins and counts for every feature."""
    acc = ImageAccumulator()
    for img in images:
        acc.add(img)
    label_lists = [list(x) for x in label_lists]
    labels = top_categories((lb for ls in label_lists for lb in set(ls)), TOP_LABELS)
    chars = top_categories((ch for c, _ in outputs for ch in c), TOP_CHARS)
    features = {**acc.features(), "embedding": embedding_stats(pooled),
                "rekognition_labels": label_feature(label_lists, labels), **output_features(outputs, chars)}
    return {"version": VERSION, "model": model, "records": len(acc.widths),
            "features": {name: features[name] for name in FEATURES}}


def window_features(baseline: dict, acc: ImageAccumulator, pooled: np.ndarray | None,
                    outputs: list[tuple[str, float]], label_lists: list[Iterable[str]] | None) -> dict:
    """A window's features in the baseline's bins (``embedding``/``rekognition_labels`` None when unavailable)."""
    base = baseline["features"]
    emb = base["embedding"]
    out = {**acc.features(), **output_features(outputs, base["output_char_frequency"]["categories"], baseline)}
    out["embedding"] = (embedding_stats(pooled, emb["dim"], emb["projection_seed"])
                        if pooled is not None and len(pooled) else None)
    out["rekognition_labels"] = (label_feature(label_lists, base["rekognition_labels"]["categories"])
                                 if label_lists is not None else None)
    return {name: out[name] for name in FEATURES}


def pooled_features(captioner, images: Iterable[Image.Image], batch_size: int = 32) -> np.ndarray:
    """The captioner's encoder features of ``images`` (consumed batch by batch), averaged over the grid."""
    import torch

    from .features import encode_images

    rows, batch = [], []

    def flush() -> None:
        feats = encode_images(captioner.encoder, torch.stack(batch), captioner.device)
        rows.append(feats.float().mean(1).cpu().numpy())
        batch.clear()

    with torch.no_grad():
        for img in images:
            batch.append(captioner.transform(img))
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
    return np.concatenate(rows).astype(np.float64) if rows else np.zeros((0, captioner.encoder.feat_dim))
