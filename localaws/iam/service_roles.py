"""Roles that an AWS service assumes on a caller's behalf (SageMaker's execution roles).

``refusal()`` says why a service may not assume a role (it does not exist, or its trust policy does
not allow the service principal, conditions such as ``aws:SourceAccount`` included); ``assume()``
issues the role session through the emulator's own STS, so requests signed with its keys are
evaluated as that role (its policies, boundary and trust) by the enforcer.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from localaws.iam.evaluation import ALLOW, DENY, Check, PolicyDoc, PrincipalMatcher, matching

#: Seconds a service role session lasts (the longest a role session may; credentials do not rotate).
SESSION_SECONDS = 43200


class ServicePrincipal(PrincipalMatcher):
    """Matches trust-policy statements that name an AWS service (``Principal: {Service: …}``)."""

    def __init__(self, service: str):
        super().__init__([], "", include_account=False)
        self.service = service

    def _hits(self, principal: Any) -> bool:
        if principal == "*":
            return True
        if not isinstance(principal, dict):
            return False
        services = principal.get("Service", [])
        return self.service in ([services] if isinstance(services, str) else list(services))


def find_role(account: str, role_arn: str) -> Any:
    """moto's role with this ARN, or None."""
    from moto.iam.models import iam_backends

    return next((r for r in iam_backends[account]["aws"].roles.values() if r.arn == role_arn), None)


def refusal(account: str, role_arn: str, service: str, source_arn: str) -> str | None:
    """None when ``service`` may assume ``role_arn`` for ``source_arn``, else why not."""
    role = find_role(account, role_arn or "")
    if role is None:
        return "the role does not exist"
    document = json.loads(role.assume_role_policy_document)
    context = {
        "aws:sourceaccount": [account],
        "aws:sourcearn": [source_arn],
        "aws:principalservicename": [service],
        "aws:currenttime": [datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")],
        "aws:epochtime": [str(int(time.time()))],
    }
    check = Check("sts:AssumeRole", role_arn, context)
    found = matching([PolicyDoc(f"trust policy of {role_arn}", document, "trust")], check, ServicePrincipal(service))
    if any(m.effect == DENY for m in found):
        return "its trust policy denies it"
    if not any(m.effect == ALLOW for m in found):
        return f"its trust policy does not allow {service} to assume it"
    return None


def assume(account: str, region: str, role_arn: str, session_name: str) -> dict[str, str]:
    """A role session from the emulator's STS: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN."""
    from moto.sts.models import sts_backends

    session = sts_backends[account]["aws"].assume_role(
        region_name=region,
        role_session_name=session_name[:64],
        role_arn=role_arn,
        policy=None,
        duration=SESSION_SECONDS,
        external_id=None,
    )
    return {
        "AWS_ACCESS_KEY_ID": session.access_key_id,
        "AWS_SECRET_ACCESS_KEY": session.secret_access_key,
        "AWS_SESSION_TOKEN": session.session_token,
    }
