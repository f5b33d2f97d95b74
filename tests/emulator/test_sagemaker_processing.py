"""Processing jobs in the emulator run the container entrypoint on staged inputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from sm_helpers import CODE, ROLE, log_messages, make_bucket, make_role, poll  # noqa: E402


def _request(name, bucket, extra_args=()):
    return {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {
            "ImageUri": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3-cpu-py311",
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/process.py"],
            "ContainerArguments": [
                "--input",
                "/opt/ml/processing/data",
                "--output=/opt/ml/processing/summary",
                *extra_args,
            ],
        },
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{bucket}/proc/code/process.py",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": f"s3://{bucket}/proc/data/",
                    "LocalPath": "/opt/ml/processing/data",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "summary",
                    "S3Output": {
                        "S3Uri": f"s3://{bucket}/proc/out/{name}",
                        "LocalPath": "/opt/ml/processing/summary",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}
        },
        "Environment": {"MODE": "eval"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }


@pytest.fixture
def sm(aws):
    s3 = aws.client("s3")
    bucket = make_bucket(s3)
    make_role(aws.client("iam"))
    s3.put_object(Bucket=bucket, Key="proc/code/process.py", Body=(CODE / "process.py").read_bytes())
    s3.put_object(Bucket=bucket, Key="proc/data/a.txt", Body=b"1\n2\n3\n")
    s3.put_object(Bucket=bucket, Key="proc/data/deep/b.txt", Body=b"1\n")
    return aws, s3, aws.client("sagemaker"), bucket


def test_processing_job_maps_paths_and_uploads_outputs(sm):
    aws, s3, client, bucket = sm
    client.create_processing_job(**_request("proc-ok", bucket))
    desc, seen = poll(lambda: client.describe_processing_job(ProcessingJobName="proc-ok"), "ProcessingJobStatus")
    assert seen == ["InProgress", "Completed"], desc.get("FailureReason")
    assert desc["ProcessingEndTime"] >= desc["ProcessingStartTime"]
    assert desc["Environment"] == {"MODE": "eval"}
    summary = json.loads(s3.get_object(Bucket=bucket, Key="proc/out/proc-ok/summary.json")["Body"].read())
    assert summary == {"counts": {"a.txt": 3, "b.txt": 1}, "env": "eval"}
    (messages,) = log_messages(aws.client("logs"), "/aws/sagemaker/ProcessingJobs", "proc-ok/").values()
    assert "files=2" in messages


def test_processing_job_failure_reports_exit_message(sm):
    _, _, client, bucket = sm
    client.create_processing_job(**_request("proc-bad", bucket, ["--fail", "no test manifest"]))
    desc, _ = poll(lambda: client.describe_processing_job(ProcessingJobName="proc-bad"), "ProcessingJobStatus")
    assert desc["ProcessingJobStatus"] == "Failed"
    assert "processing failed: no test manifest" in desc["FailureReason"]
    assert "processing failed: no test manifest" in desc["ExitMessage"]


def test_shell_entrypoint_gets_the_emulators_python_on_path(sm):
    _, s3, client, bucket = sm
    req = _request("proc-sh", bucket)
    req["AppSpecification"] = {
        "ImageUri": "x",
        "ContainerEntrypoint": ["/bin/sh", "-c"],
        "ContainerArguments": ["python -c 'import sys; print(sys.prefix)' > /opt/ml/processing/summary/prefix.txt"],
    }
    client.create_processing_job(**req)
    desc, _ = poll(lambda: client.describe_processing_job(ProcessingJobName="proc-sh"), "ProcessingJobStatus")
    assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
    prefix = s3.get_object(Bucket=bucket, Key="proc/out/proc-sh/prefix.txt")["Body"].read().decode().strip()
    assert prefix == sys.prefix  # the emulator's (virtual) environment, not the base interpreter


def test_missing_entrypoint_is_an_algorithm_error(sm):
    aws, _, client, bucket = sm
    req = _request("proc-noexec", bucket)
    req["AppSpecification"] = {"ImageUri": "x", "ContainerEntrypoint": ["/nonexistent/tool", "--go"]}
    client.create_processing_job(**req)
    desc, _ = poll(lambda: client.describe_processing_job(ProcessingJobName="proc-noexec"), "ProcessingJobStatus")
    assert desc["ProcessingJobStatus"] == "Failed"
    assert desc["FailureReason"].startswith("AlgorithmError")
    assert "cannot execute /nonexistent/tool" in desc["FailureReason"]
    (messages,) = log_messages(aws.client("logs"), "/aws/sagemaker/ProcessingJobs", "proc-noexec/").values()
    assert any("cannot execute /nonexistent/tool" in m for m in messages)
