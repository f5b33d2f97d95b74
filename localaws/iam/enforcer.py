"""The AWS decision for one request: explicit Deny anywhere wins, else an Allow is needed from an
identity policy (within the permissions boundary and session policy) or the resource policy.

``authorize(environ)`` answers an ``Outcome``: allowed, or a ``Denial`` with the AWS error code,
status and a message that names the principal, the action and the resource.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from localaws.iam import actions, models
from localaws.iam.calls import CallLog
from localaws.iam.evaluation import ALLOW, DENY, Check, Match, PolicyDoc, PrincipalMatcher, matching
from localaws.iam.models import AuthFailure, Principal
from localaws.iam.requests import ApiRequest, parse
from localaws.iam.s3 import Unmodelled, bucket_arn
from localaws.iam.signature import signature_matches

_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method."
)


@dataclass
class Denial:
    """An AWS-shaped refusal."""

    code: str
    message: str
    status: int | None = None  # None: the protocol's usual status for AccessDenied


@dataclass
class Outcome:
    """What the enforcer decided; ``missing_key`` turns a 404 from S3 into this 403."""

    request: ApiRequest | None = None
    denial: Denial | None = None
    missing_key: Denial | None = None
    principal: Principal | None = None
    denied_keys: dict[str, str] | None = None  # DeleteObjects: key -> why it may not be deleted


def request_context(req: ApiRequest) -> dict[str, list[str]]:
    """The global condition keys every request carries."""
    now = datetime.now(UTC)
    ctx = {
        "aws:securetransport": ["true" if req.secure else "false"],
        "aws:requestedregion": [req.region],
        "aws:currenttime": [now.strftime("%Y-%m-%dT%H:%M:%SZ")],
        "aws:epochtime": [str(int(time.time()))],
    }
    if req.environ.get("REMOTE_ADDR"):
        ctx["aws:sourceip"] = [req.environ["REMOTE_ADDR"]]
    if req.header("User-Agent"):
        ctx["aws:useragent"] = [req.header("User-Agent") or ""]
    return ctx


def _describe(resource: str | None, quoted: bool) -> str:
    if resource == "*":
        return ""
    shown = resource if resource is not None else "(a resource localaws does not model)"
    return f' on resource: "{shown}"' if quoted else f" on resource: {shown}"


def deny_message(principal: Principal, check: Check, reason: str, quoted: bool) -> str:
    """``User: ARN is not authorized to perform: ACTION on resource: ARN <reason>``."""
    return f"User: {principal.arn} is not authorized to perform: {check.action}{_describe(check.resource, quoted)} {reason}"


def _explicit(match: Match) -> str:
    where = "a resource-based policy" if match.policy.kind in ("resource", "trust") else (
        "a session policy" if match.policy.kind == "session" else
        "a permissions boundary" if match.policy.kind == "boundary" else "an identity-based policy")
    reason = f"with an explicit deny in {where}"
    if match.policy.kind not in ("resource", "trust"):
        reason += f": {match.policy.source}"
    if match.unmodelled:
        reason += f" (localaws: {', '.join(match.unmodelled)} is not modelled, so this Deny applies)"
    return reason


def resource_policy(account: str, check: Check) -> PolicyDoc | None:
    """The resource policy governing a check: the bucket policy, or a role's trust policy."""
    if check.action == "sts:AssumeRole":
        from moto.iam.models import iam_backends

        roles = iam_backends[account]["aws"].roles.values()
        role = next((r for r in roles if r.arn == check.resource), None)
        document = json.loads(role.assume_role_policy_document) if role is not None else {"Statement": []}
        return PolicyDoc(f"trust policy of {check.resource}", document, "trust")
    if not check.resource or not check.resource.startswith("arn:aws:s3:::"):
        return None
    from moto.s3.models import s3_backends

    bucket_name = check.resource[len("arn:aws:s3:::") :].split("/", 1)[0]
    bucket = s3_backends[account]["aws"].buckets.get(bucket_name)
    raw = getattr(bucket, "policy", None)
    if not raw:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return PolicyDoc(f"bucket policy of {bucket_name}", json.loads(text), "resource")


def _on_resource(principal: Principal, check: Check, policy: PolicyDoc | None) -> tuple[list[Match], bool, bool]:
    """(Deny matches, whether it grants on its own, whether it allows at all) for a resource policy."""
    if policy is None:
        return [], False, False
    named = matching([policy], check, PrincipalMatcher(principal.matcher_arns, principal.account))
    direct = matching([policy], check, PrincipalMatcher(principal.matcher_arns, principal.account, False))
    denies = [m for m in named if m.effect == DENY]
    return denies, any(m.effect == ALLOW for m in direct), any(m.effect == ALLOW for m in named)


def decide(principal: Principal, check: Check, policy: PolicyDoc | None) -> str | None:
    """None when allowed, else the reason AWS gives for the denial."""
    found = matching(principal.policies, check)
    scoped = matching(principal.session_policies + ([principal.boundary] if principal.boundary else []), check)
    denies, grants_alone, allows = _on_resource(principal, check, policy)
    for match in found + scoped + denies:
        if match.effect == DENY:
            return _explicit(match)
    if policy is not None and policy.kind == "trust" and not allows:
        return f"because the trust policy of the role does not allow {principal.arn} to assume it"
    if grants_alone:
        return None
    if not any(m.effect == ALLOW for m in found):
        return f"because no identity-based policy allows the {check.action} action"
    if principal.boundary and not any(m.effect == ALLOW and m.policy.kind == "boundary" for m in scoped):
        return f"because no permissions boundary allows the {check.action} action"
    if principal.session_policies and not any(m.effect == ALLOW and m.policy.kind == "session" for m in scoped):
        return f"because no session policy allows the {check.action} action"
    return None


class Enforcer:
    """Authorizes requests against the emulator's IAM state; ``calls`` records each decision."""

    def __init__(self, calls: CallLog | None = None):
        self.calls = calls or CallLog()

    def authorize(self, environ: dict[str, Any]) -> Outcome:
        """Decide one request (never raises: an evaluation error is a denial)."""
        try:
            return self._authorize(environ)
        except Exception as e:  # fail closed, with the reason, rather than a 500
            return Outcome(denial=Denial("AccessDenied", f"localaws could not evaluate IAM for this request: {e!r}"))

    def _authorize(self, environ: dict[str, Any]) -> Outcome:
        req = parse(environ)
        if req is None:
            return Outcome(denial=Denial("AccessDenied", "Anonymous requests are denied: sign the request (localaws enforces IAM)"))
        try:
            principal = models.resolve(req.key_id, req.session_token)
        except AuthFailure as e:
            return Outcome(req, Denial(e.code, e.message, 403))
        if principal is None:  # the admin identity
            return Outcome(req)
        if not signature_matches(req, principal.secret, req.session_token):
            return Outcome(req, Denial("SignatureDoesNotMatch", _BAD_SIGNATURE, 403))
        if req.service == "sts" and req.operation == "GetCallerIdentity":
            return Outcome(req, principal=principal)
        try:
            checks = actions.checks(req, principal.account, principal.arn)
        except Unmodelled as e:
            message = f"User: {principal.arn} is not authorized: localaws cannot map this request to IAM ({e})"
            self.calls.record(principal.role_arn or principal.arn, f"{req.service}:{req.operation}", None, False)
            return Outcome(req, Denial("AccessDenied", message), principal=principal)
        return self._evaluate(req, principal, checks)

    def _evaluate(self, req: ApiRequest, principal: Principal, checks: list[Check]) -> Outcome:
        base = {**request_context(req), **principal.context()}
        quoted = req.service == "s3"
        per_key = quoted and req.environ.get("REQUEST_METHOD") == "POST" and "delete" in req.query
        denied_keys: dict[str, str] = {}
        for check in checks:
            check = Check(check.action, check.resource, {**base, **check.context})
            reason = decide(principal, check, resource_policy(principal.account, check))
            self.calls.record(principal.role_arn or principal.arn, check.action, check.resource, reason is None)
            if reason is None:
                continue
            message = deny_message(principal, check, reason, quoted)
            if not per_key:
                return Outcome(req, Denial("AccessDenied", message), principal=principal)
            denied_keys[(check.resource or "").split("/", 1)[-1]] = message
        if denied_keys:
            return Outcome(req, principal=principal, denied_keys=denied_keys)
        return Outcome(req, missing_key=self._missing_key(req, principal, checks, base), principal=principal)

    @staticmethod
    def _missing_key(req: ApiRequest, principal: Principal, checks: list[Check], base: dict) -> Denial | None:
        """S3 answers 403, not 404, for a missing key unless s3:ListBucket is granted."""
        if req.service != "s3" or not checks or checks[0].action not in ("s3:GetObject", "s3:GetObjectVersion"):
            return None
        bucket = (checks[0].resource or "").split(":::", 1)[-1].split("/", 1)[0]
        listing = Check("s3:ListBucket", bucket_arn(bucket), base)
        reason = decide(principal, listing, resource_policy(principal.account, listing))
        return None if reason is None else Denial("AccessDenied", deny_message(principal, listing, reason, True))


def service_decision(calls: CallLog, key_id: str, session_token: str | None, action: str, resource: str,
                     region: str, context: dict[str, list[str]] | None = None) -> str | None:
    """A call an AWS service makes with a role session (SageMaker pulling an image as the execution
    role): None when allowed, else AWS's denial message. Recorded in ``calls`` like a request."""
    principal = models.resolve(key_id, session_token)
    if principal is None:  # the admin identity
        return None
    now = datetime.now(UTC)
    base = {
        "aws:securetransport": ["true"],
        "aws:requestedregion": [region],
        "aws:currenttime": [now.strftime("%Y-%m-%dT%H:%M:%SZ")],
        "aws:epochtime": [str(int(time.time()))],
        **principal.context(),
    }
    check = Check(action, resource, {**base, **(context or {})})
    reason = decide(principal, check, resource_policy(principal.account, check))
    calls.record(principal.role_arn or principal.arn, action, resource, reason is None)
    return None if reason is None else deny_message(principal, check, reason, action.startswith("s3:"))
