"""Ground Truth labeling jobs in the emulator (IAM enforced): validation, lifecycle, the Lambdas
really running, the simulated workforce (noise, abandonment), the output layout, stop, and IAM."""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from gt_helpers import (  # noqa: E402
    ACCOUNT,
    BUCKET,
    LAMBDA_TRUST,
    POST,
    PRE,
    REGION,
    WORKTEAM,
    images,
    keys,
    make_function,
    read_json,
    request,
    upload_inputs,
)
from iam_helpers import allow, role_with, user_with  # noqa: E402
from sm_helpers import SAGEMAKER_TRUST, poll  # noqa: E402

WORKER_ID = re.compile(r"^private\.us-east-1\.[0-9a-f]{16}$")


def _role_statements(pre: str, post: str, without: str | None = None) -> list[dict]:
    grants = {
        "s3": allow(["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                    [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]),
        "logs": allow(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                       "logs:DescribeLogStreams"], "*"),
        "lambda": allow("lambda:InvokeFunction", [pre, post]),
    }
    return [statement for name, statement in grants.items() if name != without]


@pytest.fixture
def gt(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    fn_role = role_with(aws, "gt-lambda", LAMBDA_TRUST, allow("s3:GetObject", f"arn:aws:s3:::{BUCKET}/*"))
    pre = make_function(aws, "gt-pre", PRE, fn_role)
    post = make_function(aws, "gt-post", POST, fn_role)
    role = role_with(aws, "gt-labeling", SAGEMAKER_TRUST, *_role_statements(pre, post))
    return aws, s3, aws.client("sagemaker"), pre, post, role


def _run(sm, req):
    sm.create_labeling_job(**req)
    return poll(lambda: sm.describe_labeling_job(LabelingJobName=req["LabelingJobName"]), "LabelingJobStatus")


def _manifest(s3, desc) -> list[dict]:
    return [json.loads(line) for line in read_json(s3, desc["LabelingJobOutput"]["OutputDatasetS3Uri"]).splitlines()]


def _lines(refs, **extra):
    return [{"source-ref": ref, "caption": f"caption {i}", **extra} for i, ref in enumerate(refs)]


def test_create_validates_as_sagemaker_does(gt):
    aws, s3, _, pre, post, role = gt
    raw = aws.client("sagemaker", config=Config(parameter_validation=False))
    base = upload_inputs(s3, _lines(images(s3, 1)))
    req = request("bad_name", base, role, pre, post)
    del req["HumanTaskConfig"]["TaskTitle"]
    with pytest.raises(ClientError) as err:
        raw.create_labeling_job(**req)
    message = err.value.response["Error"]["Message"]
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert message.startswith("2 validation errors detected: ")
    assert "Value 'bad_name' at 'labelingJobName' failed to satisfy constraint: Member must satisfy regular " \
           "expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}" in message
    assert "Value null at 'humanTaskConfig.taskTitle' failed to satisfy constraint: Member must not be null" in message
    for attribute, words in (("rating-metadata", '-metadata"'), ("rating-ref", '-ref"')):
        with pytest.raises(ClientError, match=words):
            raw.create_labeling_job(**{**request("ok", base, role, pre, post), "LabelAttributeName": attribute})
    no_task = {k: v for k, v in request("ok", base, role, pre, post).items() if k != "HumanTaskConfig"}
    with pytest.raises(ClientError) as err:
        raw.create_labeling_job(**no_task)
    assert err.value.response["Error"]["Message"] == "1 validation error detected: Value null at 'humanTaskConfig' " \
        "failed to satisfy constraint: Member must not be null"
    other_team = {**request("ok", base, role, pre, post)}
    other_team["HumanTaskConfig"]["WorkteamArn"] = f"arn:aws:sagemaker:{REGION}:999999999999:workteam/private-crowd/x"
    with pytest.raises(ClientError, match="does not exist"):
        raw.create_labeling_job(**other_team)


def test_unknown_job_and_name_collision(gt):
    aws, s3, sm, pre, post, role = gt
    for call in (sm.describe_labeling_job, sm.stop_labeling_job):
        with pytest.raises(ClientError) as err:
            call(LabelingJobName="nope")
        assert err.value.response["Error"]["Code"] == "ValidationException"
        assert err.value.response["Error"]["Message"] == "Could not find requested job with name nope"
    base = upload_inputs(s3, _lines(images(s3, 1)))
    desc, _ = _run(sm, request("rate-once", base, role, pre, post))
    with pytest.raises(ClientError) as err:
        sm.create_labeling_job(**request("Rate-Once", base, role, pre, post))
    assert err.value.response["Error"]["Code"] == "ResourceInUse"
    assert f"a labeling job with this name already exists ({desc['LabelingJobArn']})" in \
        err.value.response["Error"]["Message"]


def test_job_completes_with_lambdas_workers_and_ground_truth_layout(gt):
    aws, s3, sm, pre, post, role = gt
    refs = images(s3, 3)
    lines = _lines(refs[:2]) + [{"source-ref": refs[2], "task": "caption"}]
    base = upload_inputs(s3, lines)
    desc, seen = _run(sm, request("rate-three", base, role, pre, post))
    assert desc["LabelingJobStatus"] == "Completed", desc.get("FailureReason")
    assert seen[-2:] == ["InProgress", "Completed"]
    assert desc["LabelCounters"] == {"TotalLabeled": 3, "HumanLabeled": 3, "MachineLabeled": 0,
                                     "FailedNonRetryableError": 0, "Unlabeled": 0}
    assert desc["LabelingJobOutput"]["OutputDatasetS3Uri"] == \
        f"{base}/output/rate-three/manifests/output/output.manifest"
    assert desc["JobReferenceCode"].startswith(ACCOUNT)
    out = _manifest(s3, desc)
    assert [line["source-ref"] for line in out] == refs
    for line in out:
        meta = line["rating-metadata"]
        assert meta["job-name"] == "labeling-job/rate-three" and meta["type"] == "groundtruth/custom"
        assert meta["human-annotated"] == "yes" and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", meta["creation-date"])
        label = line["rating"]
        assert len(label["workers"]) == 3 == len(set(label["workers"]))
        assert all(WORKER_ID.match(w) for w in label["workers"])
        assert len({json.dumps(a, sort_keys=True) for a in label["answers"]}) == 1  # no noise: all agree
    for answer in out[0]["rating"]["answers"] + out[1]["rating"]["answers"]:
        assert set(answer) == {"fit", "humour"} and all(1 <= v <= 5 for v in answer.values())
    assert set(out[2]["rating"]["answers"][0]) == {"caption"} and out[2]["rating"]["answers"][0]["caption"]
    prefix = "labeling/job/output/rate-three/annotations/"
    responses = keys(s3, prefix + "worker-response/iteration-1/")
    assert sorted({k.split("/")[-2] for k in responses}) == ["0", "1", "2"]
    worker = json.loads(read_json(s3, f"s3://{BUCKET}/{responses[0]}"))["answers"][0]
    assert {"acceptanceTime", "submissionTime", "timeSpentInSeconds", "answerContent", "workerId",
            "workerMetadata"} <= set(worker) and worker["submissionTime"] > worker["acceptanceTime"]
    assert keys(s3, prefix + "consolidated-annotation/consolidation-request/iteration-1/")
    assert keys(s3, prefix + "consolidated-annotation/consolidation-response/iteration-1/")
    logs = aws.client("logs").filter_log_events(logGroupName="/aws/lambda/gt-pre")["events"]
    assert any("pre-annotation for" in e["message"] for e in logs)
    assert [j["LabelingJobName"] for j in sm.list_labeling_jobs()["LabelingJobSummaryList"]] == ["rate-three"]
    team = sm.list_labeling_jobs_for_workteam(WorkteamArn=WORKTEAM)["LabelingJobSummaryList"]
    assert [(j["LabelingJobName"], j["LabelCounters"]) for j in team] == [
        ("rate-three", {"HumanLabeled": 3, "PendingHuman": 0, "Total": 3})]
    with urllib.request.urlopen(f"{aws.url}/_localaws/sagemaker/labeling/rate-three", timeout=10) as r:
        page = r.read().decode()
    assert "<strong>Completed</strong>" in page and "3 data objects" in page


def test_a_raising_lambda_fails_its_object_and_the_job_completes(gt):
    aws, s3, sm, pre, post, role = gt
    refs = images(s3, 2)
    base = upload_inputs(s3, [{"source-ref": refs[0], "caption": "a"}, {"source-ref": refs[1], "explode": True}])
    desc, _ = _run(sm, request("one-fails", base, role, pre, post))
    assert desc["LabelingJobStatus"] == "Completed"
    assert desc["LabelCounters"]["TotalLabeled"] == 1 and desc["LabelCounters"]["FailedNonRetryableError"] == 1
    failed = _manifest(s3, desc)[1]
    assert "rating" not in failed
    assert "ValueError: this object cannot be pre-annotated" in failed["rating-metadata"]["failure-reason"]


def test_noise_gives_disagreement_and_abandonment_expires_objects(gt):
    aws, s3, sm, pre, post, role = gt
    base = upload_inputs(s3, _lines(images(s3, 4)))
    aws.workforce(labeling_job="noisy", noise=0.7, seed=3)
    aws.workforce(labeling_job="abandoned", abandonment=1.0)
    noisy, _ = _run(sm, request("noisy", base, role, pre, post))
    assert noisy["LabelCounters"]["TotalLabeled"] == 4
    assert any(len({json.dumps(a, sort_keys=True) for a in line["rating"]["answers"]}) > 1
               for line in _manifest(s3, noisy))
    expired, _ = _run(sm, request("abandoned", base, role, pre, post))
    assert expired["LabelingJobStatus"] == "Completed"
    assert expired["LabelCounters"] == {"TotalLabeled": 0, "HumanLabeled": 0, "MachineLabeled": 0,
                                        "FailedNonRetryableError": 4, "Unlabeled": 0}
    assert all("expired" in line["rating-metadata"]["failure-reason"] and "rating" not in line
               for line in _manifest(s3, expired))


def test_stop_keeps_what_was_labeled(gt):
    aws, s3, sm, pre, post, role = gt
    base = upload_inputs(s3, _lines(images(s3, 5) * 3))
    aws.workforce(labeling_job="stopped", pace_seconds=1.0)
    sm.create_labeling_job(**request("stopped", base, role, pre, post))
    poll(lambda: {**(d := sm.describe_labeling_job(LabelingJobName="stopped")),
                  "Started": "yes" if d["LabelCounters"]["TotalLabeled"] else "no"}, "Started", until={"yes"})
    sm.stop_labeling_job(LabelingJobName="stopped")
    desc, _ = poll(lambda: sm.describe_labeling_job(LabelingJobName="stopped"), "LabelingJobStatus")
    assert desc["LabelingJobStatus"] == "Stopped"
    counters = desc["LabelCounters"]
    assert counters["TotalLabeled"] >= 1 and counters["Unlabeled"] >= 1
    assert counters["TotalLabeled"] + counters["FailedNonRetryableError"] + counters["Unlabeled"] == 15
    assert sum(1 for line in _manifest(s3, desc) if "rating" in line) == counters["TotalLabeled"]
    with pytest.raises(ClientError, match="in status Stopped"):
        sm.stop_labeling_job(LabelingJobName="stopped")


@pytest.mark.parametrize("without, words", [
    ("lambda", "is not authorized to perform: lambda:InvokeFunction"),
    ("s3", "ClientError: Could not read the input manifest"),
])
def test_the_job_runs_as_its_role(gt, without, words):
    aws, s3, sm, pre, post, _ = gt
    role = role_with(aws, f"gt-no-{without}", SAGEMAKER_TRUST, *_role_statements(pre, post, without))
    base = upload_inputs(s3, _lines(images(s3, 1)))
    desc, _ = _run(sm, request(f"no-{without}", base, role, pre, post))
    assert desc["LabelingJobStatus"] == "Failed"
    assert words in desc["FailureReason"] and f"assumed-role/gt-no-{without}/SageMaker" in desc["FailureReason"]


def test_caller_needs_create_labeling_job(gt):
    aws, s3, _, pre, post, role = gt
    base = upload_inputs(s3, _lines(images(s3, 1)))
    job_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:labeling-job/by-user"
    denied = user_with(aws, allow("iam:PassRole", role)).client("sagemaker")
    with pytest.raises(ClientError) as err:
        denied.create_labeling_job(**request("by-user", base, role, pre, post))
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"sagemaker:CreateLabelingJob on resource: {job_arn}" in err.value.response["Error"]["Message"]
    granted = user_with(aws, allow("iam:PassRole", role), allow("sagemaker:CreateLabelingJob", job_arn))
    granted.client("sagemaker").create_labeling_job(**request("by-user", base, role, pre, post))


def test_workforce_admin_api_sets_answers_and_refuses_bad_configs(gt):
    aws, s3, sm, pre, post, role = gt
    refs = images(s3, 2)
    base = upload_inputs(s3, _lines(refs))
    exact = [{"fit": 5, "humour": 1}, {"fit": 4, "humour": 2}, {"fit": 3, "humour": 3}]
    aws.workforce(labeling_job="oracle", answers={refs[0]: exact, refs[1]: {"fit": 2, "humour": 5}},
                  fields={"humour": "funny"})
    desc, _ = _run(sm, request("oracle", base, role, pre, post))
    first, second = (line["rating"]["answers"] for line in _manifest(s3, desc))
    assert first == [{"fit": 5, "funny": 1}, {"fit": 4, "funny": 2}, {"fit": 3, "funny": 3}]
    assert second == [{"fit": 2, "funny": 5}] * 3
    with pytest.raises(urllib.error.HTTPError) as err:
        aws.workforce(noise=2)
    assert err.value.code == 400 and "noise must be a number between 0 and 1" in err.value.read().decode()
    with urllib.request.urlopen(f"{aws.url}/_localaws/workforce", timeout=10) as r:
        assert set(json.load(r)["configs"]) == {"oracle"}


def test_answers_keyed_by_a_line_attribute_tell_apart_lines_of_one_image(gt):
    """One image in two lines (two captions to rate): ``answers_by`` keys the answers on the line's id;
    a line without an entry still gets the default oracle's answer from the image."""
    aws, s3, sm, pre, post, role = gt
    ref = images(s3, 1)[0]
    lines = [{"source-ref": ref, "caption": c, "line-id": i} for i, c in (("a", "one"), ("b", "two"), ("c", "three"))]
    base = upload_inputs(s3, lines)
    aws.workforce(labeling_job="by-id", answers_by="line-id",
                  answers={"a": {"fit": 5, "humour": 2}, "b": {"fit": 1, "humour": 4}, ref: {"fit": 4, "humour": 4}})
    desc, _ = _run(sm, request("by-id", base, role, pre, post))
    assert desc["LabelCounters"]["TotalLabeled"] == 3, desc.get("FailureReason")
    first, second, third = (line["rating"]["answers"] for line in _manifest(s3, desc))
    assert first == [{"fit": 5, "humour": 2}] * 3 and second == [{"fit": 1, "humour": 4}] * 3
    assert third[0]["fit"] != 4 and {"fit", "humour"} <= set(third[0])  # not keyed by source-ref now
    with pytest.raises(urllib.error.HTTPError) as err:
        aws.workforce(answers_by=3)
    assert err.value.code == 400 and "answers_by must be" in err.value.read().decode()


def test_lambdas_deployed_by_cloudformation_run_and_a_raising_consolidation_fails_objects(gt):
    aws, s3, sm, _, _, _ = gt
    fn_role = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": LAMBDA_TRUST}}
    inline = {
        "Pre": "def handler(event, context):\n    return {'taskInput': {'task': 'caption'}}\n",
        "Post": "def handler(event, context):\n    raise RuntimeError('cannot consolidate')\n",
    }
    template = {"Resources": {"FnRole": fn_role, **{name: {"Type": "AWS::Lambda::Function", "Properties": {
        "FunctionName": f"cfn-{name.lower()}", "Runtime": "python3.12", "Handler": "index.handler",
        "Role": {"Fn::GetAtt": ["FnRole", "Arn"]}, "Code": {"ZipFile": code}}} for name, code in inline.items()}}}
    aws.client("cloudformation").create_stack(StackName="gt-lambdas", TemplateBody=json.dumps(template))
    pre, post = (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:cfn-{n}" for n in ("pre", "post"))
    role = role_with(aws, "gt-cfn", SAGEMAKER_TRUST, *_role_statements(pre, post))
    base = upload_inputs(s3, _lines(images(s3, 2)))
    desc, _ = _run(sm, request("cfn-lambdas", base, role, pre, post))
    assert desc["LabelingJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["LabelCounters"]["FailedNonRetryableError"] == 2
    reasons = [line["rating-metadata"]["failure-reason"] for line in _manifest(s3, desc)]
    assert all(f"annotation consolidation Lambda {post} failed: RuntimeError: cannot consolidate" in r for r in reasons)
    assert keys(s3, "labeling/job/output/cfn-lambdas/annotations/worker-response/iteration-1/")
