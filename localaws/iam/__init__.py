"""IAM enforcement for the emulator (off unless switched on).

``IamSwitch`` is what the middleware holds: ``enforce`` (set by ``serve --enforce-iam``,
``LOCALAWS_ENFORCE_IAM=1`` or ``POST /_localaws/iam {"enforce": bool}``) and ``handle()``, which
answers a denial or passes the request on. Layout: ``models`` (who signed: keys -> principals and
their policies), ``evaluation``/``conditions``/``patterns`` (policy logic), ``actions``/``s3``
(request -> IAM action + resource ARN), ``enforcer`` (the decision), ``responses`` (AWS-shaped
denials), ``validation`` (strict policy documents at write time).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_ACTIVE: list[IamSwitch] = []  # the server's switch, so in-process services know whether IAM is enforced


def env_flag(value: str | None) -> bool:
    """Whether an environment value means "on" (``1``, ``true``, ``yes``, ``on``)."""
    return (value or "").strip().lower() in TRUE_WORDS


class IamSwitch:
    """Runtime on/off switch around the enforcer (thread-safe)."""

    def __init__(self, enforce: bool = False):
        self._lock = threading.Lock()
        self._enforce = bool(enforce)
        self._enforcer: Any = None
        from localaws.iam.calls import CallLog

        self.calls = CallLog()  #: every decision under enforcement, per principal and action
        _ACTIVE[:] = [self]

    @property
    def enforce(self) -> bool:
        """Whether requests are authorized against IAM."""
        with self._lock:
            return self._enforce

    def set(self, enforce: bool) -> None:
        """Turn enforcement on or off."""
        with self._lock:
            self._enforce = bool(enforce)

    def state(self) -> dict[str, Any]:
        """The admin API's view: ``{"enforce": bool}``."""
        return {"enforce": self.enforce}

    def handle(self, environ: dict[str, Any], start_response: Callable, app: Callable) -> Iterable[bytes]:
        """Authorize the request, then answer a denial or call ``app``."""
        from localaws.iam import responses
        from localaws.iam.enforcer import Enforcer
        from localaws.iam.requests import drain

        if self._enforcer is None:
            self._enforcer = Enforcer(self.calls)
        outcome = self._enforcer.authorize(environ)
        service = outcome.request.service if outcome.request else "s3"
        if outcome.denial is not None:
            drain(environ)
            return responses.deny(outcome.denial, environ, service, start_response)
        if outcome.denied_keys:
            from localaws.iam import multidelete

            return multidelete.serve(app, outcome.denied_keys, environ, start_response)
        if outcome.missing_key is not None:
            return responses.missing_key_as_denied(app, outcome.missing_key, environ, start_response)
        return app(environ, start_response)


def enforcing() -> bool:
    """Whether the running server enforces IAM (False when no server built a switch)."""
    return bool(_ACTIVE) and _ACTIVE[0].enforce


def service_decision(credentials: dict[str, str], action: str, resource: str, region: str,
                     context: dict[str, list[str]] | None = None) -> str | None:
    """Whether a service may act with ``credentials`` (a role session): None when allowed or when IAM
    is not enforced, else AWS's denial message."""
    if not enforcing():
        return None
    from localaws.iam.enforcer import service_decision as decide

    return decide(_ACTIVE[0].calls, credentials.get("AWS_ACCESS_KEY_ID", ""), credentials.get("AWS_SESSION_TOKEN"),
                  action, resource, region, context)


def install() -> None:
    """Hook moto (idempotent): track issued access keys, validate policy documents strictly, and
    leave bucket policies to the enforcer."""
    from localaws.iam import models, validation

    models.install()
    validation.install()
    _bucket_policies_to_enforcer()


def _bucket_policies_to_enforcer() -> None:
    """moto checks bucket policies itself on PutObject/DeleteObjects, ignoring conditions (the
    template's ``Deny … aws:SecureTransport=false`` would refuse every upload, even the admin's);
    bucket policies are evaluated by the enforcer instead, only while enforcement is on."""
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    def neutral(self: Any, action: str, resource: str) -> Any:
        return PermissionResult.NEUTRAL

    FakeBucket.get_permission = neutral  # type: ignore[method-assign]
