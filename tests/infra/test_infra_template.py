"""infra/ogiri.yaml: cfn-lint clean, hardened storage, least-privilege IAM that still covers the pipeline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from infra_policy import (
    ACCOUNT,
    REGION,
    STAR_RESOURCE_ACTIONS,
    TEMPLATE_PATH,
    all_policy_statements,
    identity_policies,
    is_allowed,
    load_template,
    resolve_template,
)

BUCKET = "ogiri-mlops-test"
PARAMS = {"EnvironmentName": "test", "BucketName": BUCKET, "TableName": "ogiri-captions-test"}


@pytest.fixture(scope="module")
def template():
    return load_template()


@pytest.fixture(scope="module")
def resolved(template):
    return resolve_template(template, PARAMS)


@pytest.fixture(scope="module")
def roles(resolved):
    return identity_policies(resolved.resources)


def _cfn_lint(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("cfn-lint")
    assert exe.exists(), f"cfn-lint is not installed next to {sys.executable}"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------- lint


def test_cfn_lint_passes_including_informational_checks():
    result = _cfn_lint("--include-checks", "I", "--", str(TEMPLATE_PATH))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_cfn_lint_would_catch_a_misspelt_iam_action(tmp_path):
    """Guards the lint test itself: the same invocation fails on a broken copy of the template."""
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert "rekognition:DetectLabels]" in text
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        text.replace("rekognition:DetectLabels]", "rekognition:DetectLabelz]"), encoding="utf-8"
    )
    result = _cfn_lint("--include-checks", "I", "--", str(broken))
    assert result.returncode != 0
    assert "detectlabelz" in result.stdout.lower()


# ---------------------------------------------------------------- least privilege (structure)


def test_no_allow_statement_uses_a_wildcard_action(resolved):
    stmts = all_policy_statements(resolved.resources)
    assert stmts, "no policy statements found"
    for s in stmts:
        assert "NotAction" not in s.raw and "NotResource" not in s.raw, s.raw
        if s.effect == "Allow":
            wild = [a for a in s.actions if "*" in a or "?" in a]
            assert not wild, f"{s.owner} allows wildcard actions {wild}"


def test_the_only_wildcard_is_the_tls_deny(resolved):
    denies = [s for s in all_policy_statements(resolved.resources) if s.effect == "Deny"]
    assert len(denies) == 1
    deny = denies[0]
    assert deny.owner == "DataBucketPolicy"
    assert deny.actions == ("s3:*",)
    assert deny.condition == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(deny.resources) == {f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"}


def test_star_resource_only_for_actions_that_require_it_and_always_with_a_condition(resolved):
    for s in all_policy_statements(resolved.resources):
        if s.effect != "Allow" or "*" not in s.resources:
            continue
        assert s.resources == ("*",), f"{s.owner}: mixes '*' with scoped resources"
        assert set(s.actions) <= STAR_RESOURCE_ACTIONS, f"{s.owner}: {s.actions} on Resource '*'"
        assert s.condition, f"{s.owner}: Resource '*' statement without a condition"


def test_star_resource_actions_are_documented_in_the_template():
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    for action in STAR_RESOURCE_ACTIONS:
        i = text.index(f"[{action}]")
        preceding = text[max(0, i - 600) : i]
        assert 'Resource "*"' in preceding, f"no comment explaining Resource '*' before {action}"


def _allowed_scopes(resolved) -> list[str]:
    sm = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:"
    bucket_arn = resolved.physical["DataBucket"]["Arn"]
    table_arn = resolved.physical["CaptionTable"]["Arn"]
    dlc = resolved.params["DlcRegistryAccountId"]
    return [
        rf"{re.escape(bucket_arn)}(/[a-z-]+/\*)?",
        rf"{re.escape(table_arn)}(/index/\*)?",
        rf"{re.escape(sm)}(training-job|processing-job|transform-job|model|endpoint-config|endpoint"
        rf"|model-package-group|model-package|hyper-parameter-tuning-job|labeling-job)/ogiri-\*",
        rf"{re.escape(sm)}model-package/\*",
        rf"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/\*(:log-stream:\*)?",
        rf"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/LabelingJobs(:\*)?",  # Ground Truth's own group
        rf"arn:aws:ecr:{REGION}:{dlc}:repository/pytorch-(training|inference)",
        rf"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:ogiri-\*",
        re.escape(resolved.physical["SageMakerExecutionRole"]["Arn"]),
        re.escape(resolved.physical["LabelingRole"]["Arn"]),
        rf"{re.escape(bucket_arn)}/labeling/\*/output/\*",
        rf"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ogiri-[a-z0-9-]+-label-(pre|acs)",
        re.escape(resolved.physical["AlertTopic"]["Ref"]),
    ]


def test_every_scoped_resource_is_this_stacks_bucket_table_or_ogiri_resource(resolved):
    scopes = [re.compile(p) for p in _allowed_scopes(resolved)]
    for s in all_policy_statements(resolved.resources):
        if s.effect != "Allow":
            continue  # the TLS deny covers the whole bucket on purpose (checked above)
        for r in s.resources:
            if r == "*":
                continue
            assert any(p.fullmatch(r) for p in scopes), (
                f"{s.owner}: resource {r} is outside the stack's scope"
            )


def test_every_action_is_granted_on_a_resource_type_it_supports(resolved):
    """Cross-check against the IAM reference data shipped with cfn-lint (no network)."""
    import cfnlint.data.AdditionalSpecs as specs

    ref = json.loads((Path(specs.__file__).parent / "Policies.json").read_text())

    def arn_regexes(service: str, action: str) -> list[re.Pattern]:
        svc = ref[service]
        out = []
        for rtype in svc["Actions"][action.lower()].get("Resources", []):
            for fmt in svc["Resources"][rtype]["ARNFormats"]:
                fmt = (
                    fmt.replace("${Partition}", "aws")
                    .replace("${Region}", "[^:]*")
                    .replace("${Account}", "[^:]*")
                )
                out.append(re.compile(fmt))
        return out

    for s in all_policy_statements(resolved.resources):
        if s.effect != "Allow" or s.resources == ("*",):
            continue
        for action in s.actions:
            service, name = action.split(":")
            patterns = arn_regexes(service, name)
            assert patterns, f"{s.owner}: {action} has no resource types, so it needs Resource '*'"
            assert any(p.fullmatch(r) for p in patterns for r in s.resources), (
                f"{s.owner}: none of {s.resources} is a resource type {action} is authorized on"
            )


def test_pass_role_only_for_the_sagemaker_role_and_only_to_sagemaker(resolved):
    sm_roles = {resolved.physical[r]["Arn"] for r in ("SageMakerExecutionRole", "LabelingRole")}
    grants = [s for s in all_policy_statements(resolved.resources) if s.effect == "Allow"]
    iam_actions = [(s.owner, a) for s in grants for a in s.actions if a.lower().startswith(("iam:", "sts:"))]
    assert {a for _, a in iam_actions} == {"iam:PassRole"}, iam_actions
    for s in grants:
        if "iam:PassRole" in s.actions:
            assert s.actions == ("iam:PassRole",)
            assert len(s.resources) == 1 and s.resources[0] in sm_roles
            assert s.condition == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_role_trust_policies(resolved):
    res = resolved.resources
    sm_trust = res["SageMakerExecutionRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in sm_trust] == [{"Service": "sagemaker.amazonaws.com"}]
    assert sm_trust[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    worker_trust = res["WorkerRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in worker_trust] == [{"Service": "ecs-tasks.amazonaws.com"}]
    ec2 = resolve_template(load_template(), {**PARAMS, "WorkerTrustedService": "ec2.amazonaws.com"})
    assert ec2.resources["WorkerRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0][
        "Principal"
    ] == {"Service": "ec2.amazonaws.com"}


# ---------------------------------------------------------------- least privilege (behaviour)


def _s3(key: str = "") -> str:
    return f"arn:aws:s3:::{BUCKET}" + (f"/{key}" if key else "")


def _sm(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name}"


def test_worker_can_do_what_the_dags_do(roles, resolved):
    """Every key below is built by the product's own key functions (or its uploader), not typed here."""
    from ogiri.batch.layout import captions_key, request_file_key, summary_key, transform_job_name
    from ogiri.catalog import image_s3_key
    from ogiri.config import Settings
    from ogiri.ingest.accounting import rejects_key
    from ogiri.ingest.plan import landing_prefix, run_name
    from ogiri.train.configs import RunNames, evaluation_report_uri, model_package_group
    from ogiri.train.datasets import DATASETS_PREFIX, FROZEN_TEST_DIR, LATEST_POINTER

    worker = roles["WorkerRole"]
    run_key = "ogiri_train:2024-05-01T00:00:00+00:00"
    names = RunNames.for_run(run_key)
    settings = Settings()
    table_arn = resolved.physical["CaptionTable"]["Arn"]
    sm_role = resolved.physical["SageMakerExecutionRole"]["Arn"]
    ingest_run = run_name("ogiri_ingest:2024-05-01")
    evaluation_key = evaluation_report_uri(settings, names).split("/", 3)[3]
    needed = [
        ("s3:GetObject", _s3(landing_prefix("2024-05-01") + "rows.csv")),
        ("s3:ListBucket", _s3()),
        ("s3:PutObject", _s3(image_s3_key("ab" * 32))),
        ("s3:PutObject", _s3(rejects_key("2024-05-01", ingest_run))),
        ("s3:PutObject", _s3(f"{DATASETS_PREFIX}/v1/train.jsonl")),
        ("s3:PutObject", _s3(f"{FROZEN_TEST_DIR}/test.jsonl")),
        ("s3:PutObject", _s3(LATEST_POINTER)),
        *[("s3:PutObject", _s3(key)) for key in _source_upload_keys()],
        ("s3:GetObject", _s3(evaluation_key)),
        ("s3:PutObject", _s3(captions_key("ogiri_batch_caption:x"))),
        ("s3:PutObject", _s3(summary_key("ogiri_batch_caption:x"))),
        ("s3:PutObject", _s3(request_file_key("ogiri_batch_caption:x", "set-000", 0))),
        ("s3:DeleteObject", _s3(request_file_key("ogiri_batch_caption:x", "set-000", 0))),
        ("dynamodb:BatchWriteItem", table_arn),
        ("dynamodb:Query", f"{table_arn}/index/IngestDateIndex"),
        ("dynamodb:Scan", table_arn),
        ("rekognition:DetectLabels", "*"),
        ("sagemaker:CreateTrainingJob", _sm("training-job", names.training_job)),
        ("sagemaker:AddTags", _sm("training-job", names.training_job)),
        ("sagemaker:CreateTrainingJob", _sm("training-job", names.candidate_job(1))),
        ("sagemaker:CreateHyperParameterTuningJob", _sm("hyper-parameter-tuning-job", names.tuning_job)),
        ("sagemaker:AddTags", _sm("hyper-parameter-tuning-job", names.tuning_job)),
        ("sagemaker:DescribeHyperParameterTuningJob", _sm("hyper-parameter-tuning-job", names.tuning_job)),
        ("sagemaker:ListTrainingJobsForHyperParameterTuningJob", _sm("hyper-parameter-tuning-job", names.tuning_job)),
        ("sagemaker:StopHyperParameterTuningJob", _sm("hyper-parameter-tuning-job", names.tuning_job)),
        ("sagemaker:DescribeTrainingJob", _sm("training-job", f"{names.tuning_job}-001-0123abcd")),
        ("sagemaker:DescribeProcessingJob", _sm("processing-job", names.evaluation_job)),
        ("sagemaker:CreateModel", _sm("model", names.model)),
        ("sagemaker:CreateEndpointConfig", _sm("endpoint-config", names.endpoint_config)),
        ("sagemaker:UpdateEndpoint", _sm("endpoint", settings.endpoint_name)),
        ("sagemaker:InvokeEndpoint", _sm("endpoint", settings.endpoint_name)),
        (
            "sagemaker:CreateTransformJob",
            _sm("transform-job", transform_job_name("ogiri_batch_caption:x", "set-000")),
        ),
        ("sagemaker:CreateModelPackageGroup", _sm("model-package-group", model_package_group(settings))),
        ("sagemaker:CreateModelPackage", _sm("model-package", f"{model_package_group(settings)}/1")),
        (
            "logs:GetLogEvents",
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs:log-stream:"
            f"{names.training_job}/algo-1-1700000000",
        ),
    ]
    from ogiri.train.guardrails import alarm_name

    for kind in ("5xx-rate", "p99-latency"):
        alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm_name(settings.endpoint_name, 'AllTraffic', kind)}"
        needed += [("cloudwatch:PutMetricAlarm", alarm), ("cloudwatch:DescribeAlarms", alarm)]
        assert is_allowed(roles["SageMakerExecutionRole"], "cloudwatch:DescribeAlarms", alarm)
    for action, resource in needed:
        assert is_allowed(worker, action, resource), f"worker cannot {action} on {resource}"
    assert is_allowed(worker, "iam:PassRole", sm_role, {"iam:PassedToService": "sagemaker.amazonaws.com"})
    other = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:billing-alarm"
    assert not is_allowed(worker, "cloudwatch:PutMetricAlarm", other)
    assert not is_allowed(worker, "cloudwatch:DeleteAlarms", alarm)


def _source_upload_keys() -> list[str]:
    """The keys ``package_code`` writes, from the uploader itself (a client that records them)."""
    from botocore.exceptions import ClientError

    from ogiri.source import upload_source

    class Recorder:
        keys: list[str] = []

        def head_object(self, **_):
            raise ClientError({"Error": {"Code": "404"}}, "HeadObject")

        def put_object(self, *, Key, **_):  # noqa: N803 - boto3's parameter name
            self.keys.append(Key)

        def upload_fileobj(self, _body, _bucket, key, **_):
            self.keys.append(key)

    recorder = Recorder()
    upload_source(recorder, BUCKET, Path(__file__).resolve().parents[2] / "include" / "training")
    assert recorder.keys, "the uploader wrote nothing"
    return recorder.keys


def test_worker_may_stage_read_and_delete_the_chunks_the_ingest_code_names(roles):
    """Keys built by the ingest code itself: every ``ogiri_ingest`` run stages its chunks there."""
    from ogiri.ingest.plan import run_name, staging_prefix
    from ogiri.ingest.tasks import result_key

    worker = roles["WorkerRole"]
    chunk = staging_prefix("2024-05-01", run_name("ogiri_ingest:2024-05-01")) + "chunk-00000.jsonl"
    for key in (chunk, result_key(chunk)):
        for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject"):
            assert is_allowed(worker, action, _s3(key)), f"worker cannot {action} on {key}"


def test_producer_lands_csvs_and_can_do_nothing_else(roles, resolved):
    from ogiri.ingest.plan import landing_prefix

    producer = roles["ProducerPolicy"]
    assert is_allowed(producer, "s3:PutObject", _s3(landing_prefix("2024-05-01") + "rows.csv"))
    for action, resource in [
        ("s3:PutObject", _s3("images/ab/x.jpg")),
        ("s3:PutObject", _s3("staging/ingest/x")),
        ("s3:GetObject", _s3("landing/dt=2024-05-01/rows.csv")),
        ("s3:DeleteObject", _s3("landing/dt=2024-05-01/rows.csv")),
        ("dynamodb:PutItem", resolved.physical["CaptionTable"]["Arn"]),
    ]:
        assert not is_allowed(producer, action, resource), f"producer may {action} on {resource}"


def test_worker_is_denied_everything_next_to_its_job(roles, resolved):
    worker = roles["WorkerRole"]
    table_arn = resolved.physical["CaptionTable"]["Arn"]
    sm_role = resolved.physical["SageMakerExecutionRole"]["Arn"]
    denied = [
        ("s3:PutObject", _s3("landing/dt=2024-05-01/rows.csv")),  # producers land CSVs, not Airflow
        ("s3:PutObject", _s3("models/ogiri-train-x/output/model.tar.gz")),  # only SageMaker writes models
        ("s3:DeleteObject", _s3("images/ab/abc.jpg")),
        ("s3:GetObject", "arn:aws:s3:::someone-elses-bucket/landing/x.csv"),
        ("s3:PutBucketPolicy", _s3()),
        ("dynamodb:DeleteTable", table_arn),
        ("dynamodb:Query", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/other-table"),
        ("sagemaker:CreateTrainingJob", _sm("training-job", "other-team-job")),
        ("sagemaker:DeleteEndpoint", _sm("endpoint", "prod-search")),
        ("sagemaker:CreateHyperParameterTuningJob", _sm("hyper-parameter-tuning-job", "other-team-hpo")),
        ("sagemaker:DeleteHyperParameterTuningJob", _sm("hyper-parameter-tuning-job", "ogiri-hpo-x")),
        ("sagemaker:CreateTrainingJob", f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:training-job/ogiri-train-x"),
        ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/x"),
    ]
    for action, resource in denied:
        assert not is_allowed(worker, action, resource), f"worker may {action} on {resource}"
    worker_role = resolved.physical["WorkerRole"]["Arn"]
    for role, service in [(sm_role, "ec2.amazonaws.com"), (worker_role, "sagemaker.amazonaws.com")]:
        assert not is_allowed(worker, "iam:PassRole", role, {"iam:PassedToService": service})
    assert not is_allowed(worker, "rekognition:DetectLabels", "*", {"aws:RequestedRegion": "eu-west-1"})


def test_sagemaker_role_reads_inputs_and_writes_only_outputs(roles, resolved):
    sm = roles["SageMakerExecutionRole"]
    for key in [
        "images/ab/x.jpg",
        "datasets/v1/train.jsonl",
        "code/h/sourcedir.tar.gz",
        "models/ogiri-train-x/output/model.tar.gz",
        "checkpoints/ogiri-train-x/ckpt.pt",
        "batch/run/input/set-000/part-00000.jsonl",
    ]:
        assert is_allowed(sm, "s3:GetObject", _s3(key)), key
    for key in [
        "models/ogiri-train-x/output/model.tar.gz",
        "checkpoints/ogiri-train-x/ckpt.pt",
        "evaluations/ogiri-train-x/evaluation.json",
        "batch/run/output/set-000/part-00000.jsonl.out",
    ]:
        assert is_allowed(sm, "s3:PutObject", _s3(key)), key
    for key in ["landing/dt=2024-05-01/rows.csv", "images/ab/x.jpg", "datasets/v1/train.jsonl", "code/h/x"]:
        assert not is_allowed(sm, "s3:PutObject", _s3(key)), key
    assert not is_allowed(sm, "s3:GetObject", _s3("landing/dt=2024-05-01/rows.csv"))
    capture = "capture/ogiri-captioner/AllTraffic/2026/12/07/15/00-01-002-x.jsonl"  # issue 14: data capture
    assert is_allowed(sm, "s3:PutObject", _s3(capture))
    # ... and ogiri_monitor's Processing job (same role) reads it and writes the window's report.
    assert is_allowed(sm, "s3:GetObject", _s3(capture))
    assert is_allowed(sm, "s3:PutObject", _s3("monitoring/ogiri-captioner/2026-12-07T15/report.json"))
    assert not is_allowed(sm, "s3:GetObject", _s3("monitoring/ogiri-captioner/2026-12-07T15/report.json"))
    assert not is_allowed(sm, "dynamodb:Scan", resolved.physical["CaptionTable"]["Arn"])
    assert is_allowed(
        sm, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
    )
    assert not is_allowed(sm, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "Billing"})
    dlc = resolved.params["DlcRegistryAccountId"]
    assert is_allowed(sm, "ecr:BatchGetImage", f"arn:aws:ecr:{REGION}:{dlc}:repository/pytorch-training")
    assert not is_allowed(sm, "ecr:BatchGetImage", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/anything")


def test_plain_http_is_denied_even_where_allowed(roles, resolved):
    bucket_policy = [s for s in all_policy_statements(resolved.resources) if s.owner == "DataBucketPolicy"]
    worker = roles["WorkerRole"] + bucket_policy
    key = _s3("images/ab/x.jpg")
    assert is_allowed(worker, "s3:GetObject", key)
    assert not is_allowed(worker, "s3:GetObject", key, {"aws:SecureTransport": "false"})


# ---------------------------------------------------------------- storage


def test_bucket_is_versioned_encrypted_private_and_expires_rejects(template, resolved):
    bucket = resolved.resources["DataBucket"]
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    assert props["BucketName"] == BUCKET
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    rules = {r.get("Prefix"): r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["rejects/"]["ExpirationInDays"] == resolved.params["RejectsRetentionDays"] == "90"
    assert all(r["Status"] == "Enabled" for r in rules.values())
    assert resolved.resources["DataBucketPolicy"]["Properties"]["Bucket"] == BUCKET


def test_default_bucket_name_is_unique_per_account_and_region(template):
    resolved = resolve_template(template, {"EnvironmentName": "dev"})
    assert resolved.resources["DataBucket"]["Properties"]["BucketName"] == f"ogiri-dev-{ACCOUNT}-{REGION}"


def test_table_matches_what_the_ingestion_code_writes(resolved):
    from ogiri.provision import table_definition

    props = resolved.resources["CaptionTable"]["Properties"]
    expected = table_definition(props["TableName"])
    assert props["KeySchema"] == expected["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(expected["AttributeDefinitions"], key=str)
    assert props["GlobalSecondaryIndexes"] == expected["GlobalSecondaryIndexes"]
    assert props["BillingMode"] == expected["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    index_name = expected["GlobalSecondaryIndexes"][0]["IndexName"]
    assert resolved.outputs["OgiriTableIngestDateIndex"] == index_name


def test_outputs_feed_every_ogiri_setting(resolved, monkeypatch):
    sys.path.insert(0, str(TEMPLATE_PATH.parent))
    try:
        from deploy_stack import OUTPUT_TO_SETTING, ogiri_settings
    finally:
        sys.path.remove(str(TEMPLATE_PATH.parent))
    from ogiri.config import get_settings

    assert set(OUTPUT_TO_SETTING) <= set(resolved.outputs)
    env = ogiri_settings(resolved.outputs)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = get_settings()
    assert settings.bucket == BUCKET
    assert settings.table == PARAMS["TableName"]
    assert settings.region == REGION
    assert settings.sagemaker_role_arn == resolved.physical["SageMakerExecutionRole"]["Arn"]
    assert resolved.outputs["WorkerPolicyArn"] == f"arn:aws:iam::{ACCOUNT}:policy/ogiri-test-airflow-worker"
    assert settings.alert_topic_arn == f"arn:aws:sns:{REGION}:{ACCOUNT}:ogiri-test-alerts"


def test_policies_fit_iam_size_limits_even_with_the_longest_names(template):
    """IAM rejects managed policies over 6,144 and a role's inline policies over 10,240 characters
    (whitespace excluded); neither cfn-lint nor the emulator checks this."""
    longest = {"EnvironmentName": "e" * 12, "BucketName": "b" * 63, "TableName": "t" * 255}
    res = resolve_template(template, longest).resources

    def size(doc) -> int:
        return len(re.sub(r"\s", "", json.dumps(doc)))

    assert size(res["WorkerPolicy"]["Properties"]["PolicyDocument"]) <= 6144
    inline = res["SageMakerExecutionRole"]["Properties"]["Policies"]
    assert sum(size(p["PolicyDocument"]) for p in inline) <= 10240


def test_the_lambdas_ship_the_code_in_include_labeling(template):
    """The template embeds include/labeling/*.py (inline ZipFile, within its 4,096 characters); after
    editing a handler, run python infra/embed_lambdas.py."""
    res = template["Resources"]
    for logical, name in [("PreAnnotationFunction", "pre_annotation.py"), ("ConsolidationFunction", "consolidation.py")]:
        code = res[logical]["Properties"]["Code"]["ZipFile"]
        assert code == (TEMPLATE_PATH.parents[1] / "include" / "labeling" / name).read_text(encoding="utf-8")
        assert len(code) <= 4096
        assert res[logical]["Properties"]["Handler"] == "index.handler"


def test_labeling_role_reads_inputs_writes_output_and_invokes_only_our_lambdas(roles, resolved):
    role = roles["LabelingRole"]
    pre, acs = (resolved.physical[f]["Arn"] for f in ("PreAnnotationFunction", "ConsolidationFunction"))
    assert is_allowed(role, "s3:GetObject", _s3("labeling/ogiri-label-x/input.manifest"))
    assert is_allowed(role, "s3:GetObject", _s3("images/ab/abc.jpg"))
    assert is_allowed(role, "s3:PutObject", _s3("labeling/ogiri-label-x/output/ogiri-label-x/manifests/o.manifest"))
    assert not is_allowed(role, "s3:PutObject", _s3("labeling/ogiri-label-x/input.manifest"))
    assert not is_allowed(role, "s3:GetObject", _s3("datasets/v1/train.jsonl"))
    assert is_allowed(role, "lambda:InvokeFunction", pre) and is_allowed(role, "lambda:InvokeFunction", acs)
    assert not is_allowed(role, "lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other")
    worker = roles["WorkerRole"]
    assert is_allowed(worker, "sagemaker:CreateLabelingJob", _sm("labeling-job", "ogiri-label-x"))
    assert not is_allowed(worker, "sagemaker:CreateLabelingJob", _sm("labeling-job", "other-team"))
    assert is_allowed(worker, "iam:PassRole", resolved.physical["LabelingRole"]["Arn"],
                      {"iam:PassedToService": "sagemaker.amazonaws.com"})
