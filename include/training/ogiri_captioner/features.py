"""One-off frozen-encoder feature extraction with an fp16 cache keyed by image content + encoder.

Training then only runs the decoder: an epoch over cached features costs no CNN forward pass.
The on-disk cache is one file per encoder fingerprint, ``<cache_dir>/<fingerprint>.pt``, holding
``{sha256 of image bytes: fp16 tensor (cells, C)}``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from .data import ImageFiles

log = logging.getLogger(__name__)


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FeatureCache:
    """In-memory dict of features, loaded from and saved to ``cache_dir`` when one is given."""

    def __init__(self, cache_dir: str | Path | None, key: str):
        self.path = Path(cache_dir) / f"{key}.pt" if cache_dir else None
        self.items: dict[str, torch.Tensor] = {}
        if self.path and self.path.is_file():
            try:
                self.items = torch.load(self.path, map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001 - a corrupt cache is rebuilt, never fatal
                log.warning("ignoring unreadable feature cache %s: %s", self.path, exc)
        self.dirty = False

    def save(self) -> None:
        if self.path and self.dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            torch.save(self.items, tmp)
            os.replace(tmp, self.path)
            self.dirty = False


@torch.no_grad()
def encode_images(encoder, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Features ``(B, cells, C)`` in fp16 for a batch of normalised images (AMP + channels_last on GPU)."""
    images = images.to(device, non_blocking=True)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16):
            feats = encoder(images)
    else:
        feats = encoder(images)
    return feats.half()


def extract_features(encoder, paths: list[Path], image_size: int, device: torch.device,
                     cache: FeatureCache | None = None, batch_size: int = 64, num_workers: int = 0,
                     rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """fp16 features ``(len(paths), cells, C)`` on the CPU, computing only images missing from ``cache``.

    With ``world_size > 1`` each rank encodes a contiguous shard and the shards are all-gathered
    (``torch.distributed`` must be initialised), so every rank ends with the same full tensor.
    """
    digests = [file_digest(p) for p in paths]
    per_rank = -(-len(paths) // world_size)
    lo, hi = rank * per_rank, min(len(paths), (rank + 1) * per_rank)
    mine = range(lo, hi)
    todo = [i for i in mine if cache is None or digests[i] not in cache.items]
    cells, dim = encoder.grid * encoder.grid, encoder.feat_dim
    shard = torch.zeros((per_rank, cells, dim), dtype=torch.float16)
    if todo:
        loader = DataLoader(ImageFiles([paths[i] for i in todo], image_size), batch_size=batch_size,
                            num_workers=num_workers, pin_memory=device.type == "cuda",
                            persistent_workers=False)
        encoder.to(device)
        if device.type == "cuda":
            encoder.to(memory_format=torch.channels_last)
        done = 0
        for batch in loader:
            feats = encode_images(encoder, batch, device).cpu()
            for j, f in enumerate(feats):
                i = todo[done + j]
                shard[i - lo] = f
                if cache is not None:
                    cache.items[digests[i]] = f.clone()
                    cache.dirty = True
            done += len(feats)
        log.info("encoded %d images (%d from cache)", len(todo), len(mine) - len(todo))
    computed = set(todo)
    for i in mine:
        if i not in computed and cache is not None:
            shard[i - lo] = cache.items[digests[i]]
    if world_size == 1:
        return shard[: len(paths)]
    import torch.distributed as dist

    comm_device = device if dist.get_backend() == "nccl" else torch.device("cpu")
    gathered = [torch.empty_like(shard, device=comm_device) for _ in range(world_size)]
    dist.all_gather(gathered, shard.to(comm_device))
    full = torch.cat([g.cpu() for g in gathered])[: len(paths)]
    if cache is not None:
        for i, d in enumerate(digests):
            if d not in cache.items:
                cache.items[d] = full[i].clone()
                cache.dirty = True
    return full
