"""Request bodies for the SageMaker calls of one training run, all named from one run key.

Pure functions of (settings, run parameters, dataset summary, code bundle): no AWS calls, so they are
unit-tested directly and the DAG passes their output to the provider operators as ``config``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ogiri.naming import resource_name, short_hash
from ogiri.processing import (
    PROCESSING_ROOT,
    cluster,
    code_input,
    processing_input,
    processing_output,
    script_app,
)

#: Metrics scraped from the training log (names and format pinned in docs/interfaces.md).
LOGGED_METRICS = ("epoch", "train_loss", "val_loss", "val_bleu4", "val_cider")
METRIC_DEFINITIONS = [{"Name": m, "Regex": rf"{m}=([0-9.eE+-]+)"} for m in LOGGED_METRICS]
#: Hyperparameters the training entry point understands (docs/interfaces.md).
KNOWN_HYPERPARAMETERS = frozenset(
    {"epochs", "batch_size", "lr", "encoder", "decoder", "embed_dim", "hidden_dim", "max_len", "image_size",
     "beam_width", "seed", "num_workers", "grid", "dropout", "weight_decay", "min_freq", "clip_grad",
     "val_max_images", "rating_weight"}
)
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
MODEL_PACKAGE_GROUP_SUFFIX = "models"
#: At most this many candidates per run: the one evaluation job takes every candidate, the champion,
#: the code, the test manifest and the images as inputs, and CreateProcessingJob allows 10 inputs.
MAX_CANDIDATES = 6
#: The serving model's name in the evaluation report (candidates are named by their training job).
CHAMPION = "champion"


@dataclass(frozen=True)
class RunNames:
    """Every SageMaker resource name of one run, derived from its run key."""

    run_key: str
    training_job: str
    evaluation_job: str
    model: str
    endpoint_config: str

    @classmethod
    def for_run(cls, run_key: str) -> RunNames:
        """Names for ``run_key`` (deterministic: a retry or rerun of the run gets the same names)."""
        return cls(
            run_key=run_key,
            training_job=resource_name("ogiri-train", run_key),
            evaluation_job=resource_name("ogiri-eval", run_key),
            model=resource_name("ogiri-model", run_key),
            endpoint_config=resource_name("ogiri-epc", run_key),
        )

    def candidate_job(self, index: int) -> str:
        """Training job name of candidate ``index``: candidate 0 keeps the run's job name (a run with
        the default single candidate is named as before), candidate ``i`` gets the suffix ``c<i>``."""
        if index < 0:
            raise ValueError(f"candidate index must be >= 0, not {index}")
        return self.training_job if index == 0 else resource_name("ogiri-train", self.run_key, suffix=f"c{index}")

    @property
    def tuning_job(self) -> str:
        """The run's hyperparameter tuning job: ``ogiri-hpo-<hash>``, 22 characters (SageMaker allows 32,
        and a restarted attempt's ``-r<n>`` must fit)."""
        return f"ogiri-hpo-{short_hash('ogiri-hpo', self.run_key, length=12)}"

    def candidate_jobs(self, count: int) -> list[str]:
        """The training job names of ``count`` candidates, in candidate order."""
        return [self.candidate_job(i) for i in range(count)]

    def as_dict(self) -> dict[str, str]:
        """Plain dict (XCom friendly)."""
        return asdict(self)


def hyperparameters(params: dict[str, Any]) -> dict[str, Any]:
    """The training hyperparameters of a run from its DAG params (``extra_hyperparameters`` merged in)."""
    hps = {k: params[k] for k in ("epochs", "batch_size", "lr", "encoder", "decoder", "image_size", "rating_weight")
           if k in params}
    extra = params.get("extra_hyperparameters") or {}
    if not isinstance(extra, dict):
        raise ValueError(f"extra_hyperparameters must be an object, not {type(extra).__name__}")
    unknown = sorted(set(extra) - KNOWN_HYPERPARAMETERS)
    if unknown:
        raise ValueError(f"unknown hyperparameters {unknown}; known: {sorted(KNOWN_HYPERPARAMETERS)}")
    hps.update(extra)
    if int(hps.get("epochs", 1)) < 1:
        raise ValueError("epochs must be >= 1")
    return hps


def candidates(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's candidates (``candidates`` param): each a dict of hyperparameter overrides over the
    run's own hyperparameters. Raises ``ValueError`` naming the valid hyperparameters for an unknown one."""
    listed = params.get("candidates")
    listed = [{}] if listed is None else listed
    if not isinstance(listed, list) or not listed:
        raise ValueError(f"candidates must be a non-empty list of objects, not {listed!r}")
    if len(listed) > MAX_CANDIDATES:
        raise ValueError(f"at most {MAX_CANDIDATES} candidates per run (one evaluation job scores them all), "
                         f"not {len(listed)}")
    for i, overrides in enumerate(listed):
        if not isinstance(overrides, dict):
            raise ValueError(f"candidate {i} must be an object of hyperparameters, not {overrides!r}")
        unknown = sorted(set(overrides) - KNOWN_HYPERPARAMETERS)
        if unknown:
            raise ValueError(f"candidate {i} has unknown hyperparameters {unknown}; "
                             f"valid: {sorted(KNOWN_HYPERPARAMETERS)}")
    return [dict(c) for c in listed]


def candidate_hyperparameters(params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters of one candidate: the run's (:func:`hyperparameters`) with ``overrides``."""
    hps = {**hyperparameters(params), **overrides}
    if int(hps.get("epochs", 1)) < 1:
        raise ValueError("epochs must be >= 1")
    return hps


#: Hyperparameters a ``tuning`` range may cover, with their valid bounds (numeric: inclusive min, max;
#: ``lr`` must stay above 0) or values (categorical).
TUNABLE: dict[str, tuple[str, Any]] = {
    "lr": ("Continuous", (1e-7, 1.0)),
    "dropout": ("Continuous", (0.0, 0.9)),
    "weight_decay": ("Continuous", (0.0, 1.0)),
    "epochs": ("Integer", (1, 1000)),
    "batch_size": ("Integer", (1, 4096)),
    "embed_dim": ("Integer", (8, 4096)),
    "hidden_dim": ("Integer", (8, 8192)),
    "beam_width": ("Integer", (1, 20)),
    "rating_weight": ("Continuous", (0.0, 10.0)),
    "decoder": ("Categorical", ("lstm", "transformer")),
    "encoder": ("Categorical", ("resnet18", "resnet34", "resnet50")),
}
TUNING_STRATEGIES = ("Bayesian", "Random", "Hyperband")
#: The tuning objective (``docs/interfaces.md``): the best training job maximises validation CIDEr-D.
TUNING_OBJECTIVE = {"Type": "Maximize", "MetricName": "val_cider"}


def _numeric_range(name: str, spec: dict[str, Any], kind: str, bounds: tuple[float, float]) -> dict[str, Any]:
    lo, hi = spec.get("min"), spec.get("max")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lo, hi)):
        raise ValueError(f"tuning range {name} needs numeric min and max, got {spec}")
    if kind == "Integer" and (int(lo) != lo or int(hi) != hi):
        raise ValueError(f"tuning range {name} is an integer hyperparameter: min and max must be integers")
    if not bounds[0] <= lo < hi <= bounds[1]:
        raise ValueError(f"tuning range {name} [{lo}, {hi}] must satisfy {bounds[0]} <= min < max <= {bounds[1]}")
    scaling = spec.get("scaling", "Auto")
    if scaling not in ("Auto", "Linear", "Logarithmic"):
        raise ValueError(f"tuning range {name}: scaling must be Auto, Linear or Logarithmic, not {scaling!r}")
    if scaling == "Logarithmic" and lo <= 0:
        raise ValueError(f"tuning range {name}: Logarithmic scaling needs min > 0")
    shown = (lambda v: str(int(v))) if kind == "Integer" else repr
    return {"Name": name, "MinValue": shown(lo), "MaxValue": shown(hi), "ScalingType": scaling}


def tuning_ranges(ranges: Any) -> dict[str, list[dict[str, Any]]]:
    """SageMaker ``ParameterRanges`` from the ``tuning`` param's ``ranges`` (``{name: {"min", "max",
    "scaling"}}`` or ``{name: {"values": [...]}}``); ``ValueError`` for anything outside :data:`TUNABLE`."""
    if not isinstance(ranges, dict) or not ranges:
        raise ValueError("tuning needs at least one range, e.g. {\"lr\": {\"min\": 0.0001, \"max\": 0.01}}")
    unknown = sorted(set(ranges) - set(TUNABLE))
    if unknown:
        raise ValueError(f"cannot tune {unknown}; tunable hyperparameters: {sorted(TUNABLE)}")
    out: dict[str, list[dict[str, Any]]] = {}
    for name, spec in sorted(ranges.items()):
        kind, allowed = TUNABLE[name]
        if not isinstance(spec, dict):
            raise ValueError(f"tuning range {name} must be an object, not {spec!r}")
        if kind == "Categorical":
            values = spec.get("values")
            if not isinstance(values, list) or not values or not set(values) <= set(allowed):
                raise ValueError(f"tuning range {name} needs values among {list(allowed)}, got {values!r}")
            out.setdefault("CategoricalParameterRanges", []).append({"Name": name, "Values": list(values)})
        else:
            out.setdefault(f"{kind}ParameterRanges", []).append(_numeric_range(name, spec, kind, allowed))
    return out


def tuning_spec(params: dict[str, Any]) -> dict[str, Any] | None:
    """The run's validated ``tuning`` param (None: no tuning). ``ValueError`` names what is wrong."""
    spec = params.get("tuning")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ValueError(f"tuning must be an object or null, not {spec!r}")
    unknown = sorted(set(spec) - {"strategy", "max_jobs", "max_parallel", "ranges"})
    if unknown:
        raise ValueError(f"unknown tuning fields {unknown}; valid: ['max_jobs', 'max_parallel', 'ranges', 'strategy']")
    strategy = spec.get("strategy", "Bayesian")
    if strategy not in TUNING_STRATEGIES:
        raise ValueError(f"tuning strategy must be one of {list(TUNING_STRATEGIES)}, not {strategy!r}")
    max_jobs, max_parallel = spec.get("max_jobs", 4), spec.get("max_parallel", 2)
    if not (isinstance(max_jobs, int) and isinstance(max_parallel, int) and 1 <= max_parallel <= max_jobs):
        raise ValueError(f"tuning needs integers 1 <= max_parallel <= max_jobs, got {max_parallel}, {max_jobs}")
    if len(candidates(params)) > 1:
        raise ValueError("use either several candidates or tuning, not both (the tuning job's best job is the "
                         "run's candidate)")
    return {"strategy": strategy, "max_jobs": max_jobs, "max_parallel": max_parallel,
            "ranges": tuning_ranges(spec.get("ranges"))}


def _s3_channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
    }


def _tags(run_key: str, **extra: str) -> list[dict[str, str]]:
    tags = {"ogiri:run-key": run_key, **{f"ogiri:{k.replace('_', '-')}": str(v) for k, v in extra.items()}}
    return [{"Key": k, "Value": v[:256]} for k, v in tags.items()]


def training_job_request(
    settings: Any,
    names: RunNames,
    params: dict[str, Any],
    dataset: dict[str, Any],
    source: dict[str, Any],
    image_uri: str,
    index: int = 0,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """CreateTrainingJob request of candidate ``index`` (its ``overrides`` over the run's hyperparameters):
    script mode, Managed Spot with checkpoints, logged metrics, channels train/val/images."""
    instance_type = params["instance_type"] or settings.training_instance_type
    max_runtime = int(params["max_runtime_seconds"])
    spot = bool(params["use_spot"])
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": max_runtime}
    if spot:
        max_wait = int(params["max_wait_seconds"])
        if max_wait < max_runtime:
            raise ValueError(f"max_wait_seconds ({max_wait}) must be >= max_runtime_seconds ({max_runtime})")
        stopping["MaxWaitTimeInSeconds"] = max_wait
    # SageMaker framework containers read JSON-encoded hyperparameter values.
    hps = {k: json.dumps(v) for k, v in candidate_hyperparameters(params, overrides or {}).items()}
    job_name = names.candidate_job(index)
    hps.update(
        {
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(source["sourcedir_uri"]),
            "sagemaker_region": json.dumps(settings.region),
            "sagemaker_container_log_level": "20",
            # where the script keeps its checkpoints: CheckpointConfig.LocalPath, said once, here
            "checkpoint_dir": json.dumps(CHECKPOINT_LOCAL_PATH),
        }
    )
    return {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {
            "TrainingImage": image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": METRIC_DEFINITIONS,
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "RoleArn": settings.sagemaker_role_arn,
        "HyperParameters": hps,
        "InputDataConfig": [
            _s3_channel("train", dataset["channels"]["train"]),
            _s3_channel("val", dataset["channels"]["val"]),
            _s3_channel("images", dataset["images_uri"]),
        ],
        "OutputDataConfig": {"S3OutputPath": settings.s3_uri("models/")},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": spot,
        "CheckpointConfig": {
            "S3Uri": settings.s3_uri(f"checkpoints/{job_name}/"),
            "LocalPath": CHECKPOINT_LOCAL_PATH,
        },
        "Tags": _tags(names.run_key, dataset_version=dataset["version"], code_hash=source["code_hash"],
                      candidate=index),
    }


def tuning_job_request(
    settings: Any,
    names: RunNames,
    params: dict[str, Any],
    dataset: dict[str, Any],
    source: dict[str, Any],
    image_uri: str,
) -> dict[str, Any]:
    """CreateHyperParameterTuningJob request of the run's ``tuning`` param: the training job of the run's
    (single) candidate as the definition, the tuned hyperparameters left out of its static ones,
    objective ``val_cider`` (maximise), a seed derived from the run key. No CheckpointConfig: every
    training job of a tuning job would share one checkpoint prefix and resume from the others'."""
    spec = tuning_spec(params)
    if spec is None:
        raise ValueError("this run has no tuning")
    base = training_job_request(settings, names, params, dataset, source, image_uri, overrides=candidates(params)[0])
    tuned = {r["Name"] for rs in spec["ranges"].values() for r in rs}
    algo = base["AlgorithmSpecification"]
    definition = {
        "AlgorithmSpecification": {k: algo[k] for k in ("TrainingImage", "TrainingInputMode", "MetricDefinitions")},
        "RoleArn": base["RoleArn"],
        "StaticHyperParameters": {k: v for k, v in base["HyperParameters"].items() if k not in tuned},
        "InputDataConfig": base["InputDataConfig"],
        "OutputDataConfig": base["OutputDataConfig"],
        "ResourceConfig": base["ResourceConfig"],
        "StoppingCondition": base["StoppingCondition"],
        "EnableManagedSpotTraining": base["EnableManagedSpotTraining"],
    }
    return {
        "HyperParameterTuningJobName": names.tuning_job,
        "HyperParameterTuningJobConfig": {
            "Strategy": spec["strategy"],
            "HyperParameterTuningJobObjective": dict(TUNING_OBJECTIVE),
            "ResourceLimits": {"MaxNumberOfTrainingJobs": spec["max_jobs"],
                               "MaxParallelTrainingJobs": spec["max_parallel"]},
            "ParameterRanges": spec["ranges"],
            "TrainingJobEarlyStoppingType": "Off",
            "RandomSeed": int(short_hash("seed", names.run_key, length=6), 16),
        },
        "TrainingJobDefinition": definition,
        "Tags": _tags(names.run_key, dataset_version=dataset["version"], code_hash=source["code_hash"]),
    }


def _evaluation_inputs(dataset: dict[str, Any], source: dict[str, Any], models: dict[str, str]) -> list[dict]:
    inputs = [code_input(source)]
    inputs += [processing_input(name, uri, f"{PROCESSING_ROOT}/models/{name}") for name, uri in models.items()]
    inputs.append(processing_input("test", dataset["channels"]["test"], f"{PROCESSING_ROOT}/test"))
    inputs.append(processing_input("images", dataset["images_uri"], f"{PROCESSING_ROOT}/images"))
    return inputs


def _evaluation_app(image_uri: str) -> dict[str, Any]:
    return script_app(image_uri, "evaluate.py", [
        "--models", f"{PROCESSING_ROOT}/models",
        "--test", f"{PROCESSING_ROOT}/test",
        "--images", f"{PROCESSING_ROOT}/images",
        "--output", f"{PROCESSING_ROOT}/evaluation",
    ])


def evaluation_job_request(
    settings: Any,
    names: RunNames,
    dataset: dict[str, Any],
    source: dict[str, Any],
    image_uri: str,
    candidate_artifacts: dict[str, str],
    champion_artifact: str | None,
) -> dict[str, Any]:
    """CreateProcessingJob request running ``evaluate.py`` on every candidate (``{training job name:
    model artifact}``; each is scored under its job name) and (when one is serving) the ``champion``
    against the same frozen test manifest, in one job; ``evaluation.json`` lands under ``evaluations/``."""
    if not candidate_artifacts:
        raise ValueError("an evaluation needs at least one candidate model")
    if CHAMPION in candidate_artifacts:
        raise ValueError(f"{CHAMPION!r} is reserved for the serving model")
    models = dict(candidate_artifacts)
    if champion_artifact:
        models[CHAMPION] = champion_artifact
    output = processing_output("evaluation", evaluation_prefix(settings, names), f"{PROCESSING_ROOT}/evaluation")
    return {
        "ProcessingJobName": names.evaluation_job,
        "RoleArn": settings.sagemaker_role_arn,
        "AppSpecification": _evaluation_app(image_uri),
        "ProcessingInputs": _evaluation_inputs(dataset, source, models),
        "ProcessingOutputConfig": {"Outputs": [output]},
        "ProcessingResources": cluster(settings.processing_instance_type),
        "StoppingCondition": {"MaxRuntimeInSeconds": 2 * 3600},
        "Tags": _tags(names.run_key, dataset_version=dataset["version"]),
    }


def evaluation_prefix(settings: Any, names: RunNames) -> str:
    """Where the evaluation job writes ``evaluation.json``."""
    return settings.s3_uri(f"evaluations/{names.training_job}/")


def evaluation_report_uri(settings: Any, names: RunNames) -> str:
    """The evaluation job's ``evaluation.json``."""
    return evaluation_prefix(settings, names) + "evaluation.json"


def model_request(
    settings: Any, names: RunNames, image_uri: str, model_artifact: str, extra_env: dict[str, str] | None = None
) -> dict[str, Any]:
    """CreateModel request: the PyTorch inference image serving ``code/inference.py`` from the artifact."""
    env = {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_REGION": settings.region,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
    }
    env.update({str(k): str(v) for k, v in (extra_env or {}).items()})
    return {
        "ModelName": names.model,
        "ExecutionRoleArn": settings.sagemaker_role_arn,
        "PrimaryContainer": {"Image": image_uri, "ModelDataUrl": model_artifact, "Environment": env},
        "Tags": _tags(names.run_key),
    }


def capture_config(settings: Any, sampling_percent: int | None = None) -> dict[str, Any]:
    """The endpoint's DataCaptureConfig: input and output (JSON as text, images as base64) of
    ``sampling_percent`` of the requests (empty: the deployment setting) under ``s3://<bucket>/capture``;
    0 keeps the config with EnableCapture false (DescribeEndpoint then says CaptureStatus Stopped)."""
    percent = settings.capture_sampling_percent if sampling_percent is None else int(sampling_percent)
    if not 0 <= percent <= 100:
        raise ValueError(f"capture_sampling_percent must be between 0 and 100, got {percent}")
    return {
        "EnableCapture": percent > 0,
        "InitialSamplingPercentage": percent,
        "DestinationS3Uri": settings.s3_uri("capture"),
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
    }


def endpoint_config_request(settings: Any, names: RunNames, instance_type: str | None = None,
                            capture_percent: int | None = None) -> dict[str, Any]:
    """CreateEndpointConfig request: one variant with all traffic on this run's model, data capture on."""
    return {
        "EndpointConfigName": names.endpoint_config,
        "DataCaptureConfig": capture_config(settings, capture_percent),
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": names.model,
                "InitialInstanceCount": 1,
                "InstanceType": instance_type or settings.endpoint_instance_type,
            }
        ],
        "Tags": _tags(names.run_key),
    }


def endpoint_request(settings: Any, names: RunNames) -> dict[str, Any]:
    """CreateEndpoint / UpdateEndpoint request for the serving endpoint."""
    return {"EndpointName": settings.endpoint_name, "EndpointConfigName": names.endpoint_config}


def model_package_group(settings: Any) -> str:
    """Model Registry group of the serving endpoint."""
    return f"{settings.endpoint_name}-{MODEL_PACKAGE_GROUP_SUFFIX}"
