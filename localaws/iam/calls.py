"""What enforcement decided, per principal and action: the replay that shows a run's calls were
all allowed, and which granted actions no call used (``GET /_localaws/iam/calls``).

Only requests signed by an enforced identity are recorded (never the admin ``testing`` keys), with
a few example resources per (principal, action); ``DELETE /_localaws/iam/calls`` starts afresh.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

_EXAMPLES = 3


@dataclass
class _Tally:
    allowed: int = 0
    denied: int = 0
    resources: list[str] = field(default_factory=list)


class CallLog:
    """Thread-safe tallies of authorization decisions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[tuple[str, str], _Tally] = {}

    def record(self, principal: str, action: str, resource: str | None, allowed: bool) -> None:
        """Count one decision of ``principal`` (a user or role ARN) on ``action``."""
        with self._lock:
            tally = self._tallies.setdefault((principal, action), _Tally())
            if allowed:
                tally.allowed += 1
            else:
                tally.denied += 1
            if resource and resource not in tally.resources and len(tally.resources) < _EXAMPLES:
                tally.resources.append(resource)

    def snapshot(self) -> list[dict[str, Any]]:
        """``[{"principal", "action", "allowed", "denied", "resources"}]``, sorted."""
        with self._lock:
            items = sorted(self._tallies.items())
            return [
                {"principal": p, "action": a, "allowed": t.allowed, "denied": t.denied, "resources": list(t.resources)}
                for (p, a), t in items
            ]

    def clear(self) -> int:
        """Forget everything; returns how many (principal, action) pairs there were."""
        with self._lock:
            count = len(self._tallies)
            self._tallies.clear()
            return count
