"""train.py's SageMaker script-mode inputs: SM_* variables, SM_HPS and argv, and clear failures."""

import importlib.util
import json
from pathlib import Path

import pytest

TRAIN_PY = Path(__file__).resolve().parents[2] / "include" / "training" / "train.py"
spec = importlib.util.spec_from_file_location("train_entry", TRAIN_PY)
train_entry = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_entry)


def _env(tmp_path, **extra):
    for d in ("train", "val", "images", "pretrained"):
        (tmp_path / d).mkdir(exist_ok=True)
    return {"SM_CHANNEL_TRAIN": str(tmp_path / "train"), "SM_CHANNEL_VAL": str(tmp_path / "val"),
            "SM_CHANNEL_IMAGES": str(tmp_path / "images"), "SM_MODEL_DIR": str(tmp_path / "model"), **extra}


def test_hyperparameters_from_sm_hps_and_argv(tmp_path):
    env = _env(tmp_path, SM_HPS=json.dumps({"epochs": "3", "lr": "0.01", "decoder": "transformer",
                                             "sagemaker_program": "train.py"}),
               SM_CHANNEL_PRETRAINED=str(tmp_path / "pretrained"))
    cfg = train_entry.parse_config(["--epochs", "5", "--batch-size", "8", "--checkpoint_dir", str(tmp_path / "ck")],
                                   env)
    assert (cfg.epochs, cfg.lr, cfg.decoder, cfg.batch_size) == (5, 0.01, "transformer", 8)
    assert cfg.checkpoint_dir == str(tmp_path / "ck")
    assert cfg.images_dir == str(tmp_path / "images") and cfg.pretrained_dir == str(tmp_path / "pretrained")
    assert cfg.model_dir == str(tmp_path / "model")
    assert cfg.encoder == "resnet50" and cfg.image_size == 224  # production defaults


def test_checkpoint_dir_is_the_hyperparameter_else_sagemakers_default(tmp_path, monkeypatch):
    env = _env(tmp_path, SM_CHECKPOINT_DIR="/not/a/toolkit/variable")  # the real toolkit never sets it
    assert train_entry.DEFAULT_CHECKPOINT_DIR == "/opt/ml/checkpoints"
    assert train_entry.parse_config(["--checkpoint_dir", "/from/hp"], env).checkpoint_dir == "/from/hp"
    local_path = tmp_path / "opt-ml-checkpoints"
    monkeypatch.setattr(train_entry, "DEFAULT_CHECKPOINT_DIR", str(local_path))
    # no CheckpointConfig (the dir does not exist): no checkpoints, nothing written outside the job
    none = train_entry.parse_config([], env)
    assert none.checkpoint_dir is None and none.feature_cache_dir is None
    local_path.mkdir()  # SageMaker creates CheckpointConfig.LocalPath
    assert train_entry.parse_config([], env).checkpoint_dir == str(local_path)


@pytest.mark.parametrize(("argv", "message"), [
    (["--epochs", "many"], "epochs='many' is not a valid int"),
    (["--epochs", "0"], "epochs must be >= 1"),
    (["--val_max_images", "0"], "val_max_images must be >= 1"),  # else "no captions to score" after epoch 1
    (["--decoder", "gru"], "decoder must be 'lstm' or 'transformer'"),
    (["--rating_weight", "-0.5"], "rating_weight must be >= 0"),
])
def test_bad_hyperparameters(tmp_path, argv, message):
    with pytest.raises(ValueError, match=message):
        train_entry.parse_config(argv, _env(tmp_path))


def test_missing_channel_fails_with_failure_file(tmp_path, monkeypatch, caplog):
    for k, v in {"SM_CHANNEL_TRAIN": str(tmp_path / "nope"), "SM_CHANNEL_VAL": str(tmp_path),
                 "SM_OUTPUT_DIR": str(tmp_path / "output"), "SM_HPS": "{}"}.items():
        monkeypatch.setenv(k, v)
    assert train_entry.main([]) == 2
    assert "channels 'train' and 'val' are required" in (tmp_path / "output" / "failure").read_text()
