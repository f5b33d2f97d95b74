"""DDP: train.py started as 2 CPU processes (gloo) with torchrun-style env vars, as the emulator does."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from ogiri_local.emulator import free_port

TRAIN_PY = Path(__file__).resolve().parents[2] / "include" / "training" / "train.py"


def test_two_cpu_processes_run_an_epoch_and_agree_on_the_weights(synthetic, tmp_path):
    port = free_port()
    hps = {"epochs": 1, "encoder": "resnet18", "image_size": 64, "grid": 2, "embed_dim": 32, "hidden_dim": 32,
           "batch_size": 32, "num_workers": 0, "max_len": 24}
    procs = []
    for rank in range(2):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update({
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2", "RANK": str(rank),
            "LOCAL_RANK": str(rank), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
            "SM_MODEL_DIR": str(tmp_path / f"model{rank}"), "SM_OUTPUT_DATA_DIR": str(tmp_path / f"out{rank}"),
            "SM_CHANNEL_TRAIN": str(synthetic["train"]),
            "SM_CHANNEL_VAL": str(synthetic["val"]), "SM_CHANNEL_IMAGES": str(synthetic["images"]),
            "SM_HPS": json.dumps({**hps, "checkpoint_dir": str(tmp_path / f"ck{rank}")}),
        })
        procs.append(subprocess.Popen([sys.executable, str(TRAIN_PY)], cwd=tmp_path, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=600)
        outs.append(out)
        assert p.returncode == 0, out
    digests = [re.search(rf"rank={r} weights_sha256=([0-9a-f]{{64}})", o).group(1) for r, o in enumerate(outs)]
    assert digests[0] == digests[1]
    assert "rank 0/2" in outs[0] and "rank 1/2" in outs[1]
    # rank 0 logs scrapeable metrics and writes the model; rank 1 writes nothing
    for name in ("epoch", "train_loss", "val_loss", "val_bleu4", "val_cider"):
        assert re.search(rf"\b{name}=([0-9.eE+-]+)", outs[0]), name
    assert not re.search(r"\bval_bleu4=", outs[1])
    assert (tmp_path / "model0" / "model.pt").is_file() and (tmp_path / "ck0" / "checkpoint.pt").is_file()
    assert not (tmp_path / "model1").exists()
    assert json.loads((tmp_path / "out0" / "metrics.json").read_text())["epoch"] == 1
