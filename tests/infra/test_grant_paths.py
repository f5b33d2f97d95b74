"""Every action the template grants has a code path that calls it, found in the code itself.

Per principal, the code that acts as it:

* the Airflow worker: the product (``plugins/ogiri``, ``dags``), the Amazon provider's SageMaker
  hook, operators and triggers that our operators subclass, and the provider's S3 sensor and SNS
  operator (and their hooks) that ``ogiri_monitor`` uses;
* the SageMaker execution role: what SageMaker itself does as the role (the emulator's model of it,
  ``localaws/sagemaker``) and the job code (``include/training``);
* the producer: the local producer (``ogiri_local/environment.py``).

An action ``service:OpName`` is called where its client method ``op_name`` (or a paginator of it)
appears; actions that ride on another call (``iam:PassRole`` with ``RoleArn``, ``sagemaker:AddTags``
with ``Tags`` on Create*) are found by what triggers them. The few grants kept for callers outside
this repository are listed in ``KEPT`` with the reason; a grant with neither fails this test, so a
surplus grant cannot be added silently. (That the calls are *allowed* is proven at run time: the
DAG runs under IAM enforcement as these principals, and ``make demo`` prints 0 denied.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from infra_policy import identity_policies, load_template, resolve_template

REPO = Path(__file__).resolve().parents[2]
PARAMS = {"EnvironmentName": "test", "BucketName": "ogiri-mlops-test", "TableName": "ogiri-captions-test"}


def _provider(*relative: str) -> list[Path]:
    import airflow.providers.amazon.aws as aws

    base = Path(aws.__file__).parent
    return [base / r for r in relative]


SOURCES = {
    "WorkerRole": lambda: [
        *sorted((REPO / "plugins" / "ogiri").rglob("*.py")),
        *sorted((REPO / "dags").glob("*.py")),
        *_provider("hooks/sagemaker.py", "operators/sagemaker.py", "triggers/sagemaker.py"),
        *_provider("sensors/s3.py", "operators/sns.py", "hooks/sns.py"),
    ],
    "SageMakerExecutionRole": lambda: [
        *sorted((REPO / "localaws" / "sagemaker").glob("*.py")),
        *sorted((REPO / "include" / "training").rglob("*.py")),
    ],
    "ProducerPolicy": lambda: [REPO / "ogiri_local" / "environment.py"],
    # ogiri_label: Ground Truth acts as the labeling role (the emulator's model of it), the
    # consolidation Lambda reads the answers' payload as its own role.
    "LabelingRole": lambda: sorted((REPO / "localaws").rglob("*.py")),
    "ConsolidationFunctionRole": lambda: [REPO / "include" / "labeling" / "consolidation.py"],
}

#: Actions authorized on another call: the code words that trigger them.
RIDES_ON = {
    "iam:PassRole": ('"RoleArn"', '"ExecutionRoleArn"'),
    "sagemaker:AddTags": ('"Tags":',),
    "s3:ListBucket": ("list_objects_v2", "head_bucket"),
    "s3:GetObject": ("get_object", "head_object", "download_file", "download_fileobj"),
    "s3:PutObject": ("put_object", "upload_file", "upload_fileobj"),
    "s3:DeleteObject": ("delete_object",),  # delete_objects too
    "s3:AbortMultipartUpload": ("upload_file", "upload_fileobj"),  # s3transfer aborts a failed multipart upload
    # Ground Truth (the labeling role) invokes the Lambdas the job names.
    "lambda:InvokeFunction": ("PreHumanTaskLambdaArn", "AnnotationConsolidationLambdaArn"),
}

#: Grants whose caller is outside this repository, with the reason.
KEPT = {
    ("ProducerPolicy", "s3:AbortMultipartUpload"):
        "producers land CSVs with their own tools (aws s3 cp, boto3 upload_file), which send a large file in "
        "parts and abort a failed upload",
}


def _snake(op: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower()


def evidence(action: str, text: str) -> bool:
    """Whether ``text`` (the principal's code) calls ``action``."""
    if action in RIDES_ON:
        return any(word in text for word in RIDES_ON[action])
    method = _snake(action.split(":", 1)[1])
    return bool(re.search(rf"\b{method}\b", text)) or action in text


@pytest.fixture(scope="module")
def grants() -> dict[str, set[str]]:
    resolved = resolve_template(load_template(), PARAMS)
    return {
        principal: {a for st in statements if st.effect == "Allow" for a in st.actions}
        for principal, statements in identity_policies(resolved.resources).items()
        if principal in SOURCES
    }


def test_every_principal_of_the_template_is_covered(grants):
    assert set(grants) == set(SOURCES)


@pytest.mark.parametrize("principal", sorted(SOURCES))
def test_every_granted_action_has_a_code_path(grants, principal):
    text = "\n".join(p.read_text(encoding="utf-8") for p in SOURCES[principal]())
    missing = sorted(a for a in grants[principal] if (principal, a) not in KEPT and not evidence(a, text))
    assert not missing, f"{principal} is granted actions no code path calls: {missing}"


def test_kept_grants_are_still_granted_and_really_have_no_code_path(grants):
    for (principal, action), reason in KEPT.items():
        assert reason
        assert action in grants[principal], f"KEPT names {action} for {principal}, which is no longer granted"
        text = "\n".join(p.read_text(encoding="utf-8") for p in SOURCES[principal]())
        assert not evidence(action, text), f"{action} has a code path now: drop it from KEPT"


def test_a_surplus_grant_is_caught():
    """The check itself: an action nobody calls has no evidence, one we call has."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in SOURCES["WorkerRole"]())
    assert not evidence("dynamodb:PutItem", text)
    assert not evidence("sagemaker:UpdateModelPackage", text)
    assert not evidence("logs:FilterLogEvents", text)
    assert evidence("sagemaker:StopTrainingJob", text)
    assert evidence("dynamodb:Scan", text)  # a paginator: get_paginator("scan")
