"""Airflow ``[core] hostname_callable`` for local Celery workers that share one machine."""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    """``OGIRI_WORKER_HOSTNAME`` (set per worker by ``CeleryStack``), else the machine's FQDN."""
    return os.environ.get("OGIRI_WORKER_HOSTNAME") or socket.getfqdn()
