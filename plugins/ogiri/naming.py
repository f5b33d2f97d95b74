"""Deterministic AWS resource names: same DAG + run key ⇒ same name, within SageMaker's rules."""

from __future__ import annotations

import hashlib
import re

#: SageMaker names: ``^[a-zA-Z0-9](-*[a-zA-Z0-9])*``, at most 63 characters.
MAX_NAME_LEN = 63
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9]+")


def short_hash(*parts: object, length: int = 8) -> str:
    """Hex digest prefix of the parts joined with NUL (stable across processes and machines)."""
    data = "\x00".join(str(p) for p in parts).encode()
    return hashlib.sha256(data).hexdigest()[:length]


def run_key(dag_id: str, run_id: str, logical_date: object | None = None) -> str:
    """The key every resource of one DAG run is named from.

    Scheduled and backfill runs are keyed by their logical date (so a rerun of a date reuses its
    names); manual and asset-triggered runs, which may share a date, by their run id.
    """
    if logical_date is not None and run_id.startswith(("scheduled__", "backfill__")):
        return f"{dag_id}:{logical_date}"
    return f"{dag_id}:{run_id}"


def resource_name(prefix: str, key: str, *, suffix: str = "") -> str:
    """``<prefix>-<readable part>-<hash of key>[-suffix]`` limited to 63 valid characters.

    The hash covers the whole key, so truncating the readable part never makes two runs collide.
    """
    digest = short_hash(prefix, key, suffix)
    tail = f"-{digest}" + (f"-{_clean(suffix)}" if suffix else "")
    readable = _clean(f"{prefix}-{key}")
    room = MAX_NAME_LEN - len(tail)
    if room < 1:
        raise ValueError(f"suffix {suffix!r} leaves no room in a {MAX_NAME_LEN}-character name")
    return readable[:room].rstrip("-") + tail


def _clean(text: str) -> str:
    return _NOT_ALLOWED.sub("-", text).strip("-")
