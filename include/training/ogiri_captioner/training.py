"""The training loop: cached features, teacher forcing, AMP, DDP, per-epoch checkpoints and resume.

``train(TrainConfig(...))`` is what ``train.py`` runs; tests call it directly. Distributed runs
follow the torchrun environment (``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``): NCCL on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .artifacts import save_model_dir
from .baseline import write_baseline
from .data import rating_weight_of, read_manifests
from .decoding import decode_features
from .features import FeatureCache, extract_features
from .metrics import caption_metrics, format_metrics
from .model import build_decoder, build_encoder, set_feature_stats
from .tokenizer import CharTokenizer

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainConfig:
    """Channels/dirs and hyperparameters (names match docs/interfaces.md)."""

    train_dir: str
    val_dir: str
    model_dir: str
    images_dir: str | None = None
    pretrained_dir: str | None = None
    output_dir: str | None = None
    checkpoint_dir: str | None = None
    feature_cache_dir: str | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    encoder: str = "resnet50"
    decoder: str = "lstm"
    embed_dim: int = 256
    hidden_dim: int = 512
    max_len: int = 48
    image_size: int = 224
    grid: int = 3
    dropout: float = 0.1
    beam_width: int = 3
    seed: int = 42
    num_workers: int = 2
    min_freq: int = 1
    clip_grad: float = 1.0
    val_max_images: int = 500
    #: Loss weight of rated captions (:func:`~ogiri_captioner.data.rating_weight_of`); 0: ratings ignored.
    rating_weight: float = 0.0
    baseline_max_images: int = 256

    def model_config(self) -> dict:
        """The part of the config the saved model needs to rebuild itself."""
        keys = ("encoder", "decoder", "embed_dim", "hidden_dim", "max_len", "image_size", "grid", "dropout",
                "beam_width")
        return {k: getattr(self, k) for k in keys}


HYPERPARAMETERS = {f.name: f for f in dataclasses.fields(TrainConfig)
                   if f.name not in ("train_dir", "val_dir", "model_dir", "images_dir", "pretrained_dir",
                                     "output_dir")}


def coerce_hyperparameters(raw: dict) -> dict:
    """Typed hyperparameters from SageMaker's (often string-valued) dict; ValueError on bad values."""
    out = {}
    for name, value in raw.items():
        if name not in HYPERPARAMETERS:
            if not name.startswith("sagemaker_"):
                log.warning("ignoring unknown hyperparameter %s=%r", name, value)
            continue
        kind = HYPERPARAMETERS[name].type
        try:
            if kind in (int, "int"):
                out[name] = int(float(value))
            elif kind in (float, "float"):
                out[name] = float(value)
            elif value is None or value == "":
                out[name] = None
            else:
                out[name] = str(value)
        except (TypeError, ValueError):
            raise ValueError(f"hyperparameter {name}={value!r} is not a valid {kind}") from None
    for name in ("epochs", "batch_size", "max_len", "image_size", "grid", "beam_width", "embed_dim",
                 "hidden_dim", "val_max_images"):
        if name in out and out[name] < 1:
            raise ValueError(f"hyperparameter {name} must be >= 1, got {out[name]}")
    if out.get("rating_weight", 0.0) < 0:
        raise ValueError(f"hyperparameter rating_weight must be >= 0, got {out['rating_weight']}")
    if "decoder" in out and out["decoder"] not in ("lstm", "transformer"):
        raise ValueError(f"hyperparameter decoder must be 'lstm' or 'transformer', got {out['decoder']!r}")
    return out


def distributed_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the torchrun-style environment (single process: 0, 1, 0)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"bad distributed environment: RANK={rank} WORLD_SIZE={world}")
    return rank, world, local


def _rng_state() -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 over a module's parameters and buffers (to check DDP ranks agree)."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _pad(seqs: list[list[int]], pad_id: int) -> torch.Tensor:
    out = torch.full((len(seqs), max(len(s) for s in seqs)), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s)
    return out


def sequence_loss(decoder, feats: torch.Tensor, tokens: torch.Tensor, pad_id: int,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """Teacher-forced cross-entropy: inputs ``tokens[:, :-1]`` predict ``tokens[:, 1:]``; pads ignored.
    With per-caption ``weights``: the token losses' weighted mean (each token weighs its caption's weight)."""
    width = int((tokens != pad_id).sum(1).max())
    tokens = tokens[:, :width]
    logits = decoder(feats, tokens[:, :-1])
    flat_logits, targets = logits.float().reshape(-1, logits.size(-1)), tokens[:, 1:].reshape(-1)
    if weights is None:
        return F.cross_entropy(flat_logits, targets, ignore_index=pad_id)
    per_token = F.cross_entropy(flat_logits, targets, ignore_index=pad_id, reduction="none")
    token_weights = (weights.float()[:, None] * (tokens[:, 1:] != pad_id)).reshape(-1)
    return (per_token * token_weights).sum() / token_weights.sum().clamp_min(1e-8)


class _Split:
    """Feature row index + padded token ids for each record of a split, and its rating weights
    (None when ``rating_weight`` is 0 or no record is rated: the plain loss)."""

    def __init__(self, records, row_of: dict, tokenizer: CharTokenizer, max_len: int, rating_weight: float = 0.0):
        self.records = records
        self.rows = torch.tensor([row_of[r.image] for r in records])
        self.tokens = _pad([tokenizer.encode(r.caption, add_special=True, max_len=max_len) for r in records],
                           tokenizer.pad_id)
        rated = any(r.rating is not None for r in records)
        self.weights = (torch.tensor([rating_weight_of(r.rating, rating_weight) for r in records])
                        if rating_weight > 0 and rated else None)


@dataclass
class _Optimization:
    """The decoder, the module the steps run (DDP-wrapped when distributed), its optimizer and AMP state."""

    decoder: torch.nn.Module
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    use_amp: bool
    amp_dtype: torch.dtype


def train(cfg: TrainConfig) -> dict:
    """Train, validate every epoch, checkpoint, and (rank 0) write the model dir.

    Returns ``{"history": [{"epoch", "train_loss", "val_loss", "val_bleu4", "val_cider", ...,
    "step_losses": [...]}, ...], "metrics": {...}, "weights_sha256": str, "encoder_weights": str}``.
    """
    rank, world, local_rank = distributed_env()
    own_group = world > 1 and not dist.is_initialized()
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if own_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    try:
        return _train(cfg, rank, world, local_rank, device)
    finally:
        if own_group:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, rank: int, world: int, local_rank: int, device: torch.device) -> dict:
    """The run on this process: features, decoder, epochs, then (rank 0) the model dir and metrics."""
    t_start = time.perf_counter()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    train_recs = read_manifests(cfg.train_dir, cfg.images_dir)
    val_recs = read_manifests(cfg.val_dir, cfg.images_dir)
    if world > 1 and len(train_recs) < world:
        raise ValueError(f"{len(train_recs)} training records cannot be split over {world} processes")
    ckpt_path, ckpt = _load_checkpoint(cfg)
    tokenizer = (CharTokenizer.from_dict(ckpt["tokenizer"]) if ckpt
                 else CharTokenizer.build([r.caption for r in train_recs], cfg.min_freq))

    encoder, weights_source = build_encoder(cfg.encoder, cfg.grid, cfg.pretrained_dir, cfg.seed)
    fingerprint = encoder.fingerprint()
    if ckpt and ckpt.get("encoder_fingerprint") != fingerprint:
        raise ValueError("checkpoint was trained with different encoder weights/grid; "
                         "clear the checkpoint dir or restore the same pretrained weights")
    paths = list(dict.fromkeys([r.image for r in train_recs] + [r.image for r in val_recs]))
    features, feature_s = _cached_features(cfg, encoder, fingerprint, paths, rank, world, device)
    row_of = {p: i for i, p in enumerate(paths)}
    train_split = _Split(train_recs, row_of, tokenizer, cfg.max_len, cfg.rating_weight)
    val_split = _Split(val_recs, row_of, tokenizer, cfg.max_len)

    opt = _build_optimization(cfg, encoder, tokenizer, features, train_split, world, local_rank, device)
    start_epoch, history = _resume(ckpt, opt, world)
    log.info("rank %d/%d device=%s train=%d (rated %d, rating_weight %g) val=%d images=%d vocab=%d "
             "features=%.1fs encoder=%s", rank, world, device, len(train_recs),
             sum(r.rating is not None for r in train_recs), cfg.rating_weight, len(val_recs), len(paths),
             len(tokenizer), feature_s, weights_source)

    for epoch in range(start_epoch, cfg.epochs + 1):
        step_losses, train_loss = _train_epoch(cfg, opt, features, train_split, tokenizer.pad_id, epoch, rank,
                                               world, device)
        entry = {"epoch": epoch, "train_loss": float(train_loss)}
        if rank == 0:
            entry.update(evaluate_split(opt.decoder, features, val_split, tokenizer, cfg, device))
            print(format_metrics(entry), flush=True)
            if ckpt_path:
                _save_checkpoint(ckpt_path, opt.decoder, opt.optimizer, opt.scaler, tokenizer, fingerprint, epoch,
                                 [*history, entry])
        history.append({**entry, "step_losses": step_losses.tolist()})
        if world > 1:
            dist.barrier()

    digest = weights_digest(opt.decoder)
    print(f"rank={rank} weights_sha256={digest}", flush=True)
    metrics = _final_metrics(history, weights_source, len(train_recs), len(val_recs), feature_s, t_start)
    if rank == 0:
        _write_outputs(cfg, encoder, opt.decoder, tokenizer, metrics)
        write_baseline(cfg.model_dir, train_split.records, train_split.rows, features, opt.decoder, tokenizer,
                       cfg.max_len, cfg.beam_width, device, cfg.baseline_max_images,
                       {"config": cfg.model_config(), "encoder_weights": weights_source})
    return {"history": history, "metrics": metrics, "weights_sha256": digest, "encoder_weights": weights_source}


def _load_checkpoint(cfg: TrainConfig) -> tuple[Path | None, dict | None]:
    """The checkpoint file's path (None without a checkpoint dir) and its contents, if one was saved."""
    ckpt_path = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME if cfg.checkpoint_dir else None
    ckpt = None
    if ckpt_path and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        log.info("resuming from %s (epoch %d done)", ckpt_path, ckpt["epoch"])
    return ckpt_path, ckpt


def _cached_features(cfg: TrainConfig, encoder, fingerprint: str, paths: list, rank: int, world: int,
                     device: torch.device) -> tuple[torch.Tensor, float]:
    """The encoder's features of every image (cached on rank 0), placed for training; and the seconds taken."""
    cache = FeatureCache(cfg.feature_cache_dir if rank == 0 else None, f"{fingerprint}-{cfg.image_size}")
    t0 = time.perf_counter()
    features = extract_features(encoder, paths, cfg.image_size, device, cache, num_workers=cfg.num_workers,
                                rank=rank, world_size=world)
    cache.save()
    feature_s = time.perf_counter() - t0
    if device.type == "cuda":
        features = features.to(device) if features.nbytes < (4 << 30) else features.pin_memory()
    return features, feature_s


def _build_optimization(cfg: TrainConfig, encoder, tokenizer: CharTokenizer, features: torch.Tensor,
                        train_split: _Split, world: int, local_rank: int, device: torch.device) -> _Optimization:
    """A freshly initialised decoder (DDP-wrapped when distributed), its AdamW optimizer and grad scaler."""
    torch.manual_seed(cfg.seed)  # decoder init must not depend on whether features came from the cache
    decoder = build_decoder(cfg.decoder, len(tokenizer), encoder.feat_dim, cfg.grid ** 2, cfg.embed_dim,
                            cfg.hidden_dim, cfg.max_len, cfg.dropout, tokenizer.pad_id)
    set_feature_stats(decoder, features[train_split.rows.unique().to(features.device)].cpu())
    decoder.to(device)
    model = decoder
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            decoder, device_ids=[local_rank] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                  foreach=True)
    use_amp = device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    return _Optimization(decoder, model, optimizer, scaler, use_amp, amp_dtype)


def _resume(ckpt: dict | None, opt: _Optimization, world: int) -> tuple[int, list]:
    """Restore the checkpoint's state (if any) and check every rank resumes at the same epoch."""
    start_epoch, history = 1, []
    if ckpt:
        opt.decoder.load_state_dict(ckpt["decoder"])
        opt.optimizer.load_state_dict(ckpt["optimizer"])
        opt.scaler.load_state_dict(ckpt["scaler"])
        start_epoch, history = ckpt["epoch"] + 1, list(ckpt.get("history", []))
        _set_rng_state(ckpt["rng"])
    if world > 1:  # every rank must resume from the same epoch or the collectives would deadlock
        epochs = [None] * world
        dist.all_gather_object(epochs, start_epoch)
        if len(set(epochs)) != 1:
            raise ValueError(f"ranks found different checkpoints (next epochs {epochs}); give every host "
                             "the same checkpoint dir contents")
    return start_epoch, history


def _train_epoch(cfg: TrainConfig, opt: _Optimization, features: torch.Tensor, split: _Split, pad_id: int,
                 epoch: int, rank: int, world: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch over this rank's shard: the per-step losses (CPU) and the mean loss over all ranks."""
    n = len(split.records)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100003 + epoch))
    if world > 1:  # equal shards: every rank takes the same number of steps
        per = n // world
        order = order[rank * per : (rank + 1) * per]
    opt.model.train()
    losses = []
    for idx in order.split(cfg.batch_size):
        feats = features[split.rows[idx].to(features.device)].to(device, non_blocking=True)
        tokens = split.tokens[idx].to(device, non_blocking=True)
        weights = split.weights[idx].to(device, non_blocking=True) if split.weights is not None else None
        with torch.autocast(device.type, dtype=opt.amp_dtype, enabled=opt.use_amp):
            loss = sequence_loss(opt.model, feats, tokens, pad_id, weights)
        opt.optimizer.zero_grad(set_to_none=True)
        opt.scaler.scale(loss).backward()
        if cfg.clip_grad > 0:
            opt.scaler.unscale_(opt.optimizer)
            torch.nn.utils.clip_grad_norm_(opt.decoder.parameters(), cfg.clip_grad)
        opt.scaler.step(opt.optimizer)
        opt.scaler.update()
        losses.append(loss.detach())
    step_losses = torch.stack(losses).float()
    train_loss = step_losses.mean()  # stays on `device`: NCCL reduces CUDA tensors only
    if world > 1:
        dist.all_reduce(train_loss)
        train_loss /= world
    return step_losses.cpu(), train_loss


def _final_metrics(history: list, weights_source: str, n_train: int, n_val: int, feature_s: float,
                   t_start: float) -> dict:
    """metrics.json: the last epoch's metrics, the run's sizes and timings, and the history without step losses."""
    final = {k: v for k, v in history[-1].items() if k != "step_losses"} if history else {}
    return {**final, "encoder_weights": weights_source, "train_records": n_train, "val_records": n_val,
            "feature_seconds": round(feature_s, 3), "total_seconds": round(time.perf_counter() - t_start, 3),
            "history": [{k: v for k, v in h.items() if k != "step_losses"} for h in history]}


def _write_outputs(cfg: TrainConfig, encoder, decoder, tokenizer: CharTokenizer, metrics: dict) -> None:
    """The model dir, and metrics.json in the output dir when there is one."""
    save_model_dir(cfg.model_dir, encoder, decoder, tokenizer, cfg.model_config(), metrics)
    if cfg.output_dir:
        Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(cfg.output_dir) / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")


@torch.no_grad()
def evaluate_split(decoder, features: torch.Tensor, split: _Split, tokenizer: CharTokenizer, cfg: TrainConfig,
                   device: torch.device, batch_size: int = 128) -> dict:
    """``val_loss`` (teacher forcing) and greedy-decoding ``val_bleu4``, ``val_cider``, … on a split."""
    decoder.eval()
    total, count = 0.0, 0
    for idx in torch.arange(len(split.records)).split(batch_size):
        feats = features[split.rows[idx].to(features.device)].to(device)
        tokens = split.tokens[idx].to(device)
        n_tok = int((tokens[:, 1:] != tokenizer.pad_id).sum())
        total += float(sequence_loss(decoder, feats, tokens, tokenizer.pad_id)) * n_tok
        count += n_tok
    refs: dict[str, list[str]] = {}
    row_for: dict[str, int] = {}
    for rec, row in zip(split.records, split.rows.tolist(), strict=True):
        refs.setdefault(str(rec.image), []).append(rec.caption)
        row_for[str(rec.image)] = row
    keys = sorted(refs)[: cfg.val_max_images]
    hyps = {}
    for i in range(0, len(keys), batch_size):
        chunk = keys[i : i + batch_size]
        feats = features[torch.tensor([row_for[k] for k in chunk]).to(features.device)].to(device)
        for k, res in zip(chunk, decode_features(decoder, feats, tokenizer, cfg.max_len, 1), strict=True):
            hyps[k] = res["caption"]
    metrics = caption_metrics({k: refs[k] for k in keys}, hyps)
    decoder.train()
    return {"val_loss": total / max(count, 1), "val_bleu4": metrics["bleu4"], "val_cider": metrics["cider"],
            "val_distinct_1": metrics["distinct_1"], "val_distinct_2": metrics["distinct_2"],
            "val_mean_length": metrics["mean_length"]}


def _save_checkpoint(path: Path, decoder, optimizer, scaler, tokenizer, fingerprint: str, epoch: int,
                     history: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"epoch": epoch, "decoder": decoder.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(), "tokenizer": tokenizer.to_dict(),
                "encoder_fingerprint": fingerprint, "history": history, "rng": _rng_state()}, tmp)
    os.replace(tmp, path)  # atomic: a spot interruption never leaves a half-written checkpoint
