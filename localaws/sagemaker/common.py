"""Helpers shared by the SageMaker job runners: S3 staging, tarballs, child env, logs, processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

from localaws import CA_BUNDLE_ENV, ENDPOINT_ENV, FAULTS_ENV, HOME_ENV

#: Seconds between SIGTERM and SIGKILL when a job is stopped (real SageMaker waits 120 s).
STOP_GRACE_SECONDS = float(os.environ.get("LOCALAWS_STOP_GRACE_SECONDS", "5"))


def now() -> dt.datetime:
    """The current time, timezone-aware UTC (what moto puts in responses)."""
    return dt.datetime.now(dt.UTC)


def endpoint_url() -> str:
    """URL of the running emulator, as set by the server before `install()`."""
    url = os.environ.get(ENDPOINT_ENV)
    if not url:
        raise RuntimeError(f"{ENDPOINT_ENV} is not set: the emulator server must set it before jobs run")
    return url


def home() -> Path:
    """Root of the emulator's work dirs (`$LOCALAWS_HOME`, else a per-process temp dir)."""
    root = os.environ.get(HOME_ENV)
    if not root:
        root = tempfile.mkdtemp(prefix="localaws-")
        os.environ[HOME_ENV] = root
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def work_dir(kind: str, name: str) -> Path:
    """A fresh work dir `$LOCALAWS_HOME/<kind>/<name>/` (emptied if a previous run left one)."""
    path = home() / kind / name
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def aws_env(region: str, credentials: dict[str, str]) -> dict[str, str]:
    """Variables that point boto3 in a child process at the emulator, signed as `credentials`.

    `credentials` are the execution role's session (`roles.credentials`), as SageMaker gives job
    code and model servers the role's credentials, never the caller's.
    """
    env = {"AWS_ENDPOINT_URL": endpoint_url(), **credentials, "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
    if os.environ.get(CA_BUNDLE_ENV):  # `serve --tls`: trust the emulator's certificate
        env["AWS_CA_BUNDLE"] = os.environ[CA_BUNDLE_ENV]
    return env


def child_env(
    region: str,
    credentials: dict[str, str],
    extra: dict[str, str] | None = None,
    bin_dir: Path | None = None,
) -> dict[str, str]:
    """Environment for a job process: ours minus AWS secrets, plus the emulator wiring and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", FAULTS_ENV))}
    env.update(aws_env(region, credentials))
    env["PYTHONUNBUFFERED"] = "1"
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def python_bin_dir(root: Path) -> Path:
    """A dir with `python`/`python3` wrappers that exec the emulator's interpreter, to prepend to PATH.

    Wrappers rather than symlinks: a symlink to a venv's python would lose the venv.
    """
    bin_dir = root / ".bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        wrapper = bin_dir / name
        if not wrapper.exists():
            wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
            wrapper.chmod(0o755)
    return bin_dir


def s3_client(region: str, credentials: dict[str, str] | None = None):
    """A boto3 S3 client talking to the emulator itself, signed with ``credentials`` (a role session,
    as SageMaker stages data) or, without them, the admin keys."""
    import boto3
    from botocore.config import Config

    keys = credentials or {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url(),
        region_name=region,
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=keys.get("AWS_SESSION_TOKEN"),
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key); ValueError for anything else."""
    m = re.match(r"^s3://([^/]+)/?(.*)$", uri or "")
    if not m:
        raise ValueError(f"not an S3 URI: {uri!r}")
    return m.group(1), m.group(2)


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    """Every key under `prefix` (object keys ending in '/' are folder markers and skipped)."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/"))
    return keys


def relative_key(key: str, prefix: str) -> str:
    """Path of `key` below `prefix` the way SageMaker lays it out (basename for an exact-key prefix)."""
    if key == prefix:
        return key.rsplit("/", 1)[-1]
    rel = key[len(prefix) :] if key.startswith(prefix) else key
    return rel.lstrip("/")


def s3_data_objects(s3, uri: str, data_type: str | None = "S3Prefix") -> list[tuple[str, str, str]]:
    """(bucket, key, relative path) of every object an S3Prefix or ManifestFile data source names."""
    bucket, prefix = parse_s3_uri(uri)
    if data_type == "ManifestFile":
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix)["Body"].read())
        if not (isinstance(manifest, list) and manifest and isinstance(manifest[0], dict) and "prefix" in manifest[0]):
            raise ValueError(f"manifest {uri} must be a JSON list starting with {{'prefix': 's3://...'}}")
        base_bucket, base_prefix = parse_s3_uri(manifest[0]["prefix"])
        return [(base_bucket, base_prefix + rel, rel) for rel in manifest[1:]]
    if data_type in ("S3Prefix", None, ""):
        return [(bucket, k, relative_key(k, prefix)) for k in list_keys(s3, bucket, prefix)]
    raise ValueError(f"S3DataType {data_type!r} is not supported locally (use S3Prefix or ManifestFile)")


def download_s3_data(s3, uri: str, dest: Path, data_type: str | None = "S3Prefix") -> int:
    """Stage an S3Prefix or ManifestFile data source into `dest`; returns the number of files."""
    dest.mkdir(parents=True, exist_ok=True)
    pairs = s3_data_objects(s3, uri, data_type)
    for b, key, rel in pairs:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(b, key, str(target))
    return len(pairs)


def upload_dir(s3, src: Path, uri: str) -> int:
    """Upload every file under `src` to the S3 prefix `uri`, keeping relative paths."""
    bucket, prefix = parse_s3_uri(uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    count = 0
    if not src.is_dir():
        return 0
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, prefix + path.relative_to(src).as_posix())
        count += 1
    return count


def make_tarball(src: Path, dest: Path) -> Path:
    """`tar czf dest -C src .` (empty archive for a missing or empty dir)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        if src.is_dir():
            for path in sorted(src.iterdir()):
                tar.add(path, arcname=path.name)
    return dest


def extract_tarball(archive: Path, dest: Path) -> None:
    """Extract a (gzipped) tarball into `dest`, refusing members that escape it."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")


def unquote_hp(value: object) -> object:
    """Decode a hyperparameter the SDK sent JSON-encoded (`"\\"train.py\\""` → `train.py`, `"3"` → 3)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def hp_to_str(value: object) -> str:
    """A decoded hyperparameter as the script-mode toolkit puts it on the command line."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


class LogSink:
    """Appends lines to a CloudWatch Logs stream in moto's in-process logs backend."""

    def __init__(self, account_id: str, region: str, group: str, stream: str, enabled: bool = True):
        from moto.logs.models import logs_backends

        self.group, self.stream, self.enabled = group, stream, enabled
        self._backend = logs_backends[account_id][region]
        self._lock = threading.Lock()
        if not enabled:  # the execution role may not log here: AWS drops the lines
            return
        with self._lock:
            if group not in self._backend.groups:
                try:
                    self._backend.create_log_group(group, tags={})
                except Exception:  # noqa: BLE001 - created concurrently
                    pass
            try:
                self._backend.create_log_stream(group, stream)
            except Exception:  # noqa: BLE001 - already exists
                pass

    @staticmethod
    def group_exists(account_id: str, region: str, group: str) -> bool:
        """Whether the log group is there already."""
        from moto.logs.models import logs_backends

        return group in logs_backends[account_id][region].groups

    def write(self, message: str) -> None:
        """Append one log event (timestamp = now, ms)."""
        if not self.enabled:
            return
        with self._lock:
            try:
                self._backend.put_log_events(
                    self.group, self.stream, [{"timestamp": int(time.time() * 1000), "message": message}]
                )
            except Exception:  # noqa: BLE001 - state was reset under us; logs are best effort
                pass


def pump_lines(stream, sinks: Iterable[Callable[[str], None]]) -> threading.Thread:
    """Read `stream` line by line in a thread, passing each decoded line (no newline) to every sink."""
    sinks = list(sinks)

    def run() -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            for sink in sinks:
                sink(line)
        stream.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


class Tail:
    """Keeps the last `n` lines written to it."""

    def __init__(self, n: int = 20):
        self.lines: deque[str] = deque(maxlen=n)

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def text(self, max_chars: int = 900) -> str:
        """The kept lines joined, trimmed from the left to `max_chars`."""
        text = "\n".join(line for line in self.lines if line.strip())
        return text[-max_chars:]


def spawn(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a job process in its own session (so its whole tree can be killed), pipes on stdout/stderr."""
    return subprocess.Popen(
        argv,
        cwd=str(cwd),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def kill_tree(proc: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process group, then SIGKILL it after `grace` seconds if still alive."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trim_reason(text: str, limit: int = 1024) -> str:
    """FailureReason is at most 1024 characters in SageMaker."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
