"""Frozen torchvision CNN encoder with a spatial feature grid, and LSTM / Transformer decoders.

The encoder keeps a small grid of cells (adaptive average pooling of the last feature map) instead
of one global vector, so "left"/"right" stays learnable even from a randomly initialised encoder.
Decoders take cached features ``(B, cells, C)`` and token ids; teacher forcing uses
``inputs = tokens[:, :-1]`` and ``targets = tokens[:, 1:]``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)


class FrozenEncoder(nn.Module):
    """CNN body (classifier and global pool removed) + ``grid x grid`` pooling; always in eval mode."""

    def __init__(self, body: nn.Module, feat_dim: int, grid: int):
        super().__init__()
        self.body = body
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.feat_dim = feat_dim
        self.grid = grid
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenEncoder:  # noqa: ARG002 - frozen: BatchNorm stats stay put
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fmap = self.pool(self.body(images))  # (B, C, g, g)
        return fmap.flatten(2).transpose(1, 2)  # (B, g*g, C), row-major cells

    def fingerprint(self) -> str:
        """Hash of the weights and grid: keys the feature cache and guards resume."""
        h = hashlib.sha256(str(self.grid).encode())
        for k, v in sorted(self.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:24]


def _find_weights_file(name: str, pretrained_dir: str | Path | None) -> Path | None:
    if pretrained_dir:
        files = sorted(p for p in Path(pretrained_dir).rglob("*") if p.suffix in (".pth", ".pt", ".bin"))
        named = [p for p in files if p.name.startswith(name)]
        if named or files:
            return (named or files)[0]
        log.warning("pretrained channel %s has no .pth/.pt file", pretrained_dir)
    try:
        import torchvision

        url = torchvision.models.get_model_weights(name).DEFAULT.url
    except (ValueError, AttributeError):
        return None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    return cached if cached.is_file() else None


def build_encoder(name: str = "resnet50", grid: int = 3, pretrained_dir: str | Path | None = None,
                  seed: int = 0) -> tuple[FrozenEncoder, str]:
    """The frozen encoder and where its weights came from (a file path, or ``random``).

    Weights come from the ``pretrained`` channel, else the local torchvision cache; nothing is
    downloaded. Without either, the encoder is randomly initialised from ``seed`` (logged loudly).
    """
    import torchvision

    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            net = torchvision.models.get_model(name, weights=None)
    except ValueError:
        raise ValueError(f"unknown encoder {name!r}; use a torchvision ResNet/RegNet name") from None
    if not hasattr(net, "fc") or not hasattr(net, "avgpool"):
        raise ValueError(f"encoder {name!r} is not supported (needs a ResNet-style avgpool + fc)")
    path = _find_weights_file(name, pretrained_dir)
    if path is not None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"weights in {path} do not fit {name}: {str(exc)[:300]}") from None
        source = str(path)
        log.info("encoder %s: weights from %s", name, path)
    else:
        source = "random"
        log.warning("WARNING: encoder %s has NO pretrained weights (no pretrained channel, nothing in "
                    "the torchvision cache): using RANDOM init (seed %d); captions will be weaker", name, seed)
    feat_dim = net.fc.in_features
    body = nn.Sequential(*[m for n, m in net.named_children() if n not in ("avgpool", "fc")])
    return FrozenEncoder(body, feat_dim, grid), source


class _CellProjection(nn.Module):
    """Per-channel standardisation (training-set statistics, saved with the model) + projection.

    Standardising each channel, rather than LayerNorm across channels, keeps the weak colour and
    position signal of a randomly initialised encoder from drowning in a few high-variance channels.
    """

    def __init__(self, feat_dim: int, cells: int, dim: int, dropout: float):
        super().__init__()
        self.register_buffer("feat_mean", torch.zeros(feat_dim))
        self.register_buffer("feat_std", torch.ones(feat_dim))
        self.proj = nn.Linear(feat_dim, dim)
        self.pos = nn.Parameter(torch.zeros(cells, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = (feats.float() - self.feat_mean) / self.feat_std
        return self.drop(torch.relu(self.proj(x)) + self.pos)


def set_feature_stats(decoder: nn.Module, feats: torch.Tensor) -> None:
    """Store per-channel mean/std of training features ``(N, cells, C)`` in the decoder's buffers."""
    flat = feats.reshape(-1, feats.size(-1)).float()
    decoder.cells_in.feat_mean.copy_(flat.mean(0))
    var = flat.var(0)
    # the floor bounds the amplification of channels that barely vary in training but may at serving
    decoder.cells_in.feat_std.copy_((var + 0.01 * var.mean() + 1e-6).sqrt())


class LSTMDecoder(nn.Module):
    """Classic LSTM decoder; the flattened cell grid gives the initial state and a per-step context."""

    def __init__(self, vocab_size: int, feat_dim: int, cells: int, embed_dim: int = 256,
                 hidden_dim: int = 512, dropout: float = 0.1, pad_id: int = 0):
        super().__init__()
        self.cells_in = _CellProjection(feat_dim, cells, embed_dim, dropout)
        self.ctx = nn.Sequential(nn.Linear(cells * embed_dim, hidden_dim), nn.Tanh())
        self.init_h = nn.Linear(hidden_dim, hidden_dim)
        self.init_c = nn.Linear(hidden_dim, hidden_dim)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.lstm = nn.LSTM(embed_dim + hidden_dim, hidden_dim, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def start(self, feats: torch.Tensor) -> dict:
        ctx = self.ctx(self.cells_in(feats).flatten(1))
        return {"ctx": ctx, "h": torch.tanh(self.init_h(ctx))[None], "c": self.init_c(ctx)[None]}

    def forward(self, feats: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, V)`` for teacher-forced ``inputs`` ``(B, T)``; pads only follow real tokens."""
        s = self.start(feats)
        x = self.embed(inputs)
        x = torch.cat([x, s["ctx"][:, None].expand(-1, x.size(1), -1)], dim=-1)
        y, _ = self.lstm(x, (s["h"], s["c"]))
        return self.out(self.drop(y))

    def step(self, state: dict, tokens: torch.Tensor) -> tuple[torch.Tensor, dict]:
        x = torch.cat([self.embed(tokens), state["ctx"]], dim=-1)[:, None]
        y, (h, c) = self.lstm(x, (state["h"], state["c"]))
        return torch.log_softmax(self.out(y[:, 0]).float(), -1), {"ctx": state["ctx"], "h": h, "c": c}

    @staticmethod
    def select(state: dict, idx: torch.Tensor) -> dict:
        return {"ctx": state["ctx"][idx], "h": state["h"][:, idx], "c": state["c"][:, idx]}


class TransformerDecoder(nn.Module):
    """Small pre-norm Transformer decoder attending over the cell grid (causal + key-padding masks)."""

    def __init__(self, vocab_size: int, feat_dim: int, cells: int, embed_dim: int = 256,
                 hidden_dim: int = 512, dropout: float = 0.1, pad_id: int = 0, max_len: int = 64,
                 layers: int = 2, heads: int = 4):
        super().__init__()
        if embed_dim % heads:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by {heads} heads")
        self.pad_id = pad_id
        self.cells_in = _CellProjection(feat_dim, cells, embed_dim, dropout)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.pos = nn.Embedding(max_len + 2, embed_dim)
        layer = nn.TransformerDecoderLayer(embed_dim, heads, hidden_dim, dropout, batch_first=True,
                                           norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.norm = nn.LayerNorm(embed_dim)
        self.out = nn.Linear(embed_dim, vocab_size)
        self.scale = math.sqrt(embed_dim)

    def _decode(self, memory: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        t = inputs.size(1)
        if t > self.pos.num_embeddings:
            raise ValueError(f"sequence of {t} tokens is longer than max_len + 2 = {self.pos.num_embeddings}")
        x = self.embed(inputs) * self.scale + self.pos(torch.arange(t, device=inputs.device))
        causal = torch.ones(t, t, dtype=torch.bool, device=inputs.device).triu(1)  # True = masked
        y = self.decoder(x, memory, tgt_mask=causal, tgt_key_padding_mask=inputs == self.pad_id,
                         tgt_is_causal=True)
        return self.out(self.norm(y))

    def start(self, feats: torch.Tensor) -> dict:
        memory = self.cells_in(feats)
        return {"memory": memory, "tokens": memory.new_zeros((feats.size(0), 0), dtype=torch.long)}

    def forward(self, feats: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return self._decode(self.cells_in(feats), inputs)

    def step(self, state: dict, tokens: torch.Tensor) -> tuple[torch.Tensor, dict]:
        seq = torch.cat([state["tokens"], tokens[:, None]], dim=1)
        logits = self._decode(state["memory"], seq)[:, -1]
        return torch.log_softmax(logits.float(), -1), {"memory": state["memory"], "tokens": seq}

    @staticmethod
    def select(state: dict, idx: torch.Tensor) -> dict:
        return {"memory": state["memory"][idx], "tokens": state["tokens"][idx]}


def build_decoder(kind: str, vocab_size: int, feat_dim: int, cells: int, embed_dim: int, hidden_dim: int,
                  max_len: int, dropout: float = 0.1, pad_id: int = 0) -> nn.Module:
    """An ``lstm`` or ``transformer`` decoder."""
    if kind == "lstm":
        return LSTMDecoder(vocab_size, feat_dim, cells, embed_dim, hidden_dim, dropout, pad_id)
    if kind == "transformer":
        return TransformerDecoder(vocab_size, feat_dim, cells, embed_dim, hidden_dim, dropout, pad_id, max_len)
    raise ValueError(f"unknown decoder {kind!r}: use 'lstm' or 'transformer'")
