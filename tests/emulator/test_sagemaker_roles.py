"""Job code runs as the execution role (IAM enforced, as in the session emulator).

SageMaker assumes the job's RoleArn (a model's ExecutionRoleArn) and gives the code that role's
credentials, never the caller's: what the code may do is what the role's policy grants. A role that
does not exist or does not trust sagemaker.amazonaws.com is refused at Create* with SageMaker's words.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from sm_helpers import (  # noqa: E402
    make_bucket,
    make_role,
    model_tarball,
    poll,
    read_tar,
    training_request,
    upload_training_inputs,
    with_platform,
)

ACCOUNT = "123456789012"


def _policy(*keys: str) -> dict:
    return with_platform({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": [f"arn:aws:s3:::sm-test/{k}" for k in keys]},
        {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]}, "sm-test")


@pytest.fixture
def sm(aws):
    aws.enforce_iam(True)
    s3 = aws.client("s3")
    bucket = make_bucket(s3)
    upload_training_inputs(s3, bucket)
    s3.put_object(Bucket=bucket, Key="secret/granted.txt", Body=b"for the job")
    s3.put_object(Bucket=bucket, Key="secret/other.txt", Body=b"not for the job")
    return aws, s3, aws.client("sagemaker"), bucket


def _run(client, name, bucket, role_arn, key):
    client.create_training_job(**training_request(name, bucket, {"epochs": 1, "read_s3": f"s3://{bucket}/{key}"},
                                                  RoleArn=role_arn))
    desc, _ = poll(lambda: client.describe_training_job(TrainingJobName=name), "TrainingJobStatus")
    return desc


def test_job_code_is_held_to_the_roles_policy(sm):
    aws, s3, client, bucket = sm
    role = make_role(aws.client("iam"), "limited", _policy("secret/granted.txt"))
    denied = _run(client, "train-denied", bucket, role, "secret/other.txt")
    assert denied["TrainingJobStatus"] == "Failed"
    assert "AccessDenied" in denied["FailureReason"]
    assert f"arn:aws:sts::{ACCOUNT}:assumed-role/limited/SageMaker is not authorized to perform: s3:GetObject" \
        in denied["FailureReason"]

    allowed = _run(client, "train-granted", bucket, role, "secret/granted.txt")
    assert allowed["TrainingJobStatus"] == "Completed", allowed.get("FailureReason")
    files = read_tar(s3.get_object(Bucket=bucket, Key="output/train-granted/output/model.tar.gz")["Body"].read())
    assert files["read.txt"] == b"for the job"
    env = json.loads(files["env.json"])
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA") and env["AWS_SESSION_TOKEN"]  # a role session, not ours


@pytest.mark.parametrize("trust", [
    None,  # the role does not exist
    {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
    {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"aws:SourceAccount": "999999999999"}}}]},
], ids=["missing", "other-service", "other-source-account"])
def test_a_role_sagemaker_cannot_assume_is_refused_at_create(sm, trust):
    aws, _, client, bucket = sm
    arn = f"arn:aws:iam::{ACCOUNT}:role/untrusted"
    if trust is not None:
        aws.client("iam").create_role(RoleName="untrusted", AssumeRolePolicyDocument=json.dumps(trust))
    message = (f"Could not assume role {arn}. Please ensure that the role exists and allows principal "
               "'sagemaker.amazonaws.com' to assume the role.")
    for call in (
        lambda: client.create_training_job(**training_request("train-untrusted", bucket, RoleArn=arn)),
        lambda: client.create_model(ModelName="m-untrusted", ExecutionRoleArn=arn,
                                    PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://{bucket}/m.tar.gz"}),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert (err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]) == (
            "ValidationException", message)


# -- what SageMaker itself does as the role: image pull, staging, logs, metrics ----------------------
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.3-cpu-py311"
ASSUMED = f"arn:aws:sts::{ACCOUNT}:assumed-role/platform/SageMaker"


@pytest.mark.parametrize("without, reason", [
    ("ecr:BatchGetImage", f"ClientError: The role 'arn:aws:iam::{ACCOUNT}:role/platform' does not have "
                          f"BatchGetImage permission for the image: '{IMAGE}'."),
    # the download starts with HeadObject, whose 403 has no body (as on S3)
    ("data", "could not download channel 'train' from s3://sm-test/data/train: An error occurred (403) "
             "when calling the HeadObject operation: Forbidden"),
    ("code", "could not download sagemaker_submit_directory s3://sm-test/code/sourcedir.tar.gz: "
             "An error occurred (403) when calling the HeadObject operation: Forbidden"),
    ("output", "ClientError: could not upload the job's output to s3://sm-test/output: Failed to upload "),
    ("output", f'{ASSUMED} is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::sm-test/output/'),
], ids=["image-pull", "channel-download", "code-download", "output-upload", "output-upload-names-the-role"])
def test_sagemaker_stages_a_job_as_its_role(sm, without, reason):
    aws, s3, client, bucket = sm
    role = make_role(aws.client("iam"), "platform",
                     with_platform({"Version": "2012-10-17", "Statement": []}, bucket, without=without))
    desc = _run(client, f"train-no-{without.replace(':', '-')}", bucket, role, "data/train/a.txt")
    assert desc["TrainingJobStatus"] == "Failed"
    assert reason in desc["FailureReason"]


def test_logs_and_metrics_are_written_as_the_role(sm):
    aws, s3, client, bucket = sm
    logs, cloudwatch = aws.client("logs"), aws.client("cloudwatch")
    granted = make_role(aws.client("iam"), "platform", with_platform(
        {"Version": "2012-10-17", "Statement": []}, bucket))
    silent = make_role(aws.client("iam"), "silent", with_platform(
        {"Version": "2012-10-17", "Statement": []}, bucket, without="logs:PutLogEvents"))
    mute = make_role(aws.client("iam"), "mute", with_platform(
        {"Version": "2012-10-17", "Statement": []}, bucket, without="cloudwatch:PutMetricData"))
    for name, role in (("train-logged", granted), ("train-silent", silent), ("train-mute", mute)):
        desc = _run(client, name, bucket, role, "data/train/a.txt")
        assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")

    def events(job):
        streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=job)
        return [e["message"] for s in streams["logStreams"] for e in logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"])["events"]]

    assert any("train_loss=" in line for line in events("train-logged"))
    assert events("train-silent") == []  # AWS drops the lines of a role that may not log; the job still ran

    def hosts(metric):
        found = cloudwatch.list_metrics(Namespace="/aws/sagemaker/TrainingJobs", MetricName=metric)["Metrics"]
        return {d["Value"] for m in found for d in m["Dimensions"] if d["Name"] == "Host"}

    assert {"train-logged/algo-1", "train-silent/algo-1"} <= hosts("train:loss")
    assert "train-mute/algo-1" not in hosts("train:loss")


def test_an_endpoint_pulls_its_image_as_the_models_role(aws):
    aws.enforce_iam(True)
    s3, client = aws.client("s3"), aws.client("sagemaker")
    bucket = make_bucket(s3)
    s3.put_object(Bucket=bucket, Key="models/m/model.tar.gz", Body=model_tarball({"scale": 1}))
    policy = with_platform({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/models/*"}]},
        bucket, without="ecr:BatchGetImage")
    role = make_role(aws.client("iam"), "no-pull", policy)
    image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.3-cpu-py311"
    client.create_model(ModelName="m", ExecutionRoleArn=role, PrimaryContainer={
        "Image": image, "ModelDataUrl": f"s3://{bucket}/models/m/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    client.create_endpoint_config(EndpointConfigName="m-cfg", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}])
    client.create_endpoint(EndpointName="ep-no-pull", EndpointConfigName="m-cfg")
    desc, _ = poll(lambda: client.describe_endpoint(EndpointName="ep-no-pull"), "EndpointStatus",
                   until={"InService", "Failed"})
    assert desc["EndpointStatus"] == "Failed"
    assert f"The role '{role}' does not have BatchGetImage permission for the image: '{image}'." in desc["FailureReason"]
