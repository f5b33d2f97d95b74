"""Fixtures for the captioner tests: a synthetic dataset and one small model trained on it."""

from __future__ import annotations

import contextlib
import io
import tarfile
from pathlib import Path

import pytest
import torch

from ogiri_captioner.synthetic import generate
from ogiri_captioner.training import TrainConfig, train

# Small and fast on 2 shared CPU cores; learnable from a frozen randomly initialised ResNet-18.
FAST_HPS = {"encoder": "resnet18", "image_size": 64, "grid": 2, "embed_dim": 128, "hidden_dim": 256,
            "batch_size": 32, "lr": 3e-3, "num_workers": 0, "max_len": 24, "beam_width": 3}


@pytest.fixture(scope="session", autouse=True)
def _limit_threads():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # oversubscribed OpenMP threads are far slower on shared cores
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> dict[str, Path]:
    """700 images: ~490 train records, ~105 val and ~105 test images (all caption templates as refs)."""
    return generate(tmp_path_factory.mktemp("synthetic"), n=700, seed=0)


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("feature_cache")


def make_config(data: dict[str, Path], model_dir: Path, **overrides) -> TrainConfig:
    hps = {**FAST_HPS, **overrides}
    return TrainConfig(train_dir=str(data["train"]), val_dir=str(data["val"]), images_dir=str(data["images"]),
                       model_dir=str(model_dir), **hps)


def quiet_train(cfg: TrainConfig) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):
        return train(cfg)


@pytest.fixture(scope="session")
def trained(synthetic, feature_cache, tmp_path_factory) -> dict:
    """One LSTM model trained for the learning budget; ``{"result", "model_dir", "tarball"}``."""
    root = tmp_path_factory.mktemp("trained")
    cfg = make_config(synthetic, root / "model", epochs=25, feature_cache_dir=str(feature_cache),
                      checkpoint_dir=str(root / "checkpoints"))
    result = quiet_train(cfg)
    tarball = root / "packed" / "candidate" / "model.tar.gz"
    tarball.parent.mkdir(parents=True)
    with tarfile.open(tarball, "w:gz") as tar:
        for p in sorted(Path(cfg.model_dir).iterdir()):
            tar.add(p, arcname=p.name)
    return {"result": result, "model_dir": Path(cfg.model_dir), "tarball": tarball, "config": cfg}
