"""Tiny torch-free models for the emulator: serving handlers that caption ``id`` → ``c-<id>``.

``register_handler_model(..., delay=3)`` makes each request slow; ``broken=True`` makes ``model_fn``
raise, so the model server never starts and the transform job ends ``Failed``.
"""

from __future__ import annotations

import io
import json
import tarfile

HANDLERS = """
import json, os, time


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        model = json.load(f)
    if model.get("broken"):
        raise RuntimeError("weights are corrupt")
    return model


def input_fn(body, content_type):
    text = body.decode() if isinstance(body, bytes) else body
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def predict_fn(data, model):
    time.sleep(model.get("delay", 0))
    return [{"id": d["id"], "caption": "c-" + d["id"], "score": 0.5} for d in data]


def output_fn(prediction, accept):
    return "".join(json.dumps(p) + "\\n" for p in prediction), accept
"""


def tar_gz(files: dict[str, str]) -> bytes:
    """A .tar.gz of text files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def register_handler_model(
    s3, sagemaker, bucket: str, name: str, *, delay: float = 0, broken: bool = False,
    role: str = "arn:aws:iam::123456789012:role/sagemaker",
) -> str:
    """Upload a handler model and CreateModel it."""
    key = f"models/{name}/model.tar.gz"
    model = json.dumps({"delay": delay, "broken": broken})
    s3.put_object(Bucket=bucket, Key=key, Body=tar_gz({"model.json": model, "code/inference.py": HANDLERS}))
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=role,
        PrimaryContainer={
            "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311",
            "ModelDataUrl": f"s3://{bucket}/{key}",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
        },
    )
    return name
