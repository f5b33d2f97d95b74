"""Side registry of live runtime state (threads, processes) kept OFF moto's Fake* objects.

moto serialises a Fake object's whole `__dict__` into API responses, so anything that is not
plain data lives here, keyed by (kind, account, region, name).
"""

from __future__ import annotations

import threading
from typing import Protocol


class Runtime(Protocol):
    """Anything the registry can shut down (a job run, an endpoint's workers)."""

    def shutdown(self) -> None:
        """Kill every process this runtime started, without waiting for a graceful end."""


class Registry:
    """Thread-safe map of (kind, account, region, name) → runtime."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str, str, str], Runtime] = {}

    def put(self, kind: str, account: str, region: str, name: str, runtime: Runtime) -> None:
        """Register `runtime`, shutting down whatever was registered under the same key."""
        with self._lock:
            old = self._items.pop((kind, account, region, name), None)
            self._items[(kind, account, region, name)] = runtime
        if old is not None and old is not runtime:
            old.shutdown()

    def get(self, kind: str, account: str, region: str, name: str) -> Runtime | None:
        """The runtime under this key, or None."""
        with self._lock:
            return self._items.get((kind, account, region, name))

    def pop(self, kind: str, account: str, region: str, name: str) -> Runtime | None:
        """Remove and return the runtime under this key (not shut down)."""
        with self._lock:
            return self._items.pop((kind, account, region, name), None)

    def shutdown(self, account: str | None = None, region: str | None = None) -> None:
        """Shut down and forget every runtime (of one account/region when given)."""
        with self._lock:
            keys = [
                k
                for k in self._items
                if (account is None or k[1] == account) and (region is None or k[2] == region)
            ]
            items = [self._items.pop(k) for k in keys]
        for runtime in items:
            try:
                runtime.shutdown()
            except Exception:  # noqa: BLE001 - shutting down is best effort
                pass


REGISTRY = Registry()
