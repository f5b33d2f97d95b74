"""Demo of the local SageMaker emulator: train a tiny model, deploy it, invoke it.

Starts `python -m localaws serve` on a free 127.0.0.1 port, uploads a pure-Python training script
and a few captions, runs a script-mode training job (printing its status transitions, CloudWatch
log lines and scraped metrics), creates an endpoint from the produced model.tar.gz, invokes it and
stops the emulator. Usage: `python scripts/emulator_demo.py`.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ogiri_local.emulator import Emulator  # noqa: E402

TRAIN_PY = '''
import argparse, json, os, shutil
from collections import Counter
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()
captions = []
for path in sorted(Path(os.environ["SM_CHANNEL_TRAIN"]).rglob("*.txt")):
    captions += [c for c in path.read_text(encoding="utf-8").splitlines() if c.strip()]
chars = Counter(ch for c in captions for ch in c)
for epoch in range(1, args.epochs + 1):
    print(f"epoch={epoch} train_loss={1.0 / epoch:.4f} val_bleu4={0.1 * epoch:.3f}", flush=True)
model_dir = Path(os.environ["SM_MODEL_DIR"])
(model_dir / "model.json").write_text(json.dumps({"captions": captions, "top_chars": chars.most_common(3)},
                                                 ensure_ascii=False), encoding="utf-8")
(model_dir / "code").mkdir()
shutil.copy("inference.py", model_dir / "code" / "inference.py")
'''

INFERENCE_PY = '''
import hashlib, json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json"), encoding="utf-8") as f:
        return json.load(f)

def input_fn(body, content_type):
    if content_type != "application/json":
        raise ValueError(f"unsupported content type {content_type}")
    return json.loads(body)

def predict_fn(data, model):
    index = int(hashlib.sha256(data["image_b64"].encode()).hexdigest(), 16) % len(model["captions"])
    return {"caption": model["captions"][index], "score": 1.0}

def output_fn(prediction, accept):
    return json.dumps(prediction, ensure_ascii=False)
'''

CAPTIONS = "猫が会議で議長を務めている\n冷蔵庫が家出した理由\n月曜日の朝にだけ現れる妖怪\n"


def _tar(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _wait(describe, key: str, terminal: set[str], label: str) -> dict:
    last = None
    while True:
        desc = describe()
        state = (desc[key], desc.get("SecondaryStatus"))
        if state != last:
            print(f"  {label}: {desc[key]}" + (f" / {state[1]}" if state[1] else ""))
            last = state
        if desc[key] in terminal:
            return desc
        time.sleep(0.2)


def _upload_inputs(s3, bucket: str) -> None:
    """Create the bucket and upload the source tarball and the training captions."""
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz",
                  Body=_tar({"train.py": TRAIN_PY, "inference.py": INFERENCE_PY}))
    s3.put_object(Bucket=bucket, Key="data/train/captions.txt", Body=CAPTIONS.encode("utf-8"))


def _create_training_job(sm, job: str, bucket: str) -> None:
    """Start the script-mode training job over the uploaded code and captions."""
    sm.create_training_job(
        TrainingJobName=job,
        HyperParameters={"sagemaker_program": '"train.py"',
                         "sagemaker_submit_directory": f'"s3://{bucket}/code/sourcedir.tar.gz"',
                         "epochs": "3"},
        AlgorithmSpecification={
            "TrainingImage": "pytorch-training:local", "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "train:loss", "Regex": r"train_loss=([0-9.]+)"},
                                  {"Name": "val:bleu4", "Regex": r"val_bleu4=([0-9.]+)"}],
        },
        RoleArn="arn:aws:iam::123456789012:role/demo",
        InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/data/train",
            "S3DataDistributionType": "FullyReplicated"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )


def _print_logs(logs, job: str) -> None:
    """Every CloudWatch log line of the training job, stream by stream."""
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=f"{job}/")["logStreams"]
    for stream in streams:
        print(f"  log stream {stream['logStreamName']}:")
        events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                     logStreamName=stream["logStreamName"], startFromHead=True)["events"]
        for event in events:
            print(f"    | {event['message']}")


def _train(sm, logs, bucket: str) -> str | None:
    """Step 1: run the training job and print its progress; the model artifact URI, None if it failed."""
    job = f"demo-train-{int(time.time())}"
    print(f"\n1. training job {job}")
    _create_training_job(sm, job, bucket)
    desc = _wait(lambda: sm.describe_training_job(TrainingJobName=job), "TrainingJobStatus",
                 {"Completed", "Failed", "Stopped"}, "status")
    if desc["TrainingJobStatus"] != "Completed":
        print(f"training failed: {desc.get('FailureReason')}")
        return None
    print("  transitions:", " → ".join(t["Status"] for t in desc["SecondaryStatusTransitions"]))
    _print_logs(logs, job)
    print("  metrics:", {m["MetricName"]: m["Value"] for m in desc["FinalMetricDataList"]})
    artifact = desc["ModelArtifacts"]["S3ModelArtifacts"]
    print(f"  model: {artifact}")
    return artifact


def _serve(sm, rt, artifact: str) -> bool:
    """Step 2: deploy the model to an endpoint and invoke it; False if the endpoint failed."""
    print("\n2. endpoint demo-endpoint")
    sm.create_model(ModelName="demo-model", ExecutionRoleArn="arn:aws:iam::123456789012:role/demo",
                    PrimaryContainer={"Image": "pytorch-inference:local", "ModelDataUrl": artifact})
    sm.create_endpoint_config(EndpointConfigName="demo-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "demo-model", "InstanceType": "ml.g5.xlarge",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="demo-endpoint", EndpointConfigName="demo-config")
    desc = _wait(lambda: sm.describe_endpoint(EndpointName="demo-endpoint"), "EndpointStatus",
                 {"InService", "Failed"}, "status")
    if desc["EndpointStatus"] != "InService":
        print(f"endpoint failed: {desc.get('FailureReason')}")
        return False
    for image in ("aGVsbG8=", "d29ybGQ="):
        resp = rt.invoke_endpoint(EndpointName="demo-endpoint", ContentType="application/json",
                                  Accept="application/json", Body=json.dumps({"image_b64": image}))
        print(f"  invoke {image} → {resp['ContentType']} {resp['Body'].read().decode('utf-8')}")
    try:
        rt.invoke_endpoint(EndpointName="demo-endpoint", ContentType="text/csv", Body=b"1,2")
    except rt.exceptions.ModelError as err:
        print(f"  bad payload → ModelError {err.response['OriginalStatusCode']}: "
              f"{err.response['OriginalMessage']}")
    return True


def main() -> int:
    """Run the demo; returns 0 on success."""
    with tempfile.TemporaryDirectory(prefix="localaws-demo-") as tmp, Emulator(Path(tmp)) as emu:
        print(f"emulator at {emu.url} (work dirs under {tmp})")
        s3, sm, rt, logs = (emu.client(s) for s in ("s3", "sagemaker", "sagemaker-runtime", "logs"))
        bucket = "ogiri-demo"
        _upload_inputs(s3, bucket)
        artifact = _train(sm, logs, bucket)
        if artifact is None or not _serve(sm, rt, artifact):
            return 1
        sm.delete_endpoint(EndpointName="demo-endpoint")
        print("\nendpoint deleted; stopping the emulator")
    return 0


if __name__ == "__main__":
    sys.exit(main())
