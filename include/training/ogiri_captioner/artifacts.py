"""The model directory (``model.pt``, ``tokenizer.json``, ``metrics.json``, ``code/``) and loading it.

``model.pt`` holds the config, the tokenizer, the encoder weights (so a randomly initialised encoder
is reproduced exactly at serving time) and the decoder weights. ``code/`` holds ``inference.py``
and a copy of this package, so ``model.tar.gz`` is self-contained for SageMaker serving.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from .data import image_transform
from .decoding import decode_features
from .features import encode_images
from .model import FrozenEncoder, build_decoder
from .tokenizer import CharTokenizer

PACKAGE_DIR = Path(__file__).resolve().parent
INFERENCE_PY = PACKAGE_DIR.parent / "code" / "inference.py"


def save_model_dir(model_dir: str | Path, encoder: FrozenEncoder, decoder: torch.nn.Module,
                   tokenizer: CharTokenizer, config: dict, metrics: dict) -> Path:
    """Write the full serving layout into ``model_dir``."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save({
        "format": 1,
        "config": config,
        "tokenizer": tokenizer.to_dict(),
        "encoder": {k: v.cpu() for k, v in encoder.state_dict().items()},
        "decoder": {k: v.cpu() for k, v in decoder.state_dict().items()},
    }, model_dir / "model.pt")
    tokenizer.save(model_dir / "tokenizer.json")
    (model_dir / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1), encoding="utf-8")
    copy_serving_code(model_dir)
    return model_dir


def copy_serving_code(model_dir: str | Path) -> None:
    """Copy ``code/inference.py`` and the ``ogiri_captioner`` package into ``model_dir/code``."""
    code = Path(model_dir) / "code"
    code.mkdir(parents=True, exist_ok=True)
    shutil.copy2(INFERENCE_PY, code / "inference.py")
    target = code / "ogiri_captioner"
    if target.resolve() != PACKAGE_DIR:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(PACKAGE_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


class Captioner:
    """A loaded model: images in, captions out (identical decoding for serving and evaluation)."""

    def __init__(self, encoder: FrozenEncoder, decoder: torch.nn.Module, tokenizer: CharTokenizer,
                 config: dict, device: torch.device):
        self.encoder = encoder.to(device).eval()
        if device.type == "cuda":
            self.encoder.to(memory_format=torch.channels_last)
        self.decoder = decoder.to(device).eval()
        self.tokenizer = tokenizer
        self.config = config
        self.device = device
        self.transform = image_transform(int(config["image_size"]))
        self.max_len = int(config["max_len"])
        self.default_beam_width = int(config.get("beam_width", 3))
        self.batch_size = 32

    @torch.no_grad()
    def caption(self, images: list, beam_width: int | None = None) -> list[dict]:
        """``{"caption", "score", "alternatives"}`` for each PIL image, in order."""
        width = self.default_beam_width if beam_width is None else int(beam_width)
        out = []
        for i in range(0, len(images), self.batch_size):
            batch = torch.stack([self.transform(img) for img in images[i : i + self.batch_size]])
            feats = encode_images(self.encoder, batch, self.device)
            out.extend(self.caption_features(feats, width))
        return out

    @torch.no_grad()
    def caption_features(self, feats: torch.Tensor, beam_width: int) -> list[dict]:
        return decode_features(self.decoder, feats.to(self.device), self.tokenizer, self.max_len, beam_width)


def load_model_dir(model_dir: str | Path, device: str | torch.device | None = None) -> Captioner:
    """Load ``model_dir/model.pt`` on ``device`` (default: CUDA when available, else CPU)."""
    import torchvision

    path = Path(model_dir) / "model.pt"
    if not path.is_file():
        raise ValueError(f"no model.pt in {model_dir}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    blob = torch.load(path, map_location="cpu", weights_only=True)
    cfg = blob["config"]
    tokenizer = CharTokenizer.from_dict(blob["tokenizer"])
    net = torchvision.models.get_model(cfg["encoder"], weights=None)
    body = torch.nn.Sequential(*[m for n, m in net.named_children() if n not in ("avgpool", "fc")])
    encoder = FrozenEncoder(body, net.fc.in_features, int(cfg["grid"]))
    encoder.load_state_dict(blob["encoder"])
    decoder = build_decoder(cfg["decoder"], len(tokenizer), encoder.feat_dim, encoder.grid ** 2,
                            int(cfg["embed_dim"]), int(cfg["hidden_dim"]), int(cfg["max_len"]),
                            float(cfg.get("dropout", 0.1)), tokenizer.pad_id)
    decoder.load_state_dict(blob["decoder"])
    return Captioner(encoder, decoder, tokenizer, cfg, device)
