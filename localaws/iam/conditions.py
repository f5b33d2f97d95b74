"""IAM ``Condition`` blocks: every operator AWS documents, with ``IfExists`` and the set prefixes.

A condition on a key that the emulator does not compute (not in ``MODELLED_KEYS``) or with an
operator it does not know evaluates to ``UNKNOWN``; the caller fails closed on it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from localaws.iam.patterns import arn_match, glob_match


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()

# Condition keys whose presence and value the emulator computes for every request it authorizes;
# any other key (aws:ResourceTag/..., aws:PrincipalOrgID, dynamodb:LeadingKeys, ...) is UNKNOWN.
MODELLED_KEYS = frozenset(
    {
        "aws:securetransport", "aws:requestedregion", "aws:sourceip", "aws:currenttime",
        "aws:epochtime", "aws:principalarn", "aws:principalaccount", "aws:principaltype",
        "aws:userid", "aws:username", "aws:useragent", "aws:multifactorauthpresent",
        "aws:viaawsservice", "aws:principalisawsservice", "aws:calledvia", "aws:calledviafirst",
        "aws:calledvialast", "aws:sourcearn", "aws:sourceaccount", "aws:sourcevpc",
        "aws:sourcevpce", "aws:vpcsourceip",
        "s3:prefix", "s3:delimiter", "s3:max-keys", "s3:x-amz-server-side-encryption",
        "s3:x-amz-acl", "s3:versionid",
        "iam:passedtoservice", "cloudwatch:namespace", "sts:externalid", "sts:rolesessionname",
    }
)  # fmt: skip


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> datetime | None:
    try:
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ordered(parse: Callable[[str], Any], test: Callable[[Any, Any], bool]) -> Callable[[str, str], bool]:
    def compare(actual: str, expected: str) -> bool:
        a, e = parse(actual), parse(expected)
        return a is not None and e is not None and test(a, e)

    return compare


def _in_network(actual: str, expected: str) -> bool:
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)
    except ValueError:
        return False


def _comparisons() -> dict[str, Callable[[str, str], bool]]:
    out: dict[str, Callable[[str, str], bool]] = {
        "StringEquals": lambda a, e: a == e,
        "StringEqualsIgnoreCase": lambda a, e: a.casefold() == e.casefold(),
        "StringLike": lambda a, e: glob_match(e, a),
        "Bool": lambda a, e: a.lower() == e.lower(),
        "BinaryEquals": lambda a, e: a == e,
        "IpAddress": _in_network,
        "ArnEquals": lambda a, e: arn_match(e, a),
        "ArnLike": lambda a, e: arn_match(e, a),
    }
    tests = {
        "Equals": lambda a, e: a == e,
        "LessThan": lambda a, e: a < e,
        "LessThanEquals": lambda a, e: a <= e,
        "GreaterThan": lambda a, e: a > e,
        "GreaterThanEquals": lambda a, e: a >= e,
    }
    for family, parse in (("Numeric", _number), ("Date", _date)):
        for suffix, test in tests.items():
            out[family + suffix] = _ordered(parse, test)
    return out


POSITIVE = _comparisons()
# Negated operators: true when the value matches none of the policy's values.
NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
OPERATORS = frozenset(POSITIVE) | frozenset(NEGATED) | {"Null"}
SET_PREFIXES = ("ForAnyValue:", "ForAllValues:")


def split_operator(operator: str) -> tuple[str | None, str, bool]:
    """``ForAllValues:StringLikeIfExists`` -> (``ForAllValues:``, ``StringLike``, True)."""
    prefix = next((p for p in SET_PREFIXES if operator.startswith(p)), None)
    base = operator[len(prefix) :] if prefix else operator
    if_exists = base.endswith("IfExists") and base != "IfExists"
    return prefix, base[: -len("IfExists")] if if_exists else base, if_exists


def policy_values(raw: Any) -> list[str]:
    """A condition's values as strings (booleans as ``true``/``false``)."""
    items = raw if isinstance(raw, list) else [raw]
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in items]


def _absent(prefix: str | None, base: str, if_exists: bool, expected: list[str]) -> bool:
    if base == "Null":
        return any(v.lower() == "true" for v in expected)
    if if_exists or prefix == "ForAllValues:":
        return True
    return base in NEGATED and prefix is None


def _present(prefix: str | None, base: str, actual: list[str], expected: list[str]) -> bool:
    if base == "Null":
        return any(v.lower() == "false" for v in expected)
    negated = base in NEGATED
    compare = POSITIVE[NEGATED.get(base, base)]

    def ok(value: str) -> bool:
        hit = any(compare(value, e) for e in expected)
        return not hit if negated else hit

    if prefix == "ForAllValues:":
        return all(ok(v) for v in actual)
    return any(ok(v) for v in actual)


def evaluate_one(operator: str, key: str, raw: Any, context: dict[str, list[str]]) -> Any:
    """One operator/key pair: True, False or UNKNOWN."""
    prefix, base, if_exists = split_operator(operator)
    if base not in OPERATORS:
        return UNKNOWN
    expected = policy_values(raw)
    actual = context.get(key.lower())
    if actual is None:
        if key.lower() not in MODELLED_KEYS:
            return UNKNOWN
        return _absent(prefix, base, if_exists, expected)
    return _present(prefix, base, actual, expected)


def evaluate_block(block: dict[str, Any], context: dict[str, list[str]]) -> tuple[Any, tuple[str, ...]]:
    """A statement's whole ``Condition``: AND over operators and keys; OR over a key's values.

    Returns (True | False | UNKNOWN, the keys/operators that made it UNKNOWN).
    """
    unknown: list[str] = []
    for operator, keys in block.items():
        if not isinstance(keys, dict):
            return UNKNOWN, (operator,)
        for key, raw in keys.items():
            result = evaluate_one(operator, key, raw, context)
            if result is UNKNOWN:
                unknown.append(f"{operator}:{key}")
            elif not result:
                return False, ()
    return (UNKNOWN, tuple(unknown)) if unknown else (True, ())
