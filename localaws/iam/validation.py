"""Policy documents checked as strictly as AWS checks them when they are written.

moto's validators (``moto.iam.policy_validation``) accept documents that AWS refuses and that the
enforcer could not evaluate: a ``Principal`` in an identity policy, a lower-case ``Effect``,
non-string entries in ``Action``/``Resource`` lists, condition values that are objects. ``install()``
makes moto's IAM use the stricter validators below for ``CreatePolicy``, ``CreatePolicyVersion``,
``Put{User,Group,Role}Policy`` and role trust policies (HTTP API and CloudFormation alike).
"""

from __future__ import annotations

import json
from typing import Any

from localaws.iam.conditions import OPERATORS, split_operator

_SCALARS = (str, bool, int, float)


class PolicyError(ValueError):
    """Why a policy document is malformed (the MalformedPolicyDocument message)."""


def _strings(statement: dict[str, Any], key: str) -> None:
    value = statement.get(key)
    if value is None:
        return
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise PolicyError("Syntax errors in policy.")


def _condition(block: Any) -> None:
    if not isinstance(block, dict):
        raise PolicyError("Syntax errors in policy.")
    for operator, keys in block.items():
        if split_operator(operator)[1] not in OPERATORS:
            raise PolicyError(f"Invalid Condition type : {operator}.")
        if not isinstance(keys, dict) or not keys:
            raise PolicyError("Syntax errors in policy.")
        for values in keys.values():
            items = values if isinstance(values, list) else [values]
            if not all(isinstance(v, _SCALARS) for v in items):
                raise PolicyError("Syntax errors in policy.")


def check_statement(statement: Any, identity: bool) -> None:
    """Raise PolicyError for a statement AWS would refuse."""
    if not isinstance(statement, dict):
        raise PolicyError("Syntax errors in policy.")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise PolicyError("Syntax errors in policy.")
    if identity and ("Principal" in statement or "NotPrincipal" in statement):
        raise PolicyError("Policy document should not specify a principal.")
    for key in ("Action", "NotAction", "Resource", "NotResource"):
        _strings(statement, key)
    if "Condition" in statement:
        _condition(statement["Condition"])


def check_document(text: str, identity: bool = True) -> None:
    """Raise PolicyError for a policy document (JSON text) AWS would refuse."""
    try:
        document = json.loads(text)
    except ValueError as e:
        raise PolicyError("Syntax errors in policy.") from e
    if not isinstance(document, dict):
        raise PolicyError("Syntax errors in policy.")
    body = document.get("Statement")
    for statement in body if isinstance(body, list) else [body]:
        check_statement(statement, identity)


def install() -> None:
    """Swap moto's IAM validators for the strict ones (idempotent)."""
    from moto.iam import models
    from moto.iam.exceptions import MalformedPolicyDocument

    if getattr(models, "_localaws_strict", False):
        return
    base_identity, base_trust = models.IAMPolicyDocumentValidator, models.IAMTrustPolicyDocumentValidator

    def strict(base: type, identity: bool) -> type:
        class Strict(base):  # type: ignore[misc, valid-type]
            def validate(self) -> None:
                super().validate()  # moto's checks first: same messages where moto already refuses
                try:
                    check_document(self._policy_document, identity)
                except PolicyError as e:
                    raise MalformedPolicyDocument(str(e)) from e

        Strict.__name__ = f"Strict{base.__name__}"
        return Strict

    models.IAMPolicyDocumentValidator = strict(base_identity, True)  # type: ignore[misc]
    models.IAMTrustPolicyDocumentValidator = strict(base_trust, False)  # type: ignore[misc]
    models._localaws_strict = True  # type: ignore[attr-defined]
