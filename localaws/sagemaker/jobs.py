"""Running job processes: spawn per host, stream logs, enforce stop requests and max runtime."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localaws.sagemaker.common import LogSink, Tail, kill_tree, now, pump_lines, spawn


def set_attrs(fake: Any, **values: Any) -> None:
    """Update a moto Fake object from a job thread (attributes pre-created at create time)."""
    for key, value in values.items():
        setattr(fake, key, value)
    if hasattr(fake, "last_modified_time"):
        fake.last_modified_time = now()


@dataclass
class HostProcess:
    """One host's command line, working dir, environment and log stream name."""

    host: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    stream: str
    banner: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """How a set of host processes ended."""

    kind: str  # "ok" | "failed" | "stopped" | "timeout"
    returncode: int = 0
    host: str = ""
    tail: str = ""
    lines: list[str] = field(default_factory=list)


class JobRun:
    """Base of a job's background thread: owns its processes, honours stop and max runtime."""

    def __init__(self, account: str, region: str, name: str, log_group: str):
        self.account, self.region, self.name, self.log_group = account, region, name, log_group
        self.stop_event = threading.Event()
        self.stop_kind = "stopped"
        self._procs: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._dead = False
        self.session: Any = None  #: the execution role session (platform.RoleSession) once assumed
        self.thread = threading.Thread(target=self._main, daemon=True, name=f"localaws-{name}")

    def start(self) -> None:
        """Start the job thread."""
        self.thread.start()

    def _main(self) -> None:
        raise NotImplementedError

    def request_stop(self) -> None:
        """Ask the job to stop (StopTrainingJob / StopProcessingJob); returns at once."""
        self.stop_event.set()

    def shutdown(self) -> None:
        """Kill every process at once (emulator exit or state reset)."""
        self._dead = True
        self.stop_event.set()
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            kill_tree(proc, grace=0.5)

    def sink(self, stream: str) -> LogSink:
        """A CloudWatch Logs writer for this job's log group (as the execution role, once assumed)."""
        if self.session is not None:
            return self.session.log_sink(self.log_group, stream)
        return LogSink(self.account, self.region, self.log_group, stream)

    def run_hosts(
        self, hosts: list[HostProcess], max_runtime: float | None, collect_lines: bool = False
    ) -> Outcome:
        """Run one process per host until all exit, one fails, a stop is requested or time runs out."""
        started = time.monotonic()
        running: list[tuple[HostProcess, subprocess.Popen, Tail, list[threading.Thread]]] = []
        all_lines: list[str] = []
        outcome: Outcome | None = None
        for host in hosts:
            sink = self.sink(host.stream)
            for line in host.banner:
                sink.write(line)
            tail = Tail(20)
            with self._lock:
                if self._dead:
                    break
                try:
                    proc = spawn(host.argv, host.cwd, host.env)
                except OSError as exc:  # e.g. the entrypoint does not exist or is not executable
                    message = f"cannot execute {host.argv[0] if host.argv else '(empty command)'}: {exc}"
                    sink.write(message)
                    outcome = Outcome("failed", 127, host.host, message)
                    break
                self._procs.append(proc)
            out_sinks = [sink.write] + ([all_lines.append] if collect_lines else [])
            err_sinks = [sink.write, tail] + ([all_lines.append] if collect_lines else [])
            pumps = [pump_lines(proc.stdout, out_sinks), pump_lines(proc.stderr, err_sinks)]
            running.append((host, proc, tail, pumps))

        while outcome is None:
            if self.stop_event.is_set():
                outcome = Outcome(self.stop_kind)
                break
            if max_runtime is not None and time.monotonic() - started > max_runtime:
                outcome = Outcome("timeout")
                break
            codes = [proc.poll() for _, proc, _, _ in running]
            for (host, _proc, tail, pumps), code in zip(running, codes, strict=True):
                if code not in (None, 0):
                    for pump in pumps:
                        pump.join(timeout=2)
                    outcome = Outcome("failed", code, host.host, tail.text())
                    break
            else:
                if all(code == 0 for code in codes):
                    outcome = Outcome("ok")
                    break
                time.sleep(0.05)

        for _, proc, _, _ in running:
            kill_tree(proc)
        for _, _, _, pumps in running:
            for pump in pumps:
                pump.join(timeout=2)
        outcome.lines = all_lines
        return outcome


def scrape_metrics(lines: list[str], definitions: list[dict[str, str]] | None) -> list[dict[str, Any]]:
    """FinalMetricDataList: the last value each MetricDefinitions regex matched in the log."""
    found: dict[str, float] = {}
    for definition in definitions or []:
        try:
            pattern = re.compile(definition["Regex"])
        except (re.error, KeyError):
            continue
        for line in lines:
            for match in pattern.finditer(line):
                try:
                    found[definition["Name"]] = float(match.group(1))
                except (IndexError, ValueError, TypeError):
                    continue
    stamp = now()
    return [{"MetricName": name, "Value": value, "Timestamp": stamp} for name, value in found.items()]


def path_rewriter(mapping: dict[str, str]):
    """A function replacing every container path prefix in `mapping` by its local dir, in one pass."""
    if not mapping:
        return lambda text: text
    keys = sorted(mapping, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(k) for k in keys))
    return lambda text: pattern.sub(lambda m: mapping[m.group(0)], text) if isinstance(text, str) else text
