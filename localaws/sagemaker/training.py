"""Training jobs in SageMaker script mode: stage inputs, run the entry point per host, upload the model.

Container paths map to `$LOCALAWS_HOME/training/<job>/`: `code/`, `input/data/<channel>/`,
`input/config/*.json`, `model/`, `output/` (`output/data/`, `output/failure`), `checkpoints/`.
Hosts algo-2..algo-N get their own `algo-K/{model,output,input/config}` beside algo-1's.

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
import time
import traceback
from pathlib import Path
from typing import Any

from localaws.sagemaker.common import (
    child_env,
    download_s3_data,
    extract_tarball,
    free_port,
    hp_to_str,
    make_tarball,
    now,
    parse_s3_uri,
    python_bin_dir,
    s3_client,
    trim_reason,
    unquote_hp,
    upload_dir,
    work_dir,
)
from localaws.sagemaker.jobs import HostProcess, JobRun, Outcome, path_rewriter, scrape_metrics, set_attrs

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
            s3 = s3_client(self.region)
            hosts = self._stage(root, s3)
            if self.stop_event.is_set():
                self._finish_stopped()
                return
            start = now()
            set_attrs(self.job, training_start_time=start)
            self.transition("Training")
            max_runtime = (self.req.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
            outcome = self.run_hosts(hosts, float(max_runtime) if max_runtime else None, collect_lines=True)
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
        self._upload_outputs(root, s3)
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

        channels: list[str] = []
        input_data_config: dict[str, Any] = {}
        for channel in req.get("InputDataConfig") or []:
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

        ckpt = root / "checkpoints"
        ckpt.mkdir()
        ckpt_uri = (req.get("CheckpointConfig") or {}).get("S3Uri")
        if ckpt_uri:
            n = download_s3_data(s3, ckpt_uri, ckpt)
            sink.write(f"restored {n} checkpoint file(s) from {ckpt_uri}")

        resource = req.get("ResourceConfig") or {}
        count = int(resource.get("InstanceCount") or 1)
        host_names = [f"algo-{i}" for i in range(1, count + 1)]
        master_port = free_port()
        user_hps = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
        user_args: list[str] = []
        for key, value in user_hps.items():
            user_args += [f"--{key}", hp_to_str(value)]
        bin_dir = python_bin_dir(root)
        hosts: list[HostProcess] = []
        for index, host in enumerate(host_names):
            host_root = root if index == 0 else root / host
            config_dir = host_root / "input" / "config"
            config_dir.mkdir(parents=True, exist_ok=True)
            if index > 0:
                (host_root / "input" / "data").symlink_to(root / "input" / "data", target_is_directory=True)
            model_dir, output_dir = host_root / "model", host_root / "output"
            (output_dir / "data").mkdir(parents=True, exist_ok=True)
            model_dir.mkdir(parents=True, exist_ok=True)
            resource_config = {"current_host": host, "hosts": host_names, "network_interface_name": "eth0"}
            (config_dir / "hyperparameters.json").write_text(json.dumps(raw_hps))
            (config_dir / "resourceconfig.json").write_text(json.dumps(resource_config))
            (config_dir / "inputdataconfig.json").write_text(json.dumps(input_data_config))
            channel_dirs = {c: str(host_root / "input" / "data" / c) for c in channels}
            module_name = Path(str(program or "")).stem
            training_env = {
                "additional_framework_parameters": {},
                "channel_input_dirs": channel_dirs,
                "current_host": host,
                "current_instance_type": resource.get("InstanceType", "local"),
                "framework_module": None,
                "hosts": host_names,
                "hyperparameters": user_hps,
                "input_config_dir": str(config_dir),
                "input_data_config": input_data_config,
                "input_dir": str(host_root / "input"),
                "is_master": index == 0,
                "job_name": self.name,
                "log_level": 20,
                "master_hostname": host_names[0],
                "model_dir": str(model_dir),
                "module_dir": str(submit or ""),
                "module_name": module_name,
                "network_interface_name": "eth0",
                "num_cpus": os.cpu_count() or 1,
                "num_gpus": 0,
                "output_data_dir": str(output_dir / "data"),
                "output_dir": str(output_dir),
                "output_intermediate_dir": str(output_dir / "intermediate"),
                "resource_config": resource_config,
                "user_entry_point": str(program or ""),
            }
            env = {
                "SM_MODEL_DIR": str(model_dir),
                "SM_CHANNELS": json.dumps(channels),
                "SM_HPS": json.dumps(user_hps),
                "SM_OUTPUT_DATA_DIR": str(output_dir / "data"),
                "SM_OUTPUT_DIR": str(output_dir),
                "SM_OUTPUT_INTERMEDIATE_DIR": str(output_dir / "intermediate"),
                "SM_INPUT_DIR": str(host_root / "input"),
                "SM_INPUT_CONFIG_DIR": str(config_dir),
                "SM_INPUT_DATA_CONFIG": json.dumps(input_data_config),
                "SM_RESOURCE_CONFIG": json.dumps(resource_config),
                "SM_NUM_GPUS": "0",
                "SM_NUM_CPUS": str(os.cpu_count() or 1),
                "SM_HOSTS": json.dumps(host_names),
                "SM_CURRENT_HOST": host,
                "SM_CURRENT_INSTANCE_TYPE": resource.get("InstanceType", "local"),
                "SM_MODULE_NAME": module_name,
                "SM_MODULE_DIR": str(submit or ""),
                "SM_USER_ENTRY_POINT": str(program or ""),
                "SM_USER_ARGS": json.dumps(user_args),
                "SM_FRAMEWORK_PARAMS": "{}",
                "SM_LOG_LEVEL": "20",
                "SM_NETWORK_INTERFACE_NAME": "eth0",
                "SM_IS_MASTER": "true" if index == 0 else "false",
                "SM_TRAINING_ENV": json.dumps(training_env),
                "SM_CHECKPOINT_DIR": str(ckpt),
                "TRAINING_JOB_NAME": self.name,
                "TRAINING_JOB_ARN": self.job.arn,
            }
            for c in channels:
                env[f"SM_CHANNEL_{c.upper()}"] = channel_dirs[c]
            for key, value in user_hps.items():
                env[f"SM_HP_{key.upper()}"] = hp_to_str(value)
            if count > 1:
                env.update(
                    {
                        "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(master_port),
                        "WORLD_SIZE": str(count),
                        "RANK": str(index),
                        "LOCAL_RANK": "0",
                        "NODE_RANK": str(index),
                    }
                )
            env.update({k: str(v) for k, v in (req.get("Environment") or {}).items()})
            if entrypoint is not None:
                rewrite = path_rewriter(
                    {
                        "/opt/ml/input": str(host_root / "input"),
                        "/opt/ml/model": str(model_dir),
                        "/opt/ml/output": str(output_dir),
                        "/opt/ml/code": str(code_dir),
                        "/opt/ml/checkpoints": str(ckpt),
                    }
                )
                argv = [rewrite(a) for a in list(entrypoint) + list(algo.get("ContainerArguments") or [])]
                if argv and argv[0] in ("python", "python3"):
                    argv[0] = sys.executable
            else:
                entry = code_dir / str(program)
                if not entry.is_file():
                    raise JobSetupError(
                        f"ClientError: entry point {program!r} not found in sagemaker_submit_directory {submit}"
                    )
                if str(program).endswith(".sh"):
                    argv = ["/bin/sh", str(program), *user_args]
                else:
                    argv = [sys.executable, str(program), *user_args]
            self._argv_for_message = argv
            hosts.append(
                HostProcess(
                    host=host,
                    argv=argv,
                    cwd=code_dir,
                    env=child_env(self.region, env, bin_dir),
                    stream=f"{self.name}/{host}-{epoch}",
                    banner=["Invoking script with the following command:", " ".join(shlex.quote(a) for a in argv)],
                )
            )
        return hosts

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
