"""IAM policy evaluation: statements, wildcards, conditions, and the AWS decision order.

Stricter than moto's ``access_control``: resources are matched segment by segment, an Allow whose
condition is not met is merely not applicable (moto turns it into a Deny), and a condition on a key
the emulator does not model *fails closed* (an Allow does not apply, a Deny does), so a policy never
lets a request pass here that AWS might refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from localaws.iam.conditions import UNKNOWN, evaluate_block
from localaws.iam.patterns import arn_match, glob_match

ALLOW, DENY = "Allow", "Deny"


@dataclass(frozen=True)
class Check:
    """One authorization question: may the principal do ``action`` on ``resource``?

    ``resource`` is an ARN, ``"*"`` (actions AWS authorizes on no resource) or ``None`` when the
    emulator cannot name it (only ``Resource: "*"`` grants it; any matching Deny applies).
    ``context`` maps lower-cased condition keys to their values for this request.
    """

    action: str
    resource: str | None
    context: dict[str, list[str]] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class PolicyDoc:
    """A parsed policy and where it came from (its ARN or a description, for messages)."""

    source: str
    document: dict[str, Any]
    kind: str = "identity"  # identity | resource | session | boundary


@dataclass(frozen=True)
class Match:
    """A statement that applies to a check."""

    effect: str
    policy: PolicyDoc
    sid: str | None = None
    unmodelled: tuple[str, ...] = ()


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements of a policy document (``Statement`` may be one object or a list)."""
    body = document.get("Statement", [])
    return [body] if isinstance(body, dict) else list(body)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def substitute(pattern: str, context: dict[str, list[str]], version: str | None) -> str | None:
    """Replace policy variables (``${aws:username}``...); None when one is absent from the request.

    ``${*}``, ``${?}`` and ``${$}`` become the bare characters (close enough: ARNs never hold them).
    """
    if version != "2012-10-17" or "${" not in pattern:
        return pattern
    missing = False

    def repl(m: re.Match[str]) -> str:
        nonlocal missing
        name = m.group(1)
        if name in ("*", "?", "$"):
            return name
        values = context.get(name.lower())
        if not values or len(values) != 1:
            missing = True
            return ""
        return values[0]

    out = _VARIABLE.sub(repl, pattern)
    return None if missing else out


def _action_applies(statement: dict[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(glob_match(str(a), action, False) for a in _as_list(statement["NotAction"]))
    return any(glob_match(str(a), action, False) for a in _as_list(statement.get("Action", [])))


def _resource_applies(statement: dict[str, Any], check: Check, effect: str, version: str | None) -> bool:
    key = "NotResource" if "NotResource" in statement else "Resource"
    if key not in statement:  # resource policies may omit it only when the resource is implied
        return True
    patterns = [substitute(str(p), check.context, version) for p in _as_list(statement[key])]
    if check.resource is None:  # not modelled: only "*" grants, any Deny takes away
        if effect == DENY:
            return True
        return key == "Resource" and "*" in patterns
    hit = any(p is not None and arn_match(p, check.resource) for p in patterns)
    return hit if key == "Resource" else not hit


def statement_match(
    statement: dict[str, Any], check: Check, version: str | None, principal: PrincipalMatcher | None = None
) -> tuple[bool, tuple[str, ...]]:
    """Whether ``statement`` applies to ``check`` (and the unmodelled condition keys it relied on)."""
    effect = statement.get("Effect")
    if effect not in (ALLOW, DENY) or not _action_applies(statement, check.action):
        return False, ()
    if principal is not None and not principal.matches(statement):
        return False, ()
    if not _resource_applies(statement, check, effect, version):
        return False, ()
    result, unknown_keys = evaluate_block(statement.get("Condition") or {}, check.context)
    if result is UNKNOWN:
        return effect == DENY, unknown_keys  # fail closed
    return bool(result), ()


class PrincipalMatcher:
    """Matches the ``Principal``/``NotPrincipal`` of resource-policy statements.

    With ``include_account`` a statement naming the principal's account (``123456789012`` or its
    ``:root`` ARN) matches too: that delegates to IAM, so it grants only alongside an identity Allow.
    """

    def __init__(self, arns: list[str], account: str, include_account: bool = True):
        self.arns = arns
        self.account = account
        self.include_account = include_account

    def _hits(self, principal: Any) -> bool:
        if principal == "*":
            return True
        if not isinstance(principal, dict):
            return False
        for value in _as_list(principal.get("AWS", [])):
            value = str(value)
            if value == "*" or value in self.arns:
                return True
            if self.include_account and value in (self.account, f"arn:aws:iam::{self.account}:root"):
                return True
        return False

    def matches(self, statement: dict[str, Any]) -> bool:
        """Whether the statement's principal element names this principal."""
        if "NotPrincipal" in statement:
            return not self._hits(statement["NotPrincipal"])
        return self._hits(statement.get("Principal"))


def matching(policies: list[PolicyDoc], check: Check, principal: PrincipalMatcher | None = None) -> list[Match]:
    """Every statement of ``policies`` that applies to ``check``."""
    out = []
    for policy in policies:
        version = policy.document.get("Version")
        for statement in statements(policy.document):
            applies, unmodelled = statement_match(statement, check, version, principal)
            if applies:
                out.append(Match(statement["Effect"], policy, statement.get("Sid"), unmodelled))
    return out
