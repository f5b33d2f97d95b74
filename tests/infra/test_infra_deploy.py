"""infra/ogiri.yaml deploys into the local emulator (moto CloudFormation) through infra/deploy_stack.py.

moto's CloudFormation applies the bucket's encryption and tags but not its versioning, public access
block, lifecycle or bucket policy, nor the table's point-in-time recovery; those are asserted on the
template itself in test_infra_template.py.
"""

from __future__ import annotations

import ast
import json
import sys
from urllib.parse import unquote

import pytest
from infra_policy import TEMPLATE_PATH, load_template, resolve_template

sys.path.insert(0, str(TEMPLATE_PATH.parent))
import deploy_stack  # noqa: E402

sys.path.remove(str(TEMPLATE_PATH.parent))

PARAMS = {"EnvironmentName": "local", "BucketName": "ogiri-mlops", "TableName": "ogiri-captions"}


def _document(value):
    """A policy document as returned by IAM: a dict, URL-encoded JSON, or (moto, inline policies) a repr."""
    if isinstance(value, dict):
        return value
    try:
        return json.loads(unquote(value))
    except ValueError:
        return ast.literal_eval(value)


def _deploy(aws, params=PARAMS, stack="ogiri-local"):
    return deploy_stack.deploy(stack, dict(params), endpoint_url=aws.url, region="us-east-1", poll_s=0.2)


def test_stack_creates_bucket_table_gsi_roles_and_outputs(aws):
    outputs = _deploy(aws)
    assert deploy_stack.ogiri_settings(outputs) == {
        "OGIRI_BUCKET": "ogiri-mlops",
        "OGIRI_TABLE": "ogiri-captions",
        "OGIRI_SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/ogiri-local-sagemaker-execution",
        "OGIRI_REGION": "us-east-1",
        "OGIRI_WORKTEAM_ARN": "",
        "OGIRI_LABELING_ROLE_ARN": "arn:aws:iam::123456789012:role/ogiri-local-labeling",
        "OGIRI_LABELING_PRE_LAMBDA_ARN": "arn:aws:lambda:us-east-1:123456789012:function:ogiri-local-label-pre",
        "OGIRI_LABELING_CONSOLIDATION_LAMBDA_ARN":
            "arn:aws:lambda:us-east-1:123456789012:function:ogiri-local-label-acs",
        "OGIRI_ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:ogiri-local-alerts",
    }
    assert outputs["WorkerPolicyArn"] == "arn:aws:iam::123456789012:policy/ogiri-local-airflow-worker"

    cfn = aws.client("cloudformation")
    (stack,) = cfn.describe_stacks(StackName="ogiri-local")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    logical = {
        r["LogicalResourceId"]
        for r in cfn.list_stack_resources(StackName="ogiri-local")["StackResourceSummaries"]
    }
    assert {"DataBucket", "CaptionTable", "SageMakerExecutionRole", "WorkerPolicy", "WorkerRole"} <= logical

    s3 = aws.client("s3")
    s3.head_bucket(Bucket="ogiri-mlops")
    enc = s3.get_bucket_encryption(Bucket="ogiri-mlops")["ServerSideEncryptionConfiguration"]["Rules"]
    assert enc[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    table = aws.client("dynamodb").describe_table(TableName="ogiri-captions")["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": "ImageKey", "KeyType": "HASH"},
        {"AttributeName": "CaptionId", "KeyType": "RANGE"},
    ]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == outputs["OgiriTableIngestDateIndex"] == "IngestDateIndex"
    assert gsi["KeySchema"] == [
        {"AttributeName": "IngestDate", "KeyType": "HASH"},
        {"AttributeName": "ImageKey", "KeyType": "RANGE"},
    ]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}

    iam = aws.client("iam")
    sm_role = iam.get_role(RoleName="ogiri-local-sagemaker-execution")["Role"]
    assert sm_role["Arn"] == outputs["OgiriSageMakerRoleArn"]
    trust = _document(sm_role["AssumeRolePolicyDocument"])
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert iam.list_role_policies(RoleName="ogiri-local-sagemaker-execution")["PolicyNames"] == [
        "ogiri-sagemaker-execution"
    ]
    attached = iam.list_attached_role_policies(RoleName="ogiri-local-airflow-worker")["AttachedPolicies"]
    assert sorted(p["PolicyArn"] for p in attached) == sorted(
        [outputs["WorkerPolicyArn"], outputs["LabelingWorkerPolicyArn"]])


def test_deployed_policies_are_the_ones_checked_for_least_privilege(aws):
    """The documents moto resolved equal the ones test_infra_template.py evaluates (same resolver)."""
    outputs = _deploy(aws)
    expected = resolve_template(load_template(), PARAMS).resources
    iam = aws.client("iam")
    policy = iam.get_policy(PolicyArn=outputs["WorkerPolicyArn"])["Policy"]
    version = iam.get_policy_version(
        PolicyArn=outputs["WorkerPolicyArn"], VersionId=policy["DefaultVersionId"]
    )
    assert (
        _document(version["PolicyVersion"]["Document"])
        == expected["WorkerPolicy"]["Properties"]["PolicyDocument"]
    )
    inline = iam.get_role_policy(
        RoleName="ogiri-local-sagemaker-execution", PolicyName="ogiri-sagemaker-execution"
    )
    (sm_policy,) = expected["SageMakerExecutionRole"]["Properties"]["Policies"]
    assert _document(inline["PolicyDocument"]) == sm_policy["PolicyDocument"]


def test_redeploy_is_an_update_that_keeps_data(aws):
    first = _deploy(aws)
    ddb = aws.client("dynamodb")
    item = {
        "ImageKey": {"S": "images/ab/abc.jpg"},
        "CaptionId": {"S": "c1"},
        "IngestDate": {"S": "2024-05-01"},
    }
    ddb.put_item(TableName="ogiri-captions", Item=item)
    aws.client("s3").put_object(Bucket="ogiri-mlops", Key="landing/dt=2024-05-01/a.csv", Body=b"x,y\n")

    second = _deploy(aws)

    assert second == first
    got = ddb.query(
        TableName="ogiri-captions",
        IndexName="IngestDateIndex",
        KeyConditionExpression="IngestDate = :d",
        ExpressionAttributeValues={":d": {"S": "2024-05-01"}},
    )["Items"]
    assert [i["CaptionId"]["S"] for i in got] == ["c1"]
    body = aws.client("s3").get_object(Bucket="ogiri-mlops", Key="landing/dt=2024-05-01/a.csv")["Body"].read()
    assert body == b"x,y\n"


def test_ingestion_provisioning_accepts_the_deployed_table(aws):
    from ogiri.provision import ensure_resources, ensure_table

    _deploy(aws)
    assert ensure_table(aws.client("dynamodb"), "ogiri-captions") is False  # exists, schema matches
    ensure_resources(aws.client("s3"), aws.client("dynamodb"), "ogiri-mlops", "ogiri-captions")


def test_cli_prints_exports_and_rejects_bad_params(aws, capsys):
    rc = deploy_stack.main(
        ["--endpoint-url", aws.url, "--region", "us-east-1", "--stack-name", "ogiri-cli"]
        + [f"--param={k}={v}" for k, v in {**PARAMS, "EnvironmentName": "cli"}.items()]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "export OGIRI_BUCKET=ogiri-mlops\n" in out
    assert (
        "export OGIRI_SAGEMAKER_ROLE_ARN=arn:aws:iam::123456789012:role/ogiri-cli-sagemaker-execution\n"
        in out
    )
    with pytest.raises(SystemExit):
        deploy_stack.main(["--stack-name", "x", "--param", "no-equals-sign"])
    assert "Key=Value" in capsys.readouterr().err


def test_outputs_of_another_template_are_refused():
    with pytest.raises(deploy_stack.DeployError, match="OgiriBucket"):
        deploy_stack.ogiri_settings({"SomethingElse": "x"})


def _code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


@pytest.mark.parametrize(
    ("principal", "allowed_key", "denied_key"),
    [
        ("producer", "landing/dt=2024-05-01/rows.csv", "images/ab/x.jpg"),
        (
            "airflow-worker",
            "staging/ingest/dt=2024-05-01/run/chunk-00000.jsonl",
            "landing/dt=2024-05-01/x.csv",
        ),
    ],
)
def test_principal_keys_hold_exactly_their_policy(aws, stack, principal, allowed_key, denied_key):
    """The producer may land CSVs and nothing else; the worker may stage chunks but not land CSVs."""
    from botocore.exceptions import ClientError

    s3 = aws.client("s3", **stack(PARAMS).principals[principal])
    s3.put_object(Bucket="ogiri-mlops", Key=allowed_key, Body=b"image_url,caption\n")
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket="ogiri-mlops", Key=denied_key, Body=b"x")
    assert _code(denied) == "AccessDenied"
    assert "s3:PutObject" in str(denied.value) and denied_key in str(denied.value)


def test_worker_may_not_pass_a_role_it_is_not_granted(aws, stack):
    from botocore.exceptions import ClientError

    found = stack(PARAMS)
    admin_iam = aws.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    other = admin_iam.create_role(RoleName="someone-elses-role", AssumeRolePolicyDocument=json.dumps(trust))
    sm = aws.client("sagemaker", **found.principals["airflow-worker"])
    with pytest.raises(ClientError) as denied:
        sm.create_training_job(
            TrainingJobName="ogiri-train-passrole",
            AlgorithmSpecification={"TrainingImage": "pytorch-training:2.3", "TrainingInputMode": "File"},
            RoleArn=other["Role"]["Arn"],
            OutputDataConfig={"S3OutputPath": "s3://ogiri-mlops/models/"},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 60},
        )
    assert _code(denied) == "AccessDeniedException"  # SageMaker's JSON protocol spelling
    assert "iam:PassRole" in str(denied.value) and "someone-elses-role" in str(denied.value)
