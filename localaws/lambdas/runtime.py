"""A warm execution environment for one Python Lambda function (see the package docstring)."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

from localaws.iam import enforcing
from localaws.iam.service_roles import assume, refusal
from localaws.sagemaker.common import LogSink, child_env, home, kill_tree, pump_lines

SERVICE = "lambda.amazonaws.com"
CHILD = Path(__file__).with_name("child.py")
#: The least seconds an invocation may take here: the first one imports the handler's module
#: on a shared machine (a cold start is not the function's own time). AWS holds to ``Timeout``.
MIN_TIMEOUT = float(os.environ.get("LOCALAWS_LAMBDA_MIN_TIMEOUT", "30"))


class LambdaUnavailable(Exception):
    """The function cannot be run here (not found, not Python, role unusable); the message says why."""


def find_function(account: str, region: str, arn: str) -> Any:
    """moto's LambdaFunction for ``arn`` (a name or an ARN, optionally qualified)."""
    from moto.awslambda.models import lambda_backends

    try:
        return lambda_backends[account][region].get_function(arn)
    except Exception as exc:  # noqa: BLE001 - moto's UnknownFunctionException and friends
        raise LambdaUnavailable(f"Function not found: {arn}") from exc


def _code_dir(fn: Any) -> Path:
    """The function's zip extracted once per code version."""
    digest = (getattr(fn, "code_sha_256", "") or "nocode").replace("/", "_").replace("+", "-")[:24]
    target = home() / "lambda" / fn.function_name / digest
    if not (target / ".extracted").exists():
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(fn.code_bytes)) as archive:
            for member in archive.infolist():
                if member.filename.startswith("/") or ".." in Path(member.filename).parts:
                    raise LambdaUnavailable(f"{fn.function_arn}: unsafe path in the code zip: {member.filename}")
            archive.extractall(target)
        (target / ".extracted").touch()
    return target


def _role_credentials(fn: Any, account: str, region: str) -> dict[str, str]:
    """The function's execution role session, as Lambda gives it to the handler."""
    if enforcing():
        why = refusal(account, fn.role or "", SERVICE, fn.function_arn)
        if why is not None:
            raise LambdaUnavailable(f"The role defined for the function cannot be assumed by Lambda ({why}).")
    try:
        return assume(account, region, fn.role, fn.function_name)
    except Exception:  # noqa: BLE001 - IAM not modelled (enforcement off): any keys will do
        if enforcing():
            raise
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class LambdaProcess:
    """One function's warm subprocess; ``invoke(event)`` → (result, error)."""

    def __init__(self, account: str, region: str, arn: str):
        fn = find_function(account, region, arn)
        if getattr(fn, "package_type", "Zip") != "Zip" or not fn.code_bytes:
            raise LambdaUnavailable(f"{fn.function_arn}: localaws runs only zip-packaged Python functions")
        if not str(fn.run_time or "").startswith("python"):
            raise LambdaUnavailable(f"{fn.function_arn}: localaws runs only Python runtimes, not {fn.run_time}")
        self.arn, self.name, self.handler = fn.function_arn, fn.function_name, fn.handler or ""
        self.timeout = max(float(fn.timeout or 3), MIN_TIMEOUT)
        self.code = _code_dir(fn)
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{abs(hash((self.arn, time.time()))):032x}"[:64]
        extra = {**{k: str(v) for k, v in (fn.environment_vars or {}).items()},
                 "AWS_LAMBDA_FUNCTION_NAME": self.name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                 "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size), "LAMBDA_TASK_ROOT": str(self.code),
                 "LOCALAWS_LAMBDA_ARN": self.arn, "LOCALAWS_LAMBDA_STREAM": stream,
                 "LOCALAWS_LAMBDA_TIMEOUT_MS": str(int(self.timeout * 1000))}
        self.env = child_env(region, _role_credentials(fn, account, region), extra)
        self.log = LogSink(account, region, f"/aws/lambda/{self.name}", stream)
        self.proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, str(CHILD), str(self.code), self.handler], cwd=str(self.code),
                                env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        pump_lines(proc.stderr, [self.log.write])
        return proc

    def invoke(self, event: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
        """Run the handler on ``event``: (result, None) or (None, Lambda's error object)."""
        with self._lock:
            if self.proc is None or self.proc.poll() is not None:
                self.proc = self._start()
            self.log.write("START Version: $LATEST")
            try:
                self.proc.stdin.write((json.dumps(event) + "\n").encode())
                self.proc.stdin.flush()
                line = self._read_line(self.proc, self.timeout)
            except (BrokenPipeError, OSError):
                line = b""
            if line is None:
                self.shutdown()
                return None, {"errorMessage": f"Task timed out after {self.timeout:.2f} seconds",
                              "errorType": "Sandbox.Timedout"}
            if not line:
                self.shutdown()
                return None, {"errorMessage": "Runtime exited without providing a reason",
                              "errorType": "Runtime.ExitError"}
            reply = json.loads(line)
            return (None, reply["error"]) if "error" in reply else (reply["ok"], None)

    @staticmethod
    def _read_line(proc: subprocess.Popen, timeout: float) -> bytes | None:
        """One answer line, b"" when the process died, None on timeout."""
        deadline = time.monotonic() + timeout
        buffer = b""
        fd = proc.stdout.fileno()
        while not buffer.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return b""
                buffer += chunk
        return buffer

    def shutdown(self) -> None:
        """Kill the execution environment (the next invoke starts a cold one)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            kill_tree(proc, grace=1.0)
