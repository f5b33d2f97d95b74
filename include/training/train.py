"""SageMaker script-mode training entry point for the Ogiri captioner.

Reads ``SM_MODEL_DIR``, ``SM_CHANNEL_TRAIN``, ``SM_CHANNEL_VAL``, optional ``SM_CHANNEL_IMAGES`` and
``SM_CHANNEL_PRETRAINED``, ``SM_OUTPUT_DATA_DIR``, hyperparameters from ``SM_HPS`` and/or argv
(``--epochs 3 --encoder resnet18``), and the checkpoint dir: hyperparameter ``checkpoint_dir``, else
``/opt/ml/checkpoints`` (SageMaker's default ``CheckpointConfig.LocalPath``; the toolkit sets no
variable for it) when that dir exists, else none (no checkpoints). Under torchrun-style env vars it joins the process group; with several GPUs or
hosts and no launcher it spawns one process per GPU itself (rendezvous at the ``MASTER_ADDR`` and
``MASTER_PORT`` that the PyTorch container sets).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ogiri_captioner.training import HYPERPARAMETERS, TrainConfig, coerce_hyperparameters, train  # noqa: E402

log = logging.getLogger("train")
#: SageMaker's default CheckpointConfig.LocalPath (exists when the job has a CheckpointConfig).
DEFAULT_CHECKPOINT_DIR = "/opt/ml/checkpoints"


def parse_config(argv: list[str] | None = None, env: dict | None = None) -> TrainConfig:
    """The training config from SageMaker's environment and argv (argv wins over ``SM_HPS``)."""
    env = os.environ if env is None else env
    raw = json.loads(env.get("SM_HPS") or "{}")
    if not isinstance(raw, dict):
        raise ValueError("SM_HPS must be a JSON object")
    parser = argparse.ArgumentParser(description="Train the Ogiri captioner (SageMaker script mode).")
    for name in HYPERPARAMETERS:
        parser.add_argument(f"--{name}", f"--{name.replace('_', '-')}", dest=name, default=None)
    parser.add_argument("--model-dir", "--model_dir", dest="model_dir_arg", default=None)
    for ch in ("train", "val", "images", "pretrained"):
        parser.add_argument(f"--{ch}", dest=f"channel_{ch}", default=None)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        log.warning("ignoring unknown arguments: %s", " ".join(unknown))
    raw.update({k: v for k, v in vars(args).items() if k in HYPERPARAMETERS and v is not None})
    hps = coerce_hyperparameters(raw)

    def channel(name: str) -> str | None:
        value = getattr(args, f"channel_{name}") or env.get(f"SM_CHANNEL_{name.upper()}")
        return value if value and Path(value).exists() else None

    train_dir, val_dir = channel("train"), channel("val")
    if not train_dir or not val_dir:
        raise ValueError("channels 'train' and 'val' are required (SM_CHANNEL_TRAIN / SM_CHANNEL_VAL "
                         "pointing at existing directories)")
    model_dir = args.model_dir_arg or env.get("SM_MODEL_DIR") or "/opt/ml/model"
    if model_dir.startswith("s3://"):  # SageMaker passes the S3 --model_dir to TF-style scripts; not ours
        model_dir = env.get("SM_MODEL_DIR", "/opt/ml/model")
    hps.setdefault("checkpoint_dir", DEFAULT_CHECKPOINT_DIR if Path(DEFAULT_CHECKPOINT_DIR).is_dir() else None)
    hps.setdefault("feature_cache_dir", str(Path(hps["checkpoint_dir"]) / "feature_cache")
                   if hps["checkpoint_dir"] else None)
    return TrainConfig(train_dir=train_dir, val_dir=val_dir, model_dir=model_dir, images_dir=channel("images"),
                       pretrained_dir=channel("pretrained"), output_dir=env.get("SM_OUTPUT_DATA_DIR"), **hps)


def _spawned(local_rank: int, cfg: TrainConfig, nproc: int, node_rank: int, nnodes: int) -> None:
    os.environ.update({"RANK": str(node_rank * nproc + local_rank), "LOCAL_RANK": str(local_rank),
                       "WORLD_SIZE": str(nproc * nnodes)})
    train(cfg)


def launch(cfg: TrainConfig) -> None:
    """Run ``train`` here, or spawn one process per GPU when several GPUs/hosts and no launcher."""
    import torch

    hosts = json.loads(os.environ.get("SM_HOSTS") or "[]")
    nproc = max(1, torch.cuda.device_count())
    nnodes = max(1, len(hosts))
    if "WORLD_SIZE" in os.environ or nproc * nnodes == 1:
        train(cfg)
        return
    os.environ.setdefault("MASTER_ADDR", hosts[0] if hosts else "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29500")
    node_rank = hosts.index(os.environ["SM_CURRENT_HOST"]) if hosts else 0
    torch.multiprocessing.spawn(_spawned, args=(cfg, nproc, node_rank, nnodes), nprocs=nproc)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = parse_config(argv)
    except ValueError as exc:
        log.error("bad training input: %s", exc)
        _write_failure(str(exc))
        return 2
    try:
        launch(cfg)
    except ValueError as exc:
        log.error("training failed: %s", exc)
        _write_failure(str(exc))
        return 1
    return 0


def _write_failure(reason: str) -> None:
    """SageMaker reports ``/opt/ml/output/failure`` as the job's FailureReason."""
    out = os.environ.get("SM_OUTPUT_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        Path(out, "failure").write_text(reason[:1000], encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
