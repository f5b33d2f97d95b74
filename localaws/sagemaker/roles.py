"""Execution roles: SageMaker assumes a job's `RoleArn` (a model's `ExecutionRoleArn`) and the code it
runs gets that role session's credentials, never the caller's.

Under IAM enforcement the role must exist and trust `sagemaker.amazonaws.com` (conditions such as
`aws:SourceAccount`/`aws:SourceArn` evaluated), else Create* answers SageMaker's ValidationException
"Could not assume role …"; the code's requests are then held to the role's policies. Without
enforcement any ARN is assumed (IAM is not modelled then).
"""

from __future__ import annotations

from moto.sagemaker.exceptions import ValidationError

from localaws.iam import enforcing
from localaws.iam.service_roles import assume, refusal

SERVICE = "sagemaker.amazonaws.com"
#: The role session name SageMaker uses for job and endpoint credentials.
SESSION_NAME = "SageMaker"


class RoleUnusable(Exception):
    """SageMaker could not assume the execution role (the message is SageMaker's)."""


def _message(role_arn: str | None) -> str:
    return (
        f"Could not assume role {role_arn}. Please ensure that the role exists and allows principal "
        f"'{SERVICE}' to assume the role."
    )


def resource_arn(kind: str, name: str, account: str, region: str) -> str:
    """The ARN of the job or model the role is assumed for (`aws:SourceArn`)."""
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"


def check(role_arn: str | None, account: str, source_arn: str) -> None:
    """Create*: refuse a role SageMaker could not assume (only while IAM is enforced)."""
    if enforcing() and refusal(account, role_arn or "", SERVICE, source_arn) is not None:
        raise ValidationError(message=_message(role_arn))


def credentials(role_arn: str | None, account: str, region: str, source_arn: str) -> dict[str, str]:
    """The role session the job's code runs with (raises RoleUnusable when it cannot be assumed)."""
    if enforcing():
        if refusal(account, role_arn or "", SERVICE, source_arn) is not None:
            raise RoleUnusable(_message(role_arn))
    elif not role_arn or not role_arn.startswith("arn:"):
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return assume(account, region, role_arn, SESSION_NAME)
