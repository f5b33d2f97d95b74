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
from sm_helpers import make_bucket, make_role, poll, read_tar, training_request, upload_training_inputs  # noqa: E402

ACCOUNT = "123456789012"


def _policy(*keys: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": [f"arn:aws:s3:::sm-test/{k}" for k in keys]},
        {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]}


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
