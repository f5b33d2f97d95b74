"""IAM enforcement in the emulator: the switch, S3/DynamoDB resource ARNs, Deny/NotAction,
conditions, PassRole, assumed-role sessions, the admin identity."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from iam_helpers import (  # noqa: E402
    ACCOUNT,
    Session,
    allow,
    deny,
    get_enforce,
    policy,
    role_with,
    set_enforce,
    user_with,
)

BUCKET = "iam-test-bucket"


@pytest.fixture
def enforced(aws):
    """The emulator, reset, with IAM enforcement on (the ``aws`` fixture's default)."""
    aws.client("s3").create_bucket(Bucket=BUCKET)
    assert get_enforce(aws) == {"enforce": True}
    return aws


def _code(exc: ClientError) -> tuple[str, int]:
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


def test_enforcement_toggles_at_runtime(aws):
    # The session emulator starts enforcing (tests/conftest.py); switch off, then back on at the end.
    assert set_enforce(aws, False) == get_enforce(aws) == {"enforce": False}
    nobody = user_with(aws)  # no policy at all
    aws.client("s3").create_bucket(Bucket=BUCKET)
    nobody.client("s3").list_objects_v2(Bucket=BUCKET)  # off: moto answers
    assert set_enforce(aws, True) == {"enforce": True}
    try:
        with pytest.raises(ClientError) as e:
            nobody.client("s3").list_objects_v2(Bucket=BUCKET)
        assert _code(e.value) == ("AccessDenied", 403)
    finally:
        assert set_enforce(aws, False) == {"enforce": False}
    nobody.client("s3").list_objects_v2(Bucket=BUCKET)
    assert set_enforce(aws, True) == {"enforce": True}


def test_object_arn_scopes_get_object_by_prefix(enforced):
    admin = enforced.client("s3")
    admin.put_object(Bucket=BUCKET, Key="landing/x", Body=b"ok")
    admin.put_object(Bucket=BUCKET, Key="staging/x", Body=b"secret")
    reader = user_with(enforced, allow("s3:GetObject", f"arn:aws:s3:::{BUCKET}/landing/*"), name="reader")
    s3 = reader.client("s3")
    assert s3.get_object(Bucket=BUCKET, Key="landing/x")["Body"].read() == b"ok"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=BUCKET, Key="staging/x")
    assert _code(e.value) == ("AccessDenied", 403)
    message = e.value.response["Error"]["Message"]
    assert message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: s3:GetObject on resource: "
        f'"arn:aws:s3:::{BUCKET}/staging/x" because no identity-based policy allows the s3:GetObject action'
    )
    with pytest.raises(ClientError) as e:  # HeadObject is s3:GetObject too
        s3.head_object(Bucket=BUCKET, Key="staging/x")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as e:  # writing is another action
        s3.put_object(Bucket=BUCKET, Key="landing/y", Body=b"")
    assert "s3:PutObject" in e.value.response["Error"]["Message"]


def test_missing_key_is_403_without_list_bucket_and_404_with_it(enforced):
    get_only = user_with(enforced, allow("s3:GetObject", f"arn:aws:s3:::{BUCKET}/*"))
    with pytest.raises(ClientError) as e:
        get_only.client("s3").get_object(Bucket=BUCKET, Key="nope")
    assert _code(e.value) == ("AccessDenied", 403)
    assert "s3:ListBucket" in e.value.response["Error"]["Message"]
    lister = user_with(
        enforced,
        allow("s3:GetObject", f"arn:aws:s3:::{BUCKET}/*"),
        allow("s3:ListBucket", f"arn:aws:s3:::{BUCKET}"),
    )
    with pytest.raises(ClientError) as e:
        lister.client("s3").get_object(Bucket=BUCKET, Key="nope")
    assert _code(e.value) == ("NoSuchKey", 404)


def test_conditional_put_needs_only_put_object_and_answers_412_not_403(enforced):
    """``If-None-Match: *`` needs s3:PutObject alone (AWS: that grant lets the caller learn the key
    exists); without s3:GetObject or s3:ListBucket an existing key is still a 412, not a 403."""
    writer = user_with(enforced, allow("s3:PutObject", f"arn:aws:s3:::{BUCKET}/images/*"), name="writer")
    s3 = writer.client("s3")
    s3.put_object(Bucket=BUCKET, Key="images/ab/x.jpg", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=BUCKET, Key="images/ab/x.jpg", Body=b"two", IfNoneMatch="*")
    assert _code(e.value) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:  # outside the granted prefix: refused before any check
        s3.put_object(Bucket=BUCKET, Key="landing/x.csv", Body=b"", IfNoneMatch="*")
    assert _code(e.value) == ("AccessDenied", 403)
    assert enforced.client("s3").get_object(Bucket=BUCKET, Key="images/ab/x.jpg")["Body"].read() == b"one"


def test_dynamodb_query_on_an_index_needs_the_index_arn(enforced):
    enforced.client("dynamodb").create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("k", "d")],
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {"IndexName": "byd", "KeySchema": [{"AttributeName": "d", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}
        ],
    )
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t"
    query = {"TableName": "t", "IndexName": "byd", "KeyConditionExpression": "d = :d",
             "ExpressionAttributeValues": {":d": {"S": "x"}}}  # fmt: skip
    table_only = user_with(enforced, allow("dynamodb:Query", table))
    table_only.client("dynamodb").query(
        TableName="t", KeyConditionExpression="k = :k", ExpressionAttributeValues={":k": {"S": "x"}}
    )
    with pytest.raises(ClientError) as e:
        table_only.client("dynamodb").query(**query)
    assert _code(e.value) == ("AccessDeniedException", 400)
    assert f"{table}/index/byd" in e.value.response["Error"]["Message"]
    with_index = user_with(enforced, allow("dynamodb:Query", [table, f"{table}/index/*"]))
    assert with_index.client("dynamodb").query(**query)["Items"] == []


def test_batch_write_is_checked_per_table(enforced):
    ddb = enforced.client("dynamodb")
    for name in ("t1", "t2"):
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])  # fmt: skip
    writer = user_with(enforced, allow("dynamodb:BatchWriteItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t1"))
    item = [{"PutRequest": {"Item": {"k": {"S": "1"}}}}]
    writer.client("dynamodb").batch_write_item(RequestItems={"t1": item})
    with pytest.raises(ClientError) as e:
        writer.client("dynamodb").batch_write_item(RequestItems={"t1": item, "t2": item})
    assert "table/t2" in e.value.response["Error"]["Message"]


def test_explicit_deny_beats_allow(enforced):
    enforced.client("s3").put_object(Bucket=BUCKET, Key="k", Body=b"")
    user = user_with(enforced, allow("s3:*", "*"), deny("s3:GetObject", f"arn:aws:s3:::{BUCKET}/*"))
    user.client("s3").list_objects_v2(Bucket=BUCKET)
    with pytest.raises(ClientError) as e:
        user.client("s3").get_object(Bucket=BUCKET, Key="k")
    assert "with an explicit deny in an identity-based policy" in e.value.response["Error"]["Message"]


def test_not_action_allows_everything_else(enforced):
    user = user_with(enforced, {"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": "*"})
    s3 = user.client("s3")
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"")
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=BUCKET, Key="k")
    assert "s3:DeleteObject" in e.value.response["Error"]["Message"]


def test_string_like_prefix_condition_on_list_bucket(enforced):
    user = user_with(
        enforced,
        allow("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", Condition={"StringLike": {"s3:prefix": ["landing/*"]}}),
    )
    s3 = user.client("s3")
    s3.list_objects_v2(Bucket=BUCKET, Prefix="landing/dt=2024-01-01/")
    for kwargs in ({"Prefix": "staging/"}, {}):  # no prefix at all: the key is absent, no match
        with pytest.raises(ClientError) as e:
            s3.list_objects_v2(Bucket=BUCKET, **kwargs)
        assert _code(e.value) == ("AccessDenied", 403)


def test_unmodelled_condition_key_fails_closed(enforced):
    enforced.client("s3").put_object(Bucket=BUCKET, Key="k", Body=b"")
    tagged = {"StringEquals": {"aws:ResourceTag/team": "ogiri"}}
    allowed_only_if = user_with(enforced, allow("s3:GetObject", "*", Condition=tagged))
    with pytest.raises(ClientError):
        allowed_only_if.client("s3").get_object(Bucket=BUCKET, Key="k")
    denied_if = user_with(enforced, allow("s3:GetObject", "*"), deny("s3:GetObject", "*", Condition=tagged))
    with pytest.raises(ClientError) as e:
        denied_if.client("s3").get_object(Bucket=BUCKET, Key="k")
    assert "not modelled" in e.value.response["Error"]["Message"]


def test_admin_keys_keep_full_access(enforced):
    s3 = enforced.client("s3")  # the emulator's testing/testing keys
    s3.put_object(Bucket=BUCKET, Key="staging/x", Body=b"x")
    assert s3.get_object(Bucket=BUCKET, Key="staging/x")["Body"].read() == b"x"
    enforced.client("iam").create_user(UserName="made-by-admin")


def test_deleted_and_inactive_keys_are_refused(enforced):
    user = user_with(enforced, allow("s3:*", "*"), name="gone")
    user.client("s3").list_objects_v2(Bucket=BUCKET)
    enforced.client("iam").update_access_key(UserName="gone", AccessKeyId=user.key, Status="Inactive")
    with pytest.raises(ClientError) as e:
        user.client("s3").list_objects_v2(Bucket=BUCKET)
    assert _code(e.value) == ("InvalidAccessKeyId", 403)
    enforced.client("iam").delete_access_key(UserName="gone", AccessKeyId=user.key)
    with pytest.raises(ClientError) as e:  # a deleted key must not become an admin key
        user.client("dynamodb").list_tables()
    assert _code(e.value)[0] == "UnrecognizedClientException"


def test_group_and_managed_policies_apply(enforced):
    iam = enforced.client("iam")
    arn = iam.create_policy(PolicyName="list", PolicyDocument=policy(allow("s3:ListBucket", "*")))["Policy"]["Arn"]
    iam.create_group(GroupName="g")
    iam.attach_group_policy(GroupName="g", PolicyArn=arn)
    user = user_with(enforced, name="member")
    with pytest.raises(ClientError):
        user.client("s3").list_objects_v2(Bucket=BUCKET)
    iam.add_user_to_group(GroupName="g", UserName="member")
    user.client("s3").list_objects_v2(Bucket=BUCKET)


SAGEMAKER_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}  # fmt: skip


def _training_job(role_arn: str, name: str = "ogiri-train-1") -> dict:
    return {
        "TrainingJobName": name,
        "RoleArn": role_arn,
        "AlgorithmSpecification": {"TrainingImage": "x", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }


def test_pass_role_needs_a_grant_for_that_role_to_sagemaker(enforced):
    role = role_with(enforced, "ogiri-exec", SAGEMAKER_TRUST)
    other = role_with(enforced, "other-role", SAGEMAKER_TRUST)
    jobs = allow("sagemaker:CreateTrainingJob", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/ogiri-*")
    passed = {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    no_pass = user_with(enforced, jobs)
    with pytest.raises(ClientError) as e:
        no_pass.client("sagemaker").create_training_job(**_training_job(role))
    assert _code(e.value) == ("AccessDeniedException", 400)
    assert f"iam:PassRole on resource: {role}" in e.value.response["Error"]["Message"]
    to_ec2 = user_with(enforced, jobs, allow("iam:PassRole", role, Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}))
    with pytest.raises(ClientError):
        to_ec2.client("sagemaker").create_training_job(**_training_job(role))
    granted = user_with(enforced, jobs, allow("iam:PassRole", role, Condition=passed))
    with pytest.raises(ClientError):  # a role that is not granted
        granted.client("sagemaker").create_training_job(**_training_job(other))
    with pytest.raises(ClientError) as e:  # the job name is lower-cased into the ARN and must match ogiri-*
        granted.client("sagemaker").create_training_job(**_training_job(role, name="Other-Job"))
    assert "training-job/other-job" in e.value.response["Error"]["Message"]
    arn = granted.client("sagemaker").create_training_job(**_training_job(role))["TrainingJobArn"]
    assert arn.endswith(":training-job/ogiri-train-1")


def test_tags_on_create_need_add_tags_on_the_new_resource(enforced):
    role = role_with(enforced, "ogiri-exec", SAGEMAKER_TRUST)
    arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/ogiri-*"
    create = [allow("sagemaker:CreateTrainingJob", arn),
              allow("iam:PassRole", role, Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}})]
    tagged = {**_training_job(role), "Tags": [{"Key": "ogiri:run-key", "Value": "r1"}]}
    untagging = user_with(enforced, *create)
    with pytest.raises(ClientError) as e:
        untagging.client("sagemaker").create_training_job(**tagged)
    assert _code(e.value) == ("AccessDeniedException", 400)
    assert "sagemaker:AddTags on resource: arn:aws:sagemaker:us-east-1:" in e.value.response["Error"]["Message"]
    untagging.client("sagemaker").create_training_job(**_training_job(role, name="ogiri-untagged"))  # no Tags: fine
    only_run_keys = allow("sagemaker:AddTags", arn, Condition={"ForAllValues:StringLike": {"aws:TagKeys": ["ogiri:*"]}})
    tagging = user_with(enforced, *create, only_run_keys)
    tagging.client("sagemaker").create_training_job(**tagged)
    with pytest.raises(ClientError):  # a tag key outside ogiri:* is refused by the condition
        tagging.client("sagemaker").create_training_job(
            **{**_training_job(role, name="ogiri-train-2"), "Tags": [{"Key": "owner", "Value": "x"}]})


def test_assumed_role_session_is_held_to_the_role_policy(enforced):
    enforced.client("s3").put_object(Bucket=BUCKET, Key="models/m", Body=b"m")
    enforced.client("s3").put_object(Bucket=BUCKET, Key="staging/x", Body=b"x")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/caller"}, "Action": "sts:AssumeRole"}]}  # fmt: skip
    role = role_with(enforced, "reader-role", trust, allow("s3:GetObject", f"arn:aws:s3:::{BUCKET}/models/*"))
    caller = user_with(enforced, name="caller")  # the trust policy names it: no identity grant needed
    creds = caller.client("sts").assume_role(RoleArn=role, RoleSessionName="job")["Credentials"]
    session = Session(enforced, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert session.client("s3").get_object(Bucket=BUCKET, Key="models/m")["Body"].read() == b"m"
    with pytest.raises(ClientError) as e:
        session.client("s3").get_object(Bucket=BUCKET, Key="staging/x")
    assert "assumed-role/reader-role/job is not authorized" in e.value.response["Error"]["Message"]
    stranger = user_with(enforced, allow("sts:AssumeRole", "*"), name="stranger")
    with pytest.raises(ClientError) as e:  # not trusted by the role
        stranger.client("sts").assume_role(RoleArn=role, RoleSessionName="probe")
    assert _code(e.value) == ("AccessDenied", 403)
    forged = Session(enforced, creds["AccessKeyId"], creds["SecretAccessKey"], "not-the-token")
    with pytest.raises(ClientError):
        forged.client("s3").get_object(Bucket=BUCKET, Key="models/m")


def test_malformed_policies_are_rejected_at_write_time(aws):
    iam = aws.client("iam")
    role_with(aws, "r", SAGEMAKER_TRUST)
    bad = [
        policy({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}),
        policy(allow("s3:GetObject", "*", Condition={"StringLike": {"s3:prefix": [{"nested": 1}]}})),
        policy(allow("s3:GetObject", "*", Condition={"StringFancy": {"s3:prefix": "x"}})),
        policy(allow(["s3:GetObject", 7], "*")),
    ]
    for document in bad:
        with pytest.raises(ClientError) as e:
            iam.put_role_policy(RoleName="r", PolicyName="p", PolicyDocument=document)
        assert _code(e.value)[0] == "MalformedPolicyDocument", document
        with pytest.raises(ClientError) as e:
            iam.create_policy(PolicyName="p", PolicyDocument=document)
        assert _code(e.value)[0] == "MalformedPolicyDocument", document
    iam.put_role_policy(RoleName="r", PolicyName="p", PolicyDocument=policy(allow("s3:GetObject", "*")))


def test_json_error_shape_names_action_and_resource(enforced):
    user = user_with(enforced, name="nobody")
    with pytest.raises(ClientError) as e:
        user.client("sagemaker").describe_endpoint(EndpointName="ogiri-ep")
    assert _code(e.value) == ("AccessDeniedException", 400)
    assert e.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/nobody is not authorized to perform: sagemaker:DescribeEndpoint "
        f"on resource: arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/ogiri-ep because no identity-based "
        "policy allows the sagemaker:DescribeEndpoint action"
    )
    with pytest.raises(ClientError) as e:  # query protocol (IAM)
        user.client("iam").list_users()
    assert _code(e.value) == ("AccessDenied", 403)
    assert user.client("sts").get_caller_identity()["Arn"].endswith("user/nobody")
    json.dumps(e.value.response["Error"])


def test_wrong_secret_is_refused_and_unicode_keys_verify(enforced):
    user = user_with(enforced, allow(["s3:*", "dynamodb:*", "sts:*", "sagemaker:*"], "*"), name="signer")
    s3 = user.client("s3")
    key = "landing/dt=2024-01-01/大喜利 ok+&=.csv"
    s3.put_object(Bucket=BUCKET, Key=key, Body="お題,答え\n".encode())
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode() == "お題,答え\n"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="landing/")["Contents"]] == [key]
    user.client("dynamodb").list_tables()
    user.client("sagemaker").list_training_jobs()
    forged = Session(enforced, user.key, "not-the-secret")
    for call, code in (
        (lambda: forged.client("s3").list_objects_v2(Bucket=BUCKET), ("SignatureDoesNotMatch", 403)),
        (lambda: forged.client("dynamodb").list_tables(), ("InvalidSignatureException", 400)),
        (lambda: forged.client("sts").get_caller_identity(), ("SignatureDoesNotMatch", 403)),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert _code(e.value) == code


def test_delete_objects_reports_denied_keys_and_deletes_the_rest(enforced):
    admin = enforced.client("s3")
    for key in ("rejects/a", "rejects/b", "images/c"):
        admin.put_object(Bucket=BUCKET, Key=key, Body=b"")
    user = user_with(enforced, allow("s3:DeleteObject", f"arn:aws:s3:::{BUCKET}/rejects/*"))
    objects = [{"Key": k} for k in ("rejects/a", "images/c", "rejects/b")]
    result = user.client("s3").delete_objects(Bucket=BUCKET, Delete={"Objects": objects, "Quiet": True})
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("images/c", "AccessDenied")]
    assert "s3:DeleteObject" in result["Errors"][0]["Message"]
    left = [o["Key"] for o in admin.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert left == ["images/c"]
    only_denied = user.client("s3").delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "images/c"}]})
    assert [e["Key"] for e in only_denied["Errors"]] == ["images/c"]
    assert not only_denied.get("Deleted")


def test_call_log_tallies_each_principals_allowed_and_denied_actions(enforced):
    import urllib.request

    def calls() -> list[dict]:
        with urllib.request.urlopen(f"{enforced.url}/_localaws/iam/calls", timeout=10) as resp:
            return json.loads(resp.read())["calls"]

    req = urllib.request.Request(f"{enforced.url}/_localaws/iam/calls", method="DELETE")
    urllib.request.urlopen(req, timeout=10).close()
    admin = enforced.client("s3")
    admin.put_object(Bucket=BUCKET, Key="landing/x", Body=b"ok")  # the admin identity is not recorded
    reader = user_with(enforced, allow("s3:GetObject", f"arn:aws:s3:::{BUCKET}/landing/*"), name="tally")
    s3 = reader.client("s3")
    s3.get_object(Bucket=BUCKET, Key="landing/x")
    s3.get_object(Bucket=BUCKET, Key="landing/x")
    with pytest.raises(ClientError):
        s3.put_object(Bucket=BUCKET, Key="landing/y", Body=b"no")
    mine = {c["action"]: c for c in calls() if c["principal"].endswith(":user/tally")}
    assert set(mine) == {"s3:GetObject", "s3:PutObject"}, calls()
    assert (mine["s3:GetObject"]["allowed"], mine["s3:GetObject"]["denied"]) == (2, 0)
    assert (mine["s3:PutObject"]["allowed"], mine["s3:PutObject"]["denied"]) == (0, 1)
    assert mine["s3:PutObject"]["resources"] == [f"arn:aws:s3:::{BUCKET}/landing/y"]
    assert all(":user/tally" in c["principal"] for c in calls())
