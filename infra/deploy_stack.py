"""Deploy ``infra/ogiri.yaml`` with boto3 and print the ``OGIRI_*`` settings from the stack outputs.

Works against real AWS (credentials from the usual chain) and against the local emulator
(``--endpoint-url http://127.0.0.1:5055``). Creates the stack, or updates it when it exists
("no updates" is not an error), waits for it to settle and prints ``export`` lines::

    python infra/deploy_stack.py --stack-name ogiri-dev --param EnvironmentName=dev
    eval "$(python infra/deploy_stack.py --endpoint-url http://127.0.0.1:5055 --stack-name ogiri-local \
        --param EnvironmentName=local --param BucketName=ogiri-mlops)"

Importable too: :func:`deploy` returns the outputs, :func:`ogiri_settings` maps them to env vars.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parent / "ogiri.yaml"

#: Stack output key -> ``OGIRI_*`` setting it provides.
OUTPUT_TO_SETTING = {
    "OgiriBucket": "OGIRI_BUCKET",
    "OgiriTable": "OGIRI_TABLE",
    "OgiriSageMakerRoleArn": "OGIRI_SAGEMAKER_ROLE_ARN",
    "OgiriRegion": "OGIRI_REGION",
    # ogiri_label (Ground Truth)
    "OgiriWorkteamArn": "OGIRI_WORKTEAM_ARN",
    "OgiriLabelingRoleArn": "OGIRI_LABELING_ROLE_ARN",
    "OgiriLabelingPreLambdaArn": "OGIRI_LABELING_PRE_LAMBDA_ARN",
    "OgiriLabelingConsolidationLambdaArn": "OGIRI_LABELING_CONSOLIDATION_LAMBDA_ARN",
    "OgiriAlertTopicArn": "OGIRI_ALERT_TOPIC_ARN",
}

_DONE_OK = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE"})
#: With nothing to update, a stack whose last update was rolled back is in a good, unchanged state.
_UNCHANGED_OK = _DONE_OK | {"UPDATE_ROLLBACK_COMPLETE"}
_IN_PROGRESS_SUFFIX = "_IN_PROGRESS"


class DeployError(RuntimeError):
    """The stack did not reach a complete state."""


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["Key=Value", …]`` -> dict; raises ``ValueError`` naming a malformed pair."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param must look like Key=Value, got {pair!r}")
        params[key.strip()] = value
    return params


def _wait(
    cfn: Any, stack_name: str, timeout_s: float, poll_s: float, ok: frozenset[str] = _DONE_OK
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if not status.endswith(_IN_PROGRESS_SUFFIX):
            if status in ok:
                return stack
            events = cfn.describe_stack_events(StackName=stack_name).get("StackEvents", [])
            reasons = [
                f"{e.get('LogicalResourceId')}: {e.get('ResourceStatusReason')}"
                for e in events
                if e.get("ResourceStatus", "").endswith("FAILED")
            ]
            raise DeployError(
                f"stack {stack_name} ended {status}: " + ("; ".join(reasons) or "no reason given")
            )
        if time.monotonic() > deadline:
            raise DeployError(f"stack {stack_name} still {status} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def deploy(
    stack_name: str,
    params: dict[str, str] | None = None,
    *,
    template_path: str | Path = TEMPLATE,
    endpoint_url: str | None = None,
    region: str | None = None,
    session: Any = None,
    timeout_s: float = 1800,
    poll_s: float = 5,
) -> dict[str, str]:
    """Create or update ``stack_name`` from the template; return its outputs ``{OutputKey: Value}``."""
    import boto3
    from botocore.exceptions import ClientError

    body = Path(template_path).read_text(encoding="utf-8")
    cfn = (session or boto3.session.Session()).client(
        "cloudformation", endpoint_url=endpoint_url, region_name=region
    )
    kwargs = {
        "StackName": stack_name,
        "TemplateBody": body,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in (params or {}).items()],
        "Capabilities": ["CAPABILITY_NAMED_IAM"],
    }
    try:
        cfn.describe_stacks(StackName=stack_name)
        exists = True
    except ClientError as exc:
        if "does not exist" not in str(exc):
            raise
        exists = False
    ok = _DONE_OK
    if exists:
        try:
            cfn.update_stack(**kwargs)
        except ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
            ok = _UNCHANGED_OK
    else:
        cfn.create_stack(**kwargs)
    stack = _wait(cfn, stack_name, timeout_s, poll_s, ok)
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


#: Stack output key of a managed policy -> suffix of the local IAM user that holds only that policy.
LOCAL_PRINCIPALS = {"WorkerPolicyArn": "airflow-worker", "ProducerPolicyArn": "producer"}
#: Further managed policies a local principal holds (outputs), beside its main one.
LOCAL_EXTRA_POLICIES = {"airflow-worker": ("LabelingWorkerPolicyArn",)}


def principal_keys(
    policy_arn: str | Sequence[str],
    user_name: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    session: Any = None,
) -> dict[str, str]:
    """Create (or reuse) IAM user ``user_name`` holding exactly ``policy_arn`` (one ARN or several); return
    a fresh access key.

    For local stacks: on AWS, attach the policy to the role your Airflow workers or producers run as.
    Returns ``{"aws_access_key_id", "aws_secret_access_key"}``.
    """
    import boto3

    iam = (session or boto3.session.Session()).client("iam", endpoint_url=endpoint_url, region_name=region)
    try:
        iam.create_user(UserName=user_name)
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    for arn in [policy_arn] if isinstance(policy_arn, str) else policy_arn:
        iam.attach_user_policy(UserName=user_name, PolicyArn=arn)
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def local_principals(outputs: dict[str, str], stack_name: str, **client_kwargs: Any) -> dict[str, dict]:
    """Keys for the worker and producer principals of a deployed stack: ``{"airflow-worker": {...}, ...}``."""
    return {
        role: principal_keys([outputs[key], *(outputs[k] for k in LOCAL_EXTRA_POLICIES.get(role, ()))],
                             f"{stack_name}-{role}", **client_kwargs)
        for key, role in LOCAL_PRINCIPALS.items()
    }


def ogiri_settings(outputs: dict[str, str]) -> dict[str, str]:
    """The ``OGIRI_*`` environment variables the stack outputs provide."""
    missing = sorted(set(OUTPUT_TO_SETTING) - set(outputs))
    if missing:
        raise DeployError(f"stack outputs lack {missing}; is this the ogiri template?")
    return {setting: outputs[key] for key, setting in OUTPUT_TO_SETTING.items()}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; prints ``export OGIRI_…=…`` lines and the worker policy ARN."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", required=True)
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="template parameter"
    )
    parser.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:5055 for the local emulator")
    parser.add_argument("--region", help="AWS region (default: from the environment)")
    parser.add_argument("--template", default=str(TEMPLATE))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the stack")
    args = parser.parse_args(argv)
    try:
        params = parse_params(args.param)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        outputs = deploy(
            args.stack_name,
            params,
            template_path=args.template,
            endpoint_url=args.endpoint_url,
            region=args.region,
            timeout_s=args.timeout,
        )
        settings = ogiri_settings(outputs)
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, value in settings.items():
        print(f"export {name}={value}")
    print(f"# attach to the Airflow execution role: {outputs.get('WorkerPolicyArn', '?')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
