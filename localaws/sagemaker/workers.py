"""Emulator side of a model server subprocess (`model_worker.py`): start, wait healthy, invoke, stop."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from localaws.sagemaker import roles
from localaws.sagemaker.common import LogSink, Tail, child_env, kill_tree, pump_lines, spawn
from localaws.sagemaker.platform import PlatformDenied, RoleSession

WORKER_SCRIPT = Path(__file__).with_name("model_worker.py")
#: Seconds a model server may take to load its model before the endpoint fails.
STARTUP_TIMEOUT = float(os.environ.get("LOCALAWS_MODEL_STARTUP_TIMEOUT", "300"))
#: Seconds one invocation may take (SageMaker's limit is 60 s).
INVOKE_TIMEOUT = float(os.environ.get("LOCALAWS_INVOKE_TIMEOUT", "60"))


class WorkerFailed(Exception):
    """The model server could not start; the message says why."""


class Worker:
    """One model server process for one model (an endpoint variant or a transform job)."""

    def __init__(
        self,
        account: str,
        region: str,
        model: dict[str, Any],
        root: Path,
        log_group: str,
        log_stream: str,
        extra_env: dict[str, str] | None = None,
    ):
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        self.role_arn, self.model_arn = model.get("ExecutionRoleArn"), model.get("ModelArn", "")
        self.model_data_url = container.get("ModelDataUrl") or ""
        self.env = {**(container.get("Environment") or {}), **(extra_env or {})}
        self.account, self.region, self.root = account, region, root
        self.image = container.get("Image") or ""
        self.log_group, self.log_stream = log_group, log_stream
        self.sink: LogSink | None = None  # opened as the execution role by start()
        self.session: RoleSession | None = None
        self.tail = Tail(20)
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)

    def start(self) -> None:
        """Spawn the model server (returns at once; use `wait_ready`)."""
        if not self.model_data_url:
            raise WorkerFailed("the model has no PrimaryContainer.ModelDataUrl")
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            str(WORKER_SCRIPT),
            "--model-data-url",
            self.model_data_url,
            "--model-dir",
            str(self.root / "model"),
            "--port-file",
            str(self.root / "port"),
            "--failure-file",
            str(self.root / "failure"),
        ]
        try:
            self.session = RoleSession.assume(self.role_arn, self.account, self.region, self.model_arn)
            self.session.pull_image(self.image)
        except (roles.RoleUnusable, PlatformDenied) as exc:
            raise WorkerFailed(str(exc)) from exc
        self.sink = self.session.log_sink(self.log_group, self.log_stream)
        with self._lock:
            if self._stopped:
                raise WorkerFailed("stopped before start")
            self.proc = spawn(argv, self.root, child_env(self.region, self.session.credentials, self.env))
        pump_lines(self.proc.stdout, [self.sink.write])
        pump_lines(self.proc.stderr, [self.sink.write, self.tail])

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Block until /ping answers 200; raise WorkerFailed with the reason otherwise."""
        deadline = time.monotonic() + timeout
        port_file = self.root / "port"
        while time.monotonic() < deadline:
            if self._stopped:
                raise WorkerFailed("the model server was stopped")
            if self.proc.poll() is not None:
                time.sleep(0.1)  # let the log pumps catch up
                failure = self.root / "failure"
                if failure.is_file() and failure.read_text().strip():
                    raise WorkerFailed(failure.read_text().strip())
                raise WorkerFailed(f"model server exited with code {self.proc.returncode}: {self.tail.text(400)}")
            if port_file.is_file():
                self.port = int(port_file.read_text())
                try:
                    status, _, _ = self._request("GET", "/ping", b"", {}, timeout=5)
                    if status == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise WorkerFailed(f"model server did not pass the ping health check within {timeout:.0f} s")

    def _request(
        self, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type", ""), resp.read()
        finally:
            conn.close()

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[int, str, bytes]:
        """POST /invocations; returns (status, content type, body)."""
        headers = {"Content-Type": content_type or "application/octet-stream"}
        if accept:
            headers["Accept"] = accept
        with self._lock:
            self._in_flight += 1
        try:
            return self._request("POST", "/invocations", body, headers, timeout=INVOKE_TIMEOUT)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._idle.notify_all()

    def drain(self, timeout: float = INVOKE_TIMEOUT) -> None:
        """Wait (at most ``timeout``) until no request is in flight; new ones must be routed elsewhere first."""
        with self._lock:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Kill the model server (idempotent)."""
        with self._lock:
            self._stopped = True
            proc = self.proc
        if proc is not None:
            kill_tree(proc, grace=1.0)

    shutdown = stop
