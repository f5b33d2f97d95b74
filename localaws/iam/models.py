"""Who signed a request: access keys issued by the emulator's IAM/STS mapped to their principal.

Keys that the emulator never issued (the default ``testing`` keys, anything else) are the
*admin identity*: full access, for set-up only. Keys issued by ``iam:CreateAccessKey`` resolve to
their user (inline, attached and group policies); keys issued by ``sts:AssumeRole`` resolve to the
role session (the role's inline and attached policies, the session policy if one was passed).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from localaws.iam.evaluation import PolicyDoc

# Every access key id moto's IAM/STS has issued in this process (so a deleted key is refused, not
# mistaken for an admin key). Filled by the hook that ``install()`` puts on moto's AccessKey.
_ISSUED: set[str] = set()
_ISSUED_LOCK = threading.Lock()


class AuthFailure(Exception):
    """The request's credentials are not valid (AWS: InvalidClientTokenId and friends)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Principal:
    """An enforced identity and the policies that apply to it."""

    arn: str
    account: str
    kind: str  # "user" | "assumed-role"
    user_id: str
    policies: list[PolicyDoc]
    session_policies: list[PolicyDoc] = field(default_factory=list)
    boundary: PolicyDoc | None = None
    role_arn: str | None = None
    name: str = ""
    secret: str = field(default="", repr=False)

    @property
    def matcher_arns(self) -> list[str]:
        """ARNs a resource policy may name to mean this principal."""
        return [a for a in (self.arn, self.role_arn) if a]

    def context(self) -> dict[str, list[str]]:
        """The principal's global condition keys."""
        ctx = {
            "aws:principalarn": [self.role_arn or self.arn],
            "aws:principalaccount": [self.account],
            "aws:principaltype": ["User" if self.kind == "user" else "AssumedRole"],
            "aws:userid": [self.user_id],
            "aws:viaawsservice": ["false"],
            "aws:principalisawsservice": ["false"],
        }
        if self.kind == "user":
            ctx["aws:username"] = [self.name]
        else:
            ctx["aws:multifactorauthpresent"] = ["false"]
        return ctx


def install() -> None:
    """Record the ids of access keys moto creates (idempotent)."""
    from moto.iam.models import AccessKey

    if getattr(AccessKey, "_localaws_tracked", False):
        return
    original = AccessKey.__init__

    def tracked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        with _ISSUED_LOCK:
            _ISSUED.add(self.access_key_id)

    AccessKey.__init__ = tracked_init  # type: ignore[method-assign]
    AccessKey._localaws_tracked = True  # type: ignore[attr-defined]


def _document(text: str | dict[str, Any], source: str, kind: str = "identity") -> PolicyDoc:
    if isinstance(text, dict):
        return PolicyDoc(source, text, kind)
    try:
        data = json.loads(text)
    except ValueError:
        data = json.loads(unquote(text))
    if not isinstance(data, dict):
        raise ValueError(f"policy {source} is not a JSON object")
    return PolicyDoc(source, data, kind)


def _managed(policy: Any, kind: str = "identity") -> PolicyDoc:
    version = next(v for v in policy.versions if v.is_default)
    return _document(version.document, policy.arn, kind)


def _inline(owner_arn: str, policies: dict[str, str]) -> list[PolicyDoc]:
    return [_document(doc, f"{owner_arn} (inline policy {name})") for name, doc in policies.items()]


def _boundary(backend: Any, arn: str | None) -> PolicyDoc | None:
    if not arn:
        return None
    policy = backend.managed_policies.get(arn) or backend.aws_managed_policies.get(arn)
    if policy is None:  # a boundary that does not exist allows nothing
        return PolicyDoc(arn, {"Version": "2012-10-17", "Statement": []}, "boundary")
    return _managed(policy, "boundary")


def _user_principal(backend: Any, key: Any) -> Principal:
    user = backend.get_user(key.user_name)
    arn = user.arn
    docs = _inline(arn, user.policies) + [_managed(p) for p in user.managed_policies.values()]
    for group in backend.get_groups_for_user(user.name):
        docs += _inline(group.arn, group.policies) + [_managed(p) for p in group.managed_policies.values()]
    return Principal(
        arn=arn,
        account=backend.account_id,
        kind="user",
        user_id=user.id,
        policies=docs,
        boundary=_boundary(backend, getattr(user, "permissions_boundary_arn", None)),
        name=user.name,
        secret=key.secret_access_key,
    )


def _session_principal(backend: Any, sts: Any, key_id: str, token: str | None) -> Principal:
    session = sts.get_assumed_role_from_access_key(key_id)
    if session is None:
        raise AuthFailure("InvalidClientTokenId", "The security token included in the request is invalid.")
    if token != session.session_token:
        raise AuthFailure("InvalidClientTokenId", "The security token included in the request is invalid.")
    if session.expiration.replace(tzinfo=UTC) < datetime.now(UTC):
        raise AuthFailure("ExpiredToken", "The security token included in the request is expired")
    role = next((r for r in backend.roles.values() if r.arn == session.role_arn), None)
    if role is None:
        docs: list[PolicyDoc] = []
        boundary = None
        role_id = "AROAUNKNOWN"
    else:
        docs = _inline(role.arn, role.policies) + [_managed(p) for p in role.managed_policies.values()]
        boundary = _boundary(backend, role.permissions_boundary_arn)
        role_id = role.id
    session_docs = [_document(session.policy, f"{session.arn} (session policy)", "session")] if session.policy else []
    return Principal(
        arn=session.arn,
        account=backend.account_id,
        kind="assumed-role",
        user_id=f"{role_id}:{session.session_name}",
        policies=docs,
        session_policies=session_docs,
        boundary=boundary,
        role_arn=session.role_arn,
        name=session.session_name,
        secret=session.secret_access_key,
    )


def _owning_backend(key_id: str) -> tuple[Any, Any] | None:
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for account_id, account in list(iam_backends.items()):
        for partition in list(account.keys()):
            backend = account[partition]
            key = backend.access_keys.get(key_id)
            if key is not None:
                return backend, (key, sts_backends[account_id][partition])
    return None


def resolve(key_id: str | None, session_token: str | None) -> Principal | None:
    """The enforced principal of an access key, or None for the admin identity.

    Raises AuthFailure for a key the emulator issued that is deleted, inactive or mismatched.
    """
    if not key_id:
        return None
    found = _owning_backend(key_id)
    if found is None:
        with _ISSUED_LOCK:
            issued = key_id in _ISSUED
        if issued:
            raise AuthFailure("InvalidClientTokenId", "The security token included in the request is invalid.")
        return None
    backend, (key, sts) = found
    if key.status != "Active":
        raise AuthFailure("InvalidClientTokenId", "The security token included in the request is invalid.")
    if key.user_name:
        if session_token:
            raise AuthFailure("InvalidClientTokenId", "The security token included in the request is invalid.")
        return _user_principal(backend, key)
    return _session_principal(backend, sts, key_id, session_token)
