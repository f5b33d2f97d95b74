"""baseline.json: the statistics of the training split and the model's own outputs on it.

Written by training (rank 0) into the model dir, so it ships at the top level of ``model.tar.gz``.
The sample is deterministic: the first ``max_images`` distinct training images in path order
(content-addressed names, so effectively a random sample). Outputs are decoded from the cached
features with the serving default beam width, as the endpoint would answer; the label
distribution comes from the manifest rows' ``labels`` (ingest's Rekognition labels).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from .data import open_image
from .decoding import decode_features
from .statistics import build_baseline

log = logging.getLogger(__name__)
BASELINE_NAME = "baseline.json"


def _sample(records, rows: torch.Tensor, max_images: int) -> tuple[list, list[int], list[list[str]]]:
    """``(image paths, feature rows, label lists)`` of the first ``max_images`` distinct images in path order."""
    row_of: dict = {}
    labels: dict = {}
    for rec, row in zip(records, rows.tolist(), strict=True):
        row_of.setdefault(rec.image, row)
        labels.setdefault(rec.image, set()).update(rec.labels)
    paths = sorted(row_of, key=str)[:max_images]
    return paths, [row_of[p] for p in paths], [sorted(labels[p]) for p in paths]


@torch.no_grad()
def write_baseline(model_dir: str | Path, records, rows: torch.Tensor, features: torch.Tensor, decoder,
                   tokenizer, max_len: int, beam_width: int, device: torch.device, max_images: int,
                   model: dict) -> Path | None:
    """Compute and write ``model_dir/baseline.json``; None (nothing written) when ``max_images`` < 1."""
    if max_images < 1:
        return None
    paths, sample_rows, label_lists = _sample(records, rows, max_images)
    feats = features[torch.tensor(sample_rows).to(features.device)]
    outputs = []
    for i in range(0, len(paths), 64):
        chunk = feats[i : i + 64].to(device)
        outputs.extend((r["caption"], r["score"])
                       for r in decode_features(decoder, chunk, tokenizer, max_len, beam_width))
    pooled = feats.float().mean(1).cpu().numpy()
    model = {**model, "training_job": os.environ.get("TRAINING_JOB_NAME"), "split": "train",
             "beam_width": beam_width}
    baseline = build_baseline((open_image(p) for p in paths), pooled, outputs, label_lists, model)
    path = Path(model_dir) / BASELINE_NAME
    path.write_text(json.dumps(baseline, ensure_ascii=False), encoding="utf-8")
    log.info("baseline: %d images, %d features -> %s", baseline["records"], len(baseline["features"]), path)
    return path
