"""The environment a script-mode training job sees, as the real toolkits build it.

Mirrors `sagemaker-training` (aws/sagemaker-training-toolkit, `environment.Environment.to_env_vars`,
`mapping.to_env_vars` / `to_cmd_args`, the `os.environ` writes in `Environment.__init__`) and the
PyTorch training container (aws/sagemaker-pytorch-training-toolkit, `training.py`:
`MASTER_ADDR`/`MASTER_PORT`). Nothing here is emulator-only: a variable the
toolkits do not set is not set (no `SM_CHECKPOINT_DIR`, `SM_IS_MASTER`, `WORLD_SIZE`, `RANK`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: Hyperparameters the toolkit keeps for itself (params.SAGEMAKER_HYPERPARAMETERS + "sagemaker_" prefix).
DISTRIBUTION_SWITCHES = (
    "sagemaker_mpi_enabled",
    "sagemaker_parameter_server_enabled",
    "sagemaker_distributed_dataparallel_enabled",
    "sagemaker_pytorch_ddp_enabled",
    "sagemaker_torch_distributed_enabled",
    "sagemaker_pytorch_xla_multi_worker_enabled",
    "sagemaker_multi_worker_mirrored_strategy_enabled",
)
GROUP = "homogeneousCluster"


def env_value(value: Any) -> str:
    """`mapping.to_env_vars`'s value format: str as is, None as "", anything else compact sorted JSON."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin1")
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def cmd_args(hyperparameters: dict[str, Any]) -> list[str]:
    """`mapping.to_cmd_args`: sorted keys, `--key` (`-k` for one letter), dicts as `k=v,k=v`."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        if hasattr(value, "items"):
            shown = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        elif isinstance(value, str):
            shown = value
        else:
            shown = "" if value is None else json.dumps(value)
        args += [f"--{key}" if len(str(key)) > 1 else f"-{key}", shown]
    return args


def resource_config(host: str, hosts: list[str], instance_type: str) -> dict[str, Any]:
    """`/opt/ml/input/config/resourceconfig.json` of one host of a homogeneous cluster."""
    return {
        "current_host": host,
        "current_instance_type": instance_type,
        "current_group_name": GROUP,
        "hosts": hosts,
        "instance_groups": [{"instance_group_name": GROUP, "instance_type": instance_type, "hosts": hosts}],
        "network_interface_name": "eth0",
    }


@dataclass
class HostView:
    """What one host's toolkit reads: its paths (as the job sees them), config files and hyperparameters."""

    job_name: str
    host: str
    hosts: list[str]
    instance_type: str
    hyperparameters: dict[str, Any]  # decoded, sagemaker_* included
    input_data_config: dict[str, Any]
    channel_dirs: dict[str, str]
    model_dir: str
    input_dir: str
    output_dir: str
    num_cpus: int
    region: str
    num_gpus: int = 0

    @property
    def user_hps(self) -> dict[str, Any]:
        """Hyperparameters passed to the script (the toolkit's `split_by_criteria(...).excluded`)."""
        return {k: v for k, v in self.hyperparameters.items() if not k.startswith("sagemaker_")}

    @property
    def framework_params(self) -> dict[str, Any]:
        """`additional_framework_parameters`: sagemaker_* hyperparameters the toolkit does not own."""
        own = {"sagemaker_program", "sagemaker_submit_directory", "sagemaker_enable_cloudwatch_metrics",
               "sagemaker_region", "sagemaker_container_log_level", "sagemaker_job_name", "sagemaker_s3_output"}
        return {k: v for k, v in self.hyperparameters.items() if k.startswith("sagemaker_") and k not in own}

    @property
    def program(self) -> str:
        """The entry point (hyperparameter `sagemaker_program`)."""
        return str(self.hyperparameters.get("sagemaker_program") or "")

    def training_env(self) -> dict[str, Any]:
        """`dict(Environment())`: every public property of the toolkit's Environment."""
        distributed = [GROUP] if any(self.framework_params.get(k) for k in DISTRIBUTION_SWITCHES) else []
        config = resource_config(self.host, self.hosts, self.instance_type)
        program = self.program
        output = self.output_dir
        return {
            "additional_framework_parameters": self.framework_params,
            "channel_input_dirs": self.channel_dirs,
            "current_host": self.host,
            "current_instance_group": GROUP,
            "current_instance_group_hosts": self.hosts,
            "current_instance_type": self.instance_type,
            "distribution_hosts": list(self.hosts) if distributed else [],
            "distribution_instance_groups": distributed,
            "framework_module": None,
            "hosts": self.hosts,
            "hyperparameters": self.user_hps,
            "input_config_dir": f"{self.input_dir}/config",
            "input_data_config": self.input_data_config,
            "input_dir": self.input_dir,
            "instance_groups": [GROUP],
            "instance_groups_dict": {GROUP: config["instance_groups"][0]},
            "is_hetero": False,
            "is_master": self.host == self.hosts[0],
            "is_modelparallel_enabled": None,
            "is_smddpmprun_installed": False,
            "is_smddprun_installed": False,
            "job_name": self.job_name,
            "log_level": int(self.hyperparameters.get("sagemaker_container_log_level") or 20),
            "master_hostname": self.hosts[0],
            "model_dir": self.model_dir,
            "module_dir": str(self.hyperparameters.get("sagemaker_submit_directory") or "/opt/ml/code"),
            "module_name": program[:-3] if program.endswith(".py") else program,
            "network_interface_name": "eth0",
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "num_neurons": 0,
            "output_data_dir": f"{output}/data",
            "output_dir": output,
            "output_intermediate_dir": f"{output}/intermediate",
            "resource_config": config,
            "topology": [],
            "user_entry_point": program,
        }

    def env_vars(self) -> dict[str, str]:
        """`Environment.to_env_vars()` (every SM_* variable) plus what the toolkit writes to os.environ."""
        doc = self.training_env()
        keys = ("hosts", "network_interface_name", "user_entry_point", "resource_config", "input_data_config",
                "output_data_dir", "current_host", "current_instance_type", "current_instance_group",
                "current_instance_group_hosts", "instance_groups", "instance_groups_dict",
                "distribution_instance_groups", "is_hetero", "module_name", "log_level", "framework_module",
                "input_dir", "input_config_dir", "output_dir", "num_cpus", "num_gpus", "num_neurons",
                "model_dir", "module_dir", "output_intermediate_dir")
        env: dict[str, Any] = {key: doc[key] for key in keys}
        env.update(hps=doc["hyperparameters"], framework_params=doc["additional_framework_parameters"],
                   channels=sorted(self.channel_dirs), training_env=doc, user_args=cmd_args(self.user_hps))
        env.update({f"channel_{name}": path for name, path in self.channel_dirs.items()})
        env.update({f"hp_{key}": value for key, value in self.user_hps.items()})
        out = {f"SM_{key.upper()}": env_value(value) for key, value in env.items()}
        out.update(
            SAGEMAKER_JOB_NAME=str(self.hyperparameters.get("sagemaker_job_name") or ""),
            CURRENT_HOST=self.host,
            SAGEMAKER_REGION=str(self.hyperparameters.get("sagemaker_region") or self.region),
        )
        return out


def pytorch_env(master_addr: str, master_port: int) -> dict[str, str]:
    """MASTER_ADDR/MASTER_PORT, which the PyTorch training container sets for every job (one host or many).

    The container sets MASTER_ADDR to the master's host name (algo-1) and MASTER_PORT to 7777; the
    emulator's hosts share one loopback, so it passes the address that name resolves to there and a
    port of the job's own (7777 would collide between concurrent jobs). The container's NCCL_*
    settings (for the instance's network interface) are left out: they mean nothing on the loopback.
    """
    return {"MASTER_ADDR": master_addr, "MASTER_PORT": str(master_port)}
