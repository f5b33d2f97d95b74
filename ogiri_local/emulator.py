"""Start and stop ``python -m localaws serve`` as a child process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Emulator:
    """A running emulator on 127.0.0.1; ``stop()`` (or the context manager) ends it and its jobs."""

    def __init__(
        self, home: Path, port: int | None = None, startup_timeout: float = 30.0, *, enforce_iam: bool = False
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_path = self.home / "localaws.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, LOCALAWS_HOME=str(self.home))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "localaws", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
            + (["--enforce-iam"] if enforce_iam else []),
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                raise RuntimeError(f"emulator exited early:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_localaws/health", timeout=1) as r:
                    if json.load(r).get("status") == "ok":
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"emulator not healthy in {startup_timeout:.0f} s:\n{self.log_path.read_text()}")

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _call(self, method: str, path: str, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(req, timeout=10).close()

    def reset(self) -> None:
        """Drop all emulated AWS state (moto reset) and clear injected faults."""
        self._call("POST", "/moto-api/reset")
        self._call("DELETE", "/_localaws/faults")

    def enforce_iam(self, enforce: bool) -> None:
        """Turn IAM enforcement on or off (the admin ``testing`` keys are never denied)."""
        self._call("POST", "/_localaws/iam", {"enforce": enforce})

    def inject(self, **fault) -> None:
        """Add a fault rule (see docs/interfaces.md)."""
        self._call("POST", "/_localaws/faults", fault)

    def sns_published(self, topic_arn: str | None = None) -> dict[str, list[dict]]:
        """``{topic ARN: [{"message_id", "subject", "message", …}]}``: what SNS topics received (admin route)."""
        from urllib.parse import urlencode

        query = f"?{urlencode({'topic_arn': topic_arn})}" if topic_arn else ""
        with urllib.request.urlopen(f"{self.url}/_localaws/sns/published{query}", timeout=10) as resp:
            return json.load(resp)["topics"]

    def workforce(self, **config) -> None:
        """Configure the simulated Ground Truth workforce (``POST /_localaws/workforce``, see
        docs/interfaces.md), e.g. ``workforce(noise=0.3, abandonment=0.1)``."""
        self._call("POST", "/_localaws/workforce", config)

    def capture_flush(self) -> dict:
        """Write every buffered endpoint data capture record now: ``{"objects", "records", "dropped"}``."""
        return capture_admin(self.url, "POST", "/flush", {})

    def capture_clock(self, offset_seconds: float) -> dict:
        """Shift the data capture clock (inferenceTime and the hour path) by ``offset_seconds``."""
        return capture_admin(self.url, "POST", "/clock", {"offset_seconds": offset_seconds})

    def client(self, service: str, **kwargs):
        """A boto3 client for ``service`` pointed at the emulator."""
        import boto3

        kwargs.setdefault("aws_access_key_id", "testing")
        kwargs.setdefault("aws_secret_access_key", "testing")
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1", **kwargs)

    def aws_connection(self, region: str = "us-east-1", keys: dict[str, str] | None = None) -> dict:
        """The Airflow ``aws`` connection (as JSON-able dict) that points the provider at us.

        ``keys`` (``aws_access_key_id``/``aws_secret_access_key``, e.g. a principal's from
        ``infra/deploy_stack.py``) sign as that principal; without them, as the admin identity.
        """
        keys = keys or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        return {
            "conn_type": "aws",
            "login": keys["aws_access_key_id"],
            "password": keys["aws_secret_access_key"],
            "extra": {"region_name": region, "endpoint_url": self.url},
        }

    def stop(self) -> None:
        """Terminate the emulator (it stops its own job and model-server processes)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._log.closed:
            self._log.close()


def capture_admin(url: str, method: str, route: str, body: dict | None = None) -> dict:
    """Call ``/_localaws/sagemaker/capture<route>`` of the emulator at ``url`` (see docs/interfaces.md)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{url}/_localaws/sagemaker/capture{route}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)
