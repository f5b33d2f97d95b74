"""Training jobs in SageMaker script mode: stage inputs, run the entry point per host, upload the model.

Container paths map to `$LOCALAWS_HOME/training/<job>/`: `code/`, `input/data/<channel>/`,
`input/config/*.json`, `model/`, `output/` (`output/data/`, `output/failure`), and
`CheckpointConfig.LocalPath` (default `/opt/ml/checkpoints`) to `checkpoints/`. Hosts algo-2..algo-N
get their own `algo-K/{model,output,input/config}` beside algo-1's. Container paths in
hyperparameter values, Environment values and ContainerEntrypoint/ContainerArguments are rewritten
to these dirs (the job has no container to mount them in); nothing else of the request changes.

The job's environment is the toolkits' (`toolkit.py`): the SM_* variables of `sagemaker-training`
and MASTER_ADDR/MASTER_PORT of the PyTorch container, no emulator-only variable. Checkpoints sync
as on SageMaker: downloaded from `CheckpointConfig.S3Uri` before the script starts, uploaded while it
runs (every LOCALAWS_CHECKPOINT_SYNC_SECONDS, default 2) and once more when it ends.

Status semantics (documented choice): StopTrainingJob → Stopping → Stopped, MaxRuntimeInSeconds
exceeded → Stopped with SecondaryStatus MaxRuntimeExceeded and FailureReason
"Training job runtime exceeded MaxRuntimeInSeconds provided"; in both cases the process tree gets
SIGTERM (SIGKILL after LOCALAWS_STOP_GRACE_SECONDS) and the model dir is still uploaded, like
SageMaker, which saves artifacts of a stopped job.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localaws.sagemaker import roles
from localaws.sagemaker.common import (
    child_env,
    download_s3_data,
    extract_tarball,
    free_port,
    make_tarball,
    now,
    parse_s3_uri,
    python_bin_dir,
    trim_reason,
    unquote_hp,
    upload_dir,
    work_dir,
)
from localaws.sagemaker.jobs import HostProcess, JobRun, Outcome, path_rewriter, scrape_metrics, set_attrs
from localaws.sagemaker.platform import PlatformDenied, RoleSession
from localaws.sagemaker.toolkit import HostView, cmd_args, pytorch_env, resource_config

#: Default CheckpointConfig.LocalPath (SageMaker's documented default).
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
#: Seconds between checkpoint uploads while a job runs.
CHECKPOINT_SYNC_SECONDS = float(os.environ.get("LOCALAWS_CHECKPOINT_SYNC_SECONDS", "2"))

LOG_GROUP = "/aws/sagemaker/TrainingJobs"

_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "The training job was stopped",
    "MaxRuntimeExceeded": "Training job runtime exceeded MaxRuntimeInSeconds provided",
}


class JobSetupError(Exception):
    """A problem with the request found while staging (becomes FailureReason)."""


def initial_attrs() -> dict[str, Any]:
    """Attributes every emulated training job has from creation on (so threads never add keys)."""
    return {
        "training_job_status": "InProgress",
        "secondary_status": "Starting",
        "failure_reason": None,
        "model_artifacts": None,
        "training_start_time": None,
        "training_end_time": None,
        "secondary_status_transitions": [],
        "final_metric_data_list": None,
        "billable_time_in_seconds": None,
        "training_time_in_seconds": None,
    }


@dataclass
class _Plan:
    """What every host of a training job shares once its inputs are staged."""

    root: Path
    code_dir: Path
    ckpt: Path
    ckpt_local_path: str
    bin_dir: Path
    raw_hps: dict[str, Any]
    submit: Any
    program: Any
    entrypoint: Any
    algo: dict[str, Any]
    channels: list[str]
    input_data_config: dict[str, Any]
    resource: dict[str, Any]
    host_names: list[str]
    master_port: int
    epoch: int
    credentials: dict[str, str]

    def container_paths(self, host_root: Path) -> dict[str, str]:
        """Container path → local dir, as one host sees them."""
        return {
            "/opt/ml/input": str(host_root / "input"),
            "/opt/ml/model": str(host_root / "model"),
            "/opt/ml/output": str(host_root / "output"),
            "/opt/ml/code": str(self.code_dir),
            self.ckpt_local_path: str(self.ckpt),
        }

    def channel_dirs(self, host_root: Path) -> dict[str, str]:
        """Each channel's data dir as one host sees it."""
        return {c: str(host_root / "input" / "data" / c) for c in self.channels}


def rewrite_paths(mapping: dict[str, str], value: Any) -> Any:
    """`value` with a leading container path replaced by its local dir (other values unchanged)."""
    if not isinstance(value, str):
        return value
    for container in sorted(mapping, key=len, reverse=True):
        if value == container or value.startswith(container.rstrip("/") + "/"):
            return mapping[container] + value[len(container.rstrip("/")):]
    return value


class CheckpointSync:
    """Uploads new or changed files of the checkpoint dir to CheckpointConfig.S3Uri while a job runs."""

    def __init__(self, src: Path, uri: str, s3: Any):
        self.src, self.uri, self.s3 = src, uri, s3
        self._seen: dict[Path, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="localaws-checkpoint-sync")

    def start(self) -> None:
        """Start the background uploads."""
        self._thread.start()

    def stop(self) -> None:
        """Stop uploading (the job's final sync uploads the rest)."""
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(CHECKPOINT_SYNC_SECONDS):
            try:
                self.sync_once()
            except Exception:  # noqa: BLE001 - a file being written or a reset; the next pass retries
                continue

    def sync_once(self) -> None:
        """Upload every file whose size or mtime changed since the last pass."""
        bucket, prefix = parse_s3_uri(self.uri)
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        for path in sorted(p for p in self.src.rglob("*") if p.is_file()):
            stat = path.stat()
            stamp = (stat.st_size, stat.st_mtime_ns)
            if self._seen.get(path) != stamp:
                self.s3.upload_file(str(path), bucket, prefix + path.relative_to(self.src).as_posix())
                self._seen[path] = stamp


def _rewrite_raw_hp(paths: dict[str, str], raw: Any) -> Any:
    """A hyperparameter as sent (maybe JSON-encoded), with a leading container path made local."""
    value = unquote_hp(raw)
    local = rewrite_paths(paths, value)
    if local == value:
        return raw
    return json.dumps(local) if isinstance(raw, str) and raw != value else local


class TrainingRun(JobRun):
    """Runs one training job in a background thread, updating its FakeTrainingJob."""

    def __init__(self, job: Any, request: dict[str, Any], account: str, region: str):
        super().__init__(account, region, request["TrainingJobName"], LOG_GROUP)
        self.job = job
        self.req = request
        self._argv_for_message: list[str] = []

    # -- status -------------------------------------------------------------------------------
    def transition(self, secondary: str, message: str | None = None, status: str | None = None) -> None:
        """Close the current secondary status and open `secondary`."""
        stamp = now()
        transitions = [dict(t) for t in (self.job.secondary_status_transitions or [])]
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = stamp
        entry = {"Status": secondary, "StartTime": stamp, "StatusMessage": message or _MESSAGES.get(secondary, "")}
        if secondary in ("Completed", "Failed", "Stopped", "MaxRuntimeExceeded"):
            entry["EndTime"] = stamp
        transitions.append(entry)
        values: dict[str, Any] = {"secondary_status": secondary, "secondary_status_transitions": transitions}
        if status:
            values["training_job_status"] = status
        set_attrs(self.job, **values)

    def request_stop(self) -> None:
        """StopTrainingJob: status Stopping now, Stopped once the processes are gone."""
        if self.job.training_job_status == "InProgress":
            self.transition("Stopping", status="Stopping")
        super().request_stop()

    # -- main -------------------------------------------------------------------------------
    def _main(self) -> None:
        root = work_dir("training", self.name)
        try:
            self.transition("Starting")
            time.sleep(0.2)  # visible to a poller, like instance launch
            if self.stop_event.is_set():
                self._finish_stopped()
                return
            self.transition("Downloading")
            s3 = self._assume_role()
            hosts = self._stage(root, s3)
            if self.stop_event.is_set():
                self._finish_stopped()
                return
            start = now()
            set_attrs(self.job, training_start_time=start)
            self.transition("Training")
            max_runtime = (self.req.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
            sync = self._checkpoint_syncer(root)
            try:
                outcome = self.run_hosts(hosts, float(max_runtime) if max_runtime else None, collect_lines=True)
            finally:
                if sync is not None:
                    sync.stop()
            self._after_run(root, s3, outcome, start)
        except JobSetupError as exc:
            self._fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - any emulator error must end the job, not hang it
            traceback.print_exc()
            self._fail(f"InternalServerError: localaws could not run the job: {type(exc).__name__}: {exc}")

    def _after_run(self, root: Path, s3: Any, outcome: Outcome, start: Any) -> None:
        if self._dead:
            return
        end = now()
        seconds = max(1, int(round((end - start).total_seconds())))
        count = int((self.req.get("ResourceConfig") or {}).get("InstanceCount") or 1)
        metrics = scrape_metrics(outcome.lines, (self.req.get("AlgorithmSpecification") or {}).get("MetricDefinitions"))
        set_attrs(
            self.job,
            training_end_time=end,
            training_time_in_seconds=seconds,
            billable_time_in_seconds=seconds * count,
            final_metric_data_list=metrics or None,
        )
        self.session.publish_training_metrics(self.name, metrics)
        if outcome.kind == "failed":
            self._sync_checkpoints(root, s3)
            failure = root / ("output" if outcome.host in ("", "algo-1") else f"{outcome.host}/output") / "failure"
            if failure.is_file() and failure.read_text(errors="replace").strip():
                reason = "AlgorithmError: " + failure.read_text(errors="replace").strip()
            else:
                cmd = " ".join(shlex.quote(a) for a in self._argv_for_message)
                reason = (
                    f"AlgorithmError: ExecuteUserScriptError:\nExitCode {outcome.returncode}\n"
                    f'ErrorMessage "{outcome.tail[-700:]}"\nCommand "{cmd}", exit code: {outcome.returncode}'
                )
            self._fail(reason)
            return
        self.transition("Uploading")
        try:
            self._upload_outputs(root, s3)
        except Exception as exc:  # noqa: BLE001 - denied or failed upload: the job fails with the reason
            out = (self.req.get("OutputDataConfig") or {}).get("S3OutputPath")
            self._fail(f"ClientError: could not upload the job's output to {out}: {exc}")
            return
        if outcome.kind == "ok":
            self.transition("Completed", status="Completed")
        elif outcome.kind == "timeout":
            set_attrs(self.job, failure_reason=_MESSAGES["MaxRuntimeExceeded"])
            self.transition("MaxRuntimeExceeded", status="Stopped")
        else:
            self.transition("Stopped", status="Stopped")

    def _finish_stopped(self) -> None:
        """Stopped before the entry point ran: nothing to upload."""
        set_attrs(self.job, training_end_time=now())
        self.transition("Stopped", status="Stopped")

    def _fail(self, reason: str) -> None:
        if self._dead:
            return
        set_attrs(self.job, failure_reason=trim_reason(reason), training_end_time=self.job.training_end_time or now())
        self.transition("Failed", status="Failed")

    # -- staging ----------------------------------------------------------------------------
    def _stage(self, root: Path, s3: Any) -> list[HostProcess]:
        """Stage code, channels and checkpoints once, then each host's dirs, config, env and command."""
        plan = self._stage_inputs(root, s3)
        return [self._stage_host(plan, index, host) for index, host in enumerate(plan.host_names)]

    def _stage_inputs(self, root: Path, s3: Any) -> _Plan:
        """Resolve hyperparameters and entry point, download code, channels and checkpoints."""
        req = self.req
        raw_hps = dict(req.get("HyperParameters") or {})
        hps = {k: unquote_hp(v) for k, v in raw_hps.items()}
        algo = req.get("AlgorithmSpecification") or {}
        code_dir = root / "code"
        code_dir.mkdir()
        submit = hps.get("sagemaker_submit_directory")
        program = hps.get("sagemaker_program")
        entrypoint = algo.get("ContainerEntrypoint")
        if entrypoint is None and not program:
            raise JobSetupError(
                "ClientError: localaws runs script-mode jobs only: hyperparameter 'sagemaker_program' "
                "(and 'sagemaker_submit_directory') or AlgorithmSpecification.ContainerEntrypoint is required"
            )
        epoch = int(time.time())
        sink = self.sink(f"{self.name}/algo-1-{epoch}")  # toolkit messages go to algo-1's stream, as on SageMaker
        if submit:
            self._stage_sourcedir(str(submit), code_dir, root, s3)
            if (code_dir / "requirements.txt").exists():
                sink.write("requirements.txt found: pip install is skipped locally (the emulator's env is used)")
        channels, input_data_config = self._stage_channels(root, s3, algo)
        ckpt = self._restore_checkpoints(root, s3, sink)
        resource = req.get("ResourceConfig") or {}
        count = int(resource.get("InstanceCount") or 1)
        return _Plan(
            root=root,
            code_dir=code_dir,
            ckpt=ckpt,
            ckpt_local_path=((req.get("CheckpointConfig") or {}).get("LocalPath") or CHECKPOINT_LOCAL_PATH).rstrip("/"),
            bin_dir=python_bin_dir(root),
            raw_hps=raw_hps,
            submit=submit,
            program=program,
            entrypoint=entrypoint,
            algo=algo,
            channels=channels,
            input_data_config=input_data_config,
            resource=resource,
            host_names=[f"algo-{i}" for i in range(1, count + 1)],
            master_port=free_port(),
            epoch=epoch,
            credentials=self.session.credentials,
        )

    def _assume_role(self) -> Any:
        """Assume RoleArn as SageMaker does and pull the image as that role; an S3 client signed with it."""
        try:
            self.session = RoleSession.assume(self.req.get("RoleArn"), self.account, self.region, self.job.arn)
            self.session.pull_image((self.req.get("AlgorithmSpecification") or {}).get("TrainingImage"))
        except (roles.RoleUnusable, PlatformDenied) as exc:
            raise JobSetupError(f"ClientError: {exc}") from exc
        return self.session.s3()

    def _stage_channels(self, root: Path, s3: Any, algo: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        """Download each InputDataConfig channel to input/data/<name>; its names and inputdataconfig.json."""
        channels: list[str] = []
        input_data_config: dict[str, Any] = {}
        for channel in self.req.get("InputDataConfig") or []:
            name = channel["ChannelName"]
            source = (channel.get("DataSource") or {}).get("S3DataSource")
            if not source:
                raise JobSetupError(f"ClientError: channel {name!r}: only S3DataSource is supported locally")
            dest = root / "input" / "data" / name
            try:
                download_s3_data(s3, source["S3Uri"], dest, source.get("S3DataType", "S3Prefix"))
            except Exception as exc:  # noqa: BLE001
                raise JobSetupError(
                    f"ClientError: could not download channel {name!r} from {source.get('S3Uri')}: {exc}"
                ) from exc
            channels.append(name)
            input_data_config[name] = {
                "TrainingInputMode": channel.get("InputMode") or algo.get("TrainingInputMode", "File"),
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
            if channel.get("ContentType"):
                input_data_config[name]["ContentType"] = channel["ContentType"]
        return channels, input_data_config

    def _restore_checkpoints(self, root: Path, s3: Any, sink: Any) -> Path:
        """Create checkpoints/ and fill it from CheckpointConfig.S3Uri, if one is given."""
        ckpt = root / "checkpoints"
        ckpt.mkdir()
        ckpt_uri = (self.req.get("CheckpointConfig") or {}).get("S3Uri")
        if ckpt_uri:
            n = download_s3_data(s3, ckpt_uri, ckpt)
            sink.write(f"restored {n} checkpoint file(s) from {ckpt_uri}")
        return ckpt

    def _stage_host(self, plan: _Plan, index: int, host: str) -> HostProcess:
        """One host's dirs and config files, environment and command line."""
        host_root = plan.root if index == 0 else plan.root / host
        paths = plan.container_paths(host_root)
        raw_hps = {k: _rewrite_raw_hp(paths, v) for k, v in plan.raw_hps.items()}
        view = HostView(
            job_name=self.name,
            host=host,
            hosts=plan.host_names,
            instance_type=plan.resource.get("InstanceType", "local"),
            hyperparameters={k: unquote_hp(v) for k, v in raw_hps.items()},
            input_data_config=plan.input_data_config,
            channel_dirs=plan.channel_dirs(host_root),
            model_dir=str(host_root / "model"),
            input_dir=str(host_root / "input"),
            output_dir=str(host_root / "output"),
            num_cpus=os.cpu_count() or 1,
            region=self.region,
        )
        self._write_host_config(plan, index, host_root, raw_hps, view)
        env = {
            **view.env_vars(),
            **pytorch_env("127.0.0.1", plan.master_port),
            "TRAINING_JOB_NAME": self.name,
            "TRAINING_JOB_ARN": self.job.arn,
        }
        env.update({k: rewrite_paths(paths, str(v)) for k, v in (self.req.get("Environment") or {}).items()})
        argv = self._host_argv(plan, host_root, view)
        self._argv_for_message = argv
        return HostProcess(
            host=host,
            argv=argv,
            cwd=plan.code_dir,
            env=child_env(self.region, plan.credentials, env, plan.bin_dir),
            stream=f"{self.name}/{host}-{plan.epoch}",
            banner=["Invoking script with the following command:", " ".join(shlex.quote(a) for a in argv)],
        )

    def _write_host_config(self, plan: _Plan, index: int, host_root: Path, raw_hps: dict[str, Any],
                           view: HostView) -> None:
        """Create the host's input/config, model and output dirs and write its three config JSON files."""
        config_dir = host_root / "input" / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        if index > 0:
            (host_root / "input" / "data").symlink_to(plan.root / "input" / "data", target_is_directory=True)
        model_dir, output_dir = host_root / "model", host_root / "output"
        (output_dir / "data").mkdir(parents=True, exist_ok=True)
        model_dir.mkdir(parents=True, exist_ok=True)
        config = resource_config(view.host, view.hosts, view.instance_type)
        (config_dir / "hyperparameters.json").write_text(json.dumps(raw_hps))
        (config_dir / "resourceconfig.json").write_text(json.dumps(config))
        (config_dir / "inputdataconfig.json").write_text(json.dumps(plan.input_data_config))

    def _host_argv(self, plan: _Plan, host_root: Path, view: HostView) -> list[str]:
        """The host's command line: the rewritten ContainerEntrypoint, or the script-mode entry point."""
        if plan.entrypoint is not None:
            rewrite = path_rewriter(plan.container_paths(host_root))
            argv = [rewrite(a) for a in list(plan.entrypoint) + list(plan.algo.get("ContainerArguments") or [])]
            if argv and argv[0] in ("python", "python3"):
                argv[0] = sys.executable
            return argv
        entry = plan.code_dir / str(plan.program)
        if not entry.is_file():
            raise JobSetupError(
                f"ClientError: entry point {plan.program!r} not found in sagemaker_submit_directory {plan.submit}"
            )
        args = cmd_args(view.user_hps)
        if str(plan.program).endswith(".sh"):
            return ["/bin/sh", str(plan.program), *args]
        return [sys.executable, str(plan.program), *args]

    def _stage_sourcedir(self, submit: str, code_dir: Path, root: Path, s3: Any) -> None:
        if submit.startswith("s3://"):
            archive = root / "sourcedir.tar.gz"
            bucket, key = parse_s3_uri(submit)
            try:
                s3.download_file(bucket, key, str(archive))
            except Exception as exc:  # noqa: BLE001
                raise JobSetupError(f"ClientError: could not download sagemaker_submit_directory {submit}: {exc}") from exc
            extract_tarball(archive, code_dir)
        elif submit.startswith("file://") or os.path.exists(submit):
            local = Path(submit.removeprefix("file://"))
            if local.is_dir():
                import shutil

                shutil.copytree(local, code_dir, dirs_exist_ok=True)
            else:
                extract_tarball(local, code_dir)
        else:
            raise JobSetupError(
                f"ClientError: sagemaker_submit_directory {submit!r} is neither an S3 URI nor an existing local path"
            )

    # -- outputs ----------------------------------------------------------------------------
    def _checkpoint_syncer(self, root: Path) -> CheckpointSync | None:
        """Start uploading checkpoints while the script runs (None without CheckpointConfig.S3Uri)."""
        uri = (self.req.get("CheckpointConfig") or {}).get("S3Uri")
        if not uri:
            return None
        sync = CheckpointSync(root / "checkpoints", uri, self.session.s3())
        sync.start()
        return sync

    def _sync_checkpoints(self, root: Path, s3: Any) -> None:
        uri = (self.req.get("CheckpointConfig") or {}).get("S3Uri")
        if uri:
            upload_dir(s3, root / "checkpoints", uri)

    def _upload_outputs(self, root: Path, s3: Any) -> None:
        self._sync_checkpoints(root, s3)
        out = (self.req.get("OutputDataConfig") or {}).get("S3OutputPath")
        if not out:
            return
        bucket, prefix = parse_s3_uri(out)
        base = f"{prefix.rstrip('/')}/{self.name}/output/" if prefix.strip("/") else f"{self.name}/output/"
        model_tar = make_tarball(root / "model", root / "upload" / "model.tar.gz")
        s3.upload_file(str(model_tar), bucket, base + "model.tar.gz")
        data_dir = root / "output" / "data"
        if data_dir.is_dir() and any(data_dir.iterdir()):
            output_tar = make_tarball(data_dir, root / "upload" / "output.tar.gz")
            s3.upload_file(str(output_tar), bucket, base + "output.tar.gz")
        set_attrs(self.job, model_artifacts={"S3ModelArtifacts": f"s3://{bucket}/{base}model.tar.gz"})
