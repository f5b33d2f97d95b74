"""Processing jobs: stage ProcessingInputs, run the container entrypoint locally, upload ProcessingOutputs.

Every container path (each input/output `LocalPath`, and `/opt/ml/processing`) maps to
`$LOCALAWS_HOME/processing/<job>/fs/<path>`; occurrences in ContainerEntrypoint,
ContainerArguments and Environment values are rewritten. `python`/`python3` run with the
emulator's interpreter. Outputs are uploaded at the end (also for a failed or stopped job, like
SageMaker's EndOfJob upload).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localaws.sagemaker import roles
from localaws.sagemaker.common import (
    child_env,
    download_s3_data,
    extract_tarball,
    now,
    python_bin_dir,
    trim_reason,
    upload_dir,
    work_dir,
)
from localaws.sagemaker.jobs import HostProcess, JobRun, Outcome, path_rewriter, set_attrs
from localaws.sagemaker.platform import PlatformDenied, RoleSession

LOG_GROUP = "/aws/sagemaker/ProcessingJobs"

Rewrite = Callable[[str], str]  # container path -> local path, see path_rewriter


def initial_attrs(request: dict[str, Any]) -> dict[str, Any]:
    """Attributes every emulated processing job has from creation on."""
    return {
        "processing_job_status": "InProgress",
        "processing_start_time": None,
        "processing_end_time": None,
        "exit_message": None,
        "failure_reason": None,
        "environment": request.get("Environment"),
        "processing_resources": request.get("ProcessingResources"),
    }


def _container_paths(fs: Path, inputs: list[dict], outputs: list[dict]) -> Rewrite:
    """A rewriter mapping /opt/ml/processing and every input/output LocalPath under the job's fs dir."""
    mapping = {"/opt/ml/processing": str(fs / "opt/ml/processing")}
    for item in [*inputs, *outputs]:
        local = (item.get("S3Input") or item.get("S3Output") or {}).get("LocalPath")
        if local:
            mapping[local.rstrip("/")] = str(fs / local.strip("/"))
    return path_rewriter(mapping)


class ProcessingRun(JobRun):
    """Runs one processing job in a background thread, updating its FakeProcessingJob."""

    def __init__(self, job: Any, request: dict[str, Any], account: str, region: str):
        super().__init__(account, region, request["ProcessingJobName"], LOG_GROUP)
        self.job = job
        self.req = request

    def request_stop(self) -> None:
        """StopProcessingJob: Stopping now, Stopped once the process tree is gone."""
        if self.job.processing_job_status == "InProgress":
            set_attrs(self.job, processing_job_status="Stopping")
        super().request_stop()

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - any emulator error must end the job, not hang it
            traceback.print_exc()
            self._finish("Failed", f"InternalServerError: localaws could not run the job: {type(exc).__name__}: {exc}")

    def _finish(self, status: str, reason: str | None = None, exit_message: str | None = None) -> None:
        if self._dead:
            return
        set_attrs(
            self.job,
            failure_reason=trim_reason(reason) if reason else None,
            exit_message=trim_reason(exit_message) if exit_message else None,
            processing_end_time=now(),
        )
        set_attrs(self.job, processing_job_status=status)

    def _run(self) -> None:
        """Stage the inputs, run the entrypoint as algo-1, upload the outputs and set the final status."""
        root = work_dir("processing", self.name)
        fs = root / "fs"
        app = self.req.get("AppSpecification") or {}
        inputs = self.req.get("ProcessingInputs") or []
        outputs = (self.req.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        rewrite = _container_paths(fs, inputs, outputs)
        time.sleep(0.2)  # instance start, visible to a poller
        if self.stop_event.is_set():
            self._finish("Stopped")
            return
        s3 = self._assume_role(app)
        if s3 is None or not self._stage_inputs(s3, inputs, outputs, rewrite):
            return
        host = self._host_process(root, fs, app, rewrite)
        if host is None:
            return
        set_attrs(self.job, processing_start_time=now())
        max_runtime = (self.req.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        outcome = self.run_hosts([host], float(max_runtime) if max_runtime else None)
        if self._dead:
            return
        for item in outputs:
            out = item["S3Output"]
            try:
                upload_dir(s3, Path(rewrite(out["LocalPath"].rstrip("/"))), out["S3Uri"])
            except Exception as exc:  # noqa: BLE001 - denied or failed upload: the job fails with the reason
                self._finish("Failed", f"ClientError: could not upload output {item.get('OutputName')!r} "
                                       f"to {out['S3Uri']}: {exc}")
                return
        self._finish_with(outcome)

    def _assume_role(self, app: dict) -> Any:
        """Assume RoleArn as SageMaker does and pull the image as that role; an S3 client signed with
        the role session, or None once the job has failed."""
        try:
            self.session = RoleSession.assume(self.req.get("RoleArn"), self.account, self.region, self.job.arn)
            self.session.pull_image(app.get("ImageUri"))
        except (roles.RoleUnusable, PlatformDenied) as exc:
            self._finish("Failed", f"ClientError: {exc}")
            return None
        return self.session.s3()

    def _stage_inputs(self, s3: Any, inputs: list[dict], outputs: list[dict], rewrite: Rewrite) -> bool:
        """Download every ProcessingInput and create every output dir; False once the job has failed."""
        for item in inputs:
            source = item.get("S3Input")
            if not source:
                self._finish("Failed", f"ClientError: input {item.get('InputName')!r}: only S3Input is supported locally")
                return False
            dest = Path(rewrite(source["LocalPath"].rstrip("/")))
            try:
                download_s3_data(s3, source["S3Uri"], dest, source.get("S3DataType", "S3Prefix"))
                if source.get("S3CompressionType") == "Gzip":
                    for archive in list(dest.rglob("*.gz")):
                        extract_tarball(archive, archive.parent)
            except Exception as exc:  # noqa: BLE001
                self._finish(
                    "Failed",
                    f"ClientError: could not download input {item.get('InputName')!r} from {source['S3Uri']}: {exc}",
                )
                return False
        for item in outputs:
            Path(rewrite(item["S3Output"]["LocalPath"].rstrip("/"))).mkdir(parents=True, exist_ok=True)
        return True

    def _host_process(self, root: Path, fs: Path, app: dict, rewrite: Rewrite) -> HostProcess | None:
        """algo-1's command line, working dir and environment; None once the job has failed."""
        argv = [rewrite(a) for a in [*(app.get("ContainerEntrypoint") or []), *(app.get("ContainerArguments") or [])]]
        if not argv:
            self._finish("Failed", "ClientError: AppSpecification.ContainerEntrypoint is required locally")
            return None
        if argv[0] in ("python", "python3") or argv[0].split("/")[-1] in ("python", "python3"):
            argv[0] = sys.executable
        env = {k: rewrite(str(v)) for k, v in (self.req.get("Environment") or {}).items()}
        env["PROCESSING_JOB_NAME"] = self.name
        credentials = self.session.credentials
        cwd = fs / "opt/ml/processing"
        cwd.mkdir(parents=True, exist_ok=True)
        return HostProcess(
            host="algo-1",
            argv=argv,
            cwd=cwd,
            env=child_env(self.region, credentials, env, python_bin_dir(root)),
            stream=f"{self.name}/algo-1-{int(time.time())}",
        )

    def _finish_with(self, outcome: Outcome) -> None:
        """The job's final status from how the entrypoint ended."""
        if outcome.kind == "ok":
            self._finish("Completed")
        elif outcome.kind == "failed":
            message = outcome.tail[-700:]
            self._finish(
                "Failed",
                f"AlgorithmError: See job logs for more information\nExitCode {outcome.returncode}: {message}",
                exit_message=message,
            )
        elif outcome.kind == "timeout":
            self._finish("Stopped", "Processing job runtime exceeded MaxRuntimeInSeconds provided")
        else:
            self._finish("Stopped")
