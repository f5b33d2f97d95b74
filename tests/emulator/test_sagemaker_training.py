"""Training jobs in the emulator really run the script-mode entry point (boto3 → localaws)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from sm_helpers import (  # noqa: E402
    log_messages,
    make_bucket,
    make_role,
    poll,
    read_tar,
    training_request,
    upload_training_inputs,
)


@pytest.fixture
def sm(aws):
    s3 = aws.client("s3")
    bucket = make_bucket(s3)
    make_role(aws.client("iam"))
    upload_training_inputs(s3, bucket)
    return aws, s3, aws.client("sagemaker"), bucket


def _describe(client, name):
    return lambda: client.describe_training_job(TrainingJobName=name)


def test_training_job_runs_script_uploads_model_and_scrapes_metrics(sm):
    aws, s3, client, bucket = sm
    req = training_request(
        "train-ok", bucket, {"epochs": 3, "scale": 1.5}, Environment={"MY_ENV": "hello"}
    )
    manifest = [{"prefix": f"s3://{bucket}/data/"}, "train/a.txt", "train/sub/b.txt"]
    s3.put_object(Bucket=bucket, Key="manifests/val.json", Body=json.dumps(manifest).encode())
    req["InputDataConfig"].append(
        {
            "ChannelName": "val",
            "DataSource": {
                "S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": f"s3://{bucket}/manifests/val.json"}
            },
        }
    )
    client.create_training_job(**req)
    desc, seen = poll(_describe(client, "train-ok"), "TrainingJobStatus")

    assert seen[0] == "InProgress" and seen[-1] == "Completed", desc.get("FailureReason")
    assert [t["Status"] for t in desc["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed"
    ]
    assert desc["TrainingEndTime"] >= desc["TrainingStartTime"]
    assert desc["BillableTimeInSeconds"] >= 1
    artifact = desc["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{bucket}/output/train-ok/output/model.tar.gz"
    metrics = {m["MetricName"]: m["Value"] for m in desc["FinalMetricDataList"]}
    assert metrics == {"train:loss": pytest.approx(1 / 3, abs=1e-4), "val:acc": pytest.approx(0.8)}

    files = read_tar(s3.get_object(Bucket=bucket, Key="output/train-ok/output/model.tar.gz")["Body"].read())
    assert json.loads(files["model.json"]) == {"scale": 1.5, "rows": 3}
    assert "code/inference.py" in files
    env = json.loads(files["env.json"])
    assert env["argv"] == ["--epochs", "3", "--scale", "1.5"]
    assert json.loads(env["SM_CHANNELS"]) == ["train", "val"]
    val_dir = aws.home / "training" / "train-ok" / "input" / "data" / "val"
    assert sorted(p.relative_to(val_dir).as_posix() for p in val_dir.rglob("*.txt")) == [
        "train/a.txt",
        "train/sub/b.txt",
    ]
    assert json.loads(env["SM_HPS"]) == {"epochs": 3, "scale": 1.5}
    assert env["SM_HP_SCALE"] == "1.5"
    assert env["SM_CURRENT_HOST"] == "algo-1" and json.loads(env["SM_HOSTS"]) == ["algo-1"]
    assert env["SM_NUM_GPUS"] == "0" and env["MY_ENV"] == "hello"
    assert env["SM_CHANNEL_TRAIN"].endswith("/training/train-ok/input/data/train")
    assert env["cwd"].endswith("/training/train-ok/code")
    assert env["AWS_ENDPOINT_URL"] == aws.url
    assert env["hyperparameters.json"]["sagemaker_program"] == '"train.py"'
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["hyperparameters"] == {"epochs": 3, "scale": 1.5}
    assert training_env["channel_input_dirs"]["train"] == env["SM_CHANNEL_TRAIN"]
    assert "WORLD_SIZE" not in env
    out = read_tar(s3.get_object(Bucket=bucket, Key="output/train-ok/output/output.tar.gz")["Body"].read())
    assert out == {"report.txt": b"ok"}

    logs = log_messages(aws.client("logs"), "/aws/sagemaker/TrainingJobs", "train-ok/algo-1-")
    (messages,) = logs.values()
    assert "rows=3" in messages and "done" in messages
    assert messages[messages.index("Invoking script with the following command:") + 1].endswith(
        "train.py --epochs 3 --scale 1.5"
    )
    assert any("requirements.txt found: pip install is skipped locally" in m for m in messages)


def test_crashing_script_fails_with_stderr_tail(sm):
    _, _, client, bucket = sm
    client.create_training_job(**training_request("train-crash", bucket, {"fail": "boom: 大喜利 data is bad"}))
    desc, _ = poll(_describe(client, "train-crash"), "TrainingJobStatus")
    assert desc["TrainingJobStatus"] == "Failed"
    assert desc["SecondaryStatus"] == "Failed"
    assert "ExitCode 1" in desc["FailureReason"]
    assert "ValueError: boom: 大喜利 data is bad" in desc["FailureReason"]
    assert "ModelArtifacts" not in desc


def test_failure_file_becomes_failure_reason(sm):
    _, _, client, bucket = sm
    client.create_training_job(**training_request("train-failfile", bucket, {"failure_file": "no GPU found"}))
    desc, _ = poll(_describe(client, "train-failfile"), "TrainingJobStatus")
    assert desc["TrainingJobStatus"] == "Failed"
    assert desc["FailureReason"] == "AlgorithmError: no GPU found"


def _wait_for_log_line(aws, prefix, line):
    logs = aws.client("logs")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if any(line in m for m in log_messages(logs, "/aws/sagemaker/TrainingJobs", prefix).values()):
                return
        except logs.exceptions.ResourceNotFoundException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no log line {line!r} under {prefix}")


def test_stop_training_job_stops_process_and_keeps_model(sm):
    aws, s3, client, bucket = sm
    client.create_training_job(**training_request("train-stop", bucket, {"sleep": 120}))
    poll(_describe(client, "train-stop"), "SecondaryStatus", until={"Training"})
    _wait_for_log_line(aws, "train-stop/", "rows=3")  # the script's SIGTERM handler is installed
    client.stop_training_job(TrainingJobName="train-stop")
    desc, seen = poll(_describe(client, "train-stop"), "TrainingJobStatus")
    assert desc["TrainingJobStatus"] == "Stopped"
    assert "Stopping" in seen or desc["SecondaryStatusTransitions"][-3]["Status"] == "Stopping"
    files = read_tar(s3.get_object(Bucket=bucket, Key="output/train-stop/output/model.tar.gz")["Body"].read())
    assert files["terminated.txt"] == b"got SIGTERM"
    with pytest.raises(ClientError, match="status Stopped"):
        client.stop_training_job(TrainingJobName="train-stop")


def test_max_runtime_exceeded_stops_job(sm):
    _, _, client, bucket = sm
    req = training_request("train-slow", bucket, {"sleep": 120}, StoppingCondition={"MaxRuntimeInSeconds": 1})
    client.create_training_job(**req)
    desc, _ = poll(_describe(client, "train-slow"), "TrainingJobStatus")
    assert desc["TrainingJobStatus"] == "Stopped"
    assert desc["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert "MaxRuntimeInSeconds" in desc["FailureReason"]


# What sagemaker-training's Environment.to_env_vars() sets (aws/sagemaker-training-toolkit,
# src/sagemaker_training/environment.py), for channel "train" and hyperparameters epochs/scale.
TOOLKIT_SM_VARS = {
    "SM_HOSTS", "SM_NETWORK_INTERFACE_NAME", "SM_HPS", "SM_USER_ENTRY_POINT", "SM_FRAMEWORK_PARAMS",
    "SM_RESOURCE_CONFIG", "SM_INPUT_DATA_CONFIG", "SM_OUTPUT_DATA_DIR", "SM_CHANNELS", "SM_CURRENT_HOST",
    "SM_CURRENT_INSTANCE_TYPE", "SM_CURRENT_INSTANCE_GROUP", "SM_CURRENT_INSTANCE_GROUP_HOSTS",
    "SM_INSTANCE_GROUPS", "SM_INSTANCE_GROUPS_DICT", "SM_DISTRIBUTION_INSTANCE_GROUPS", "SM_IS_HETERO",
    "SM_MODULE_NAME", "SM_LOG_LEVEL", "SM_FRAMEWORK_MODULE", "SM_INPUT_DIR", "SM_INPUT_CONFIG_DIR",
    "SM_OUTPUT_DIR", "SM_NUM_CPUS", "SM_NUM_GPUS", "SM_NUM_NEURONS", "SM_MODEL_DIR", "SM_MODULE_DIR",
    "SM_TRAINING_ENV", "SM_USER_ARGS", "SM_OUTPUT_INTERMEDIATE_DIR",
    "SM_CHANNEL_TRAIN", "SM_HP_EPOCHS", "SM_HP_SCALE",
}


def test_job_env_is_exactly_what_the_toolkits_set(sm):
    _, s3, client, bucket = sm
    client.create_training_job(**training_request("train-env", bucket, {"epochs": 1, "scale": 2}))
    desc, _ = poll(_describe(client, "train-env"), "TrainingJobStatus")
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    files = read_tar(s3.get_object(Bucket=bucket, Key="output/train-env/output/model.tar.gz")["Body"].read())
    env = json.loads(files["env.json"])
    assert {k for k in env if k.startswith("SM_")} == TOOLKIT_SM_VARS
    # the PyTorch container's rendezvous (single host too); no launcher variables, no SM_CHECKPOINT_DIR
    assert env["MASTER_ADDR"] == "127.0.0.1" and int(env["MASTER_PORT"]) > 0
    assert not {"WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK"} & set(env)
    assert (env["CURRENT_HOST"], env["TRAINING_JOB_NAME"]) == ("algo-1", "train-env")
    assert env["TRAINING_JOB_ARN"] == desc["TrainingJobArn"] and env["SAGEMAKER_REGION"] == "us-east-1"
    assert json.loads(env["SM_USER_ARGS"]) == ["--epochs", "1", "--scale", "2"]
    assert env["SM_MODULE_NAME"] == "train" and env["SM_IS_HETERO"] == "false"
    config = json.loads(env["SM_RESOURCE_CONFIG"])
    assert config["current_group_name"] == "homogeneousCluster"
    assert config["instance_groups"] == [
        {"instance_group_name": "homogeneousCluster", "instance_type": "ml.g5.xlarge", "hosts": ["algo-1"]}
    ]
    assert json.loads(env["SM_TRAINING_ENV"])["master_hostname"] == "algo-1"


def test_spot_job_resumes_from_checkpoint_config(sm):
    """CheckpointConfig.LocalPath is where the job's checkpoints live: restored from S3Uri at start,
    uploaded while the job runs and at its end, so the next (spot) job resumes from them."""
    _, s3, client, bucket = sm
    ckpt = {"S3Uri": f"s3://{bucket}/checkpoints/run", "LocalPath": "/opt/ml/ckpt"}
    for name in ("train-ckpt-1", "train-ckpt-2"):
        hps = {"epochs": 1, "checkpoint_dir": "/opt/ml/ckpt/state",
               "wait_checkpoint_upload": f"s3://{bucket}/checkpoints/run/state/state.json"}
        req = training_request(name, bucket, hps, CheckpointConfig=ckpt, EnableManagedSpotTraining=True,
                               StoppingCondition={"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200})
        client.create_training_job(**req)
        desc, _ = poll(_describe(client, name), "TrainingJobStatus")
        assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
        files = read_tar(s3.get_object(Bucket=bucket, Key=f"output/{name}/output/model.tar.gz")["Body"].read())
        assert files["uploaded_while_running.txt"] == b"yes"
        env = json.loads(files["env.json"])
        assert env["argv"][env["argv"].index("--checkpoint_dir") + 1].endswith(f"/training/{name}/checkpoints/state")
        assert "SM_CHECKPOINT_DIR" not in env
    state = json.loads(s3.get_object(Bucket=bucket, Key="checkpoints/run/state/state.json")["Body"].read())
    assert state == {"runs": 2}


def test_unknown_job_and_duplicate_name_are_validation_errors(sm):
    _, _, client, bucket = sm
    with pytest.raises(ClientError) as err:
        client.describe_training_job(TrainingJobName="nope")
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "Requested resource not found" in err.value.response["Error"]["Message"]
    client.create_training_job(**training_request("train-dup", bucket, {"epochs": 1}))
    with pytest.raises(ClientError, match="must be unique"):
        client.create_training_job(**training_request("train-dup", bucket, {"epochs": 1}))
    poll(_describe(client, "train-dup"), "TrainingJobStatus")


def test_missing_entry_point_fails_clearly(sm):
    _, _, client, bucket = sm
    client.create_training_job(**training_request("train-noentry", bucket, {"sagemaker_program": "nope.py"}))
    desc, _ = poll(_describe(client, "train-noentry"), "TrainingJobStatus")
    assert desc["TrainingJobStatus"] == "Failed"
    assert "entry point 'nope.py' not found" in desc["FailureReason"]


def test_unusable_submit_directory_fails_clearly(sm):
    _, _, client, bucket = sm
    req = training_request("train-nosrc", bucket, {"sagemaker_submit_directory": "/no/such/sourcedir"})
    client.create_training_job(**req)
    desc, _ = poll(_describe(client, "train-nosrc"), "TrainingJobStatus")
    assert desc["TrainingJobStatus"] == "Failed"
    assert "'/no/such/sourcedir' is neither an S3 URI nor an existing local path" in desc["FailureReason"]


def test_two_instances_run_torch_distributed_allreduce(sm):
    aws, s3, client, bucket = sm
    req = training_request(
        "train-dist",
        bucket,
        {"epochs": 1, "allreduce": 1},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 10},
    )
    client.create_training_job(**req)
    desc, _ = poll(_describe(client, "train-dist"), "TrainingJobStatus")
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["BillableTimeInSeconds"] == 2 * desc["TrainingTimeInSeconds"]
    files = read_tar(s3.get_object(Bucket=bucket, Key="output/train-dist/output/model.tar.gz")["Body"].read())
    env = json.loads(files["env.json"])
    assert env["SM_CURRENT_HOST"] == "algo-1" and env["MASTER_ADDR"] == "127.0.0.1"
    assert json.loads(env["SM_HOSTS"]) == ["algo-1", "algo-2"]
    assert env["allreduce"] == 3.0  # rank0 contributes 1, rank1 contributes 2
    logs = log_messages(aws.client("logs"), "/aws/sagemaker/TrainingJobs", "train-dist/")
    assert sorted(name.rsplit("-", 1)[0] for name in logs) == ["train-dist/algo-1", "train-dist/algo-2"]
    assert all("allreduce=3.0" in messages for messages in logs.values())


def test_reset_kills_running_job_processes(sm):
    aws, _, client, bucket = sm
    client.create_training_job(**training_request("train-reset", bucket, {"sleep": 300}))
    poll(_describe(client, "train-reset"), "SecondaryStatus", until={"Training"})
    _wait_for_log_line(aws, "train-reset/", "rows=3")
    pid = int((aws.home / "training" / "train-reset" / "output" / "pid").read_text())
    os.kill(pid, 0)  # running
    aws.reset()
    with pytest.raises(ClientError, match="Requested resource not found"):
        client.describe_training_job(TrainingJobName="train-reset")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"training process {pid} still alive after reset")
