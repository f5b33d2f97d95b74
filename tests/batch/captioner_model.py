"""A tiny real captioner for the batch tests and benchmark: synthetic data → ``train.py`` → model.tar.gz.

Trained by the real SageMaker script-mode entry point (``include/training/train.py``, ``SM_*``
environment), kept small so it takes seconds on two CPU cores; then uploaded to (emulated) S3 and
registered as a SageMaker model the way the training DAG does it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY_HPS = {
    "encoder": "resnet18",
    "image_size": 32,
    "grid": 1,
    "embed_dim": 32,
    "hidden_dim": 64,
    "epochs": 1,
    "batch_size": 16,
    "num_workers": 0,
    "max_len": 24,
    "beam_width": 2,
    "val_max_images": 8,
}
ROLE = "arn:aws:iam::123456789012:role/ogiri-sagemaker-execution"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311"


def train_tiny_model(workdir: Path, n_images: int = 30) -> dict[str, Path]:
    """Generate synthetic data and train with ``train.py``; returns ``{"tarball", "images", ...}``."""
    from ogiri_captioner.synthetic import generate

    data = generate(workdir / "synthetic", n=n_images, seed=7, size=64)
    model_dir = workdir / "model"
    env = dict(
        os.environ,
        SM_MODEL_DIR=str(model_dir),
        SM_CHANNEL_TRAIN=str(data["train"]),
        SM_CHANNEL_VAL=str(data["val"]),
        SM_CHANNEL_IMAGES=str(data["images"]),
        SM_OUTPUT_DATA_DIR=str(workdir / "output"),
        SM_HPS=json.dumps({**TINY_HPS, "checkpoint_dir": str(workdir / "checkpoints")}),
        OMP_NUM_THREADS="2",
    )
    proc = subprocess.run(
        [sys.executable, str(REPO / "include" / "training" / "train.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"train.py failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    tarball = workdir / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return {**data, "tarball": tarball, "model_dir": model_dir}


def register_model(s3, sagemaker, bucket: str, tarball: Path, name: str, role: str = ROLE) -> str:
    """Upload the artifact and CreateModel with the serving env the training DAG uses."""
    key = f"models/{name}/model.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=tarball.read_bytes())
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=role,
        PrimaryContainer={
            "Image": IMAGE,
            "ModelDataUrl": f"s3://{bucket}/{key}",
            "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            },
        },
    )
    return name


def synthetic_images(data: dict[str, Path], count: int) -> list[tuple[str, bytes]]:
    """``(key, bytes)`` of the first ``count`` synthetic images (sorted by key)."""
    paths = sorted(data["images"].rglob("*.jpg"))[:count]
    if len(paths) < count:
        raise ValueError(f"only {len(paths)} synthetic images, {count} wanted")
    return [(str(p.relative_to(data["root"])), p.read_bytes()) for p in paths]
