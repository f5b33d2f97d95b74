"""Hyperparameter tuning jobs that really run their training jobs.

``CreateHyperParameterTuningJob`` validates the request as SageMaker does (the checks below), then a
thread starts real training jobs (``localaws_create_training_job``: our script mode, as the
execution role) named ``<tuning job>-<NNN>-<8 hex>``, at most ``MaxParallelTrainingJobs`` at once,
until ``MaxNumberOfTrainingJobs`` have run (Grid: every combination). Each job's hyperparameters are
``StaticHyperParameters`` plus the tuned values (strings, as SageMaker passes them). The objective
is the job's ``FinalMetricDataList`` value of the objective metric, scraped from its log through the
definition's ``MetricDefinitions``.

Strategies, named honestly:

* ``Random``: seeded random search (``RandomSeed``, else a hash of the tuning job name): uniform, or
  log-uniform for ``Logarithmic`` / ``ReverseLogarithmic`` scaling;
* ``Grid``: every combination of the categorical ranges in order (SageMaker allows only categorical
  ranges and no ``MaxNumberOfTrainingJobs`` with Grid);
* ``Bayesian``: **not** Bayesian optimisation here. A stand-in: the first job takes the centre of
  every range (first value of a categorical one), the rest are the Random sampler's. No surrogate
  model is fitted;
* ``Hyperband``: refused with a ValidationException saying localaws does not emulate it.

``TrainingJobEarlyStoppingType`` ``Off`` and ``Auto`` are both accepted; ``Auto`` is not emulated
(no job is stopped early, as if none looked unpromising). ``WarmStartConfig``, ``TrainingJobDefinitions``
(several definitions) and ``Autotune`` are refused clearly. ``StopHyperParameterTuningJob`` stops the
running training jobs (Stopping until they have ended, then Stopped). The tuning job ends
``Completed`` when at least one training job reported the objective, else ``Failed``.

Describe/List answer with ``TrainingJobStatusCounters``, ``ObjectiveStatusCounters``,
``BestTrainingJob`` and ``HyperParameterTrainingJobSummary`` rows as the API reference defines
them; the not-found and name-collision texts are the ones SageMaker answers (quoted in
aws/amazon-sagemaker-examples issues #1540 and #2440).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import re
import threading
import time
from typing import Any

from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError

from localaws.sagemaker.common import now

POLL_SECONDS = 0.5
NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
ENDED = frozenset({"Completed", "Failed", "Stopped"})


def not_found(name: str) -> ResourceNotFound:
    """Describe/Stop/List of an unknown tuning job, in SageMaker's words."""
    return ResourceNotFound(message=f"Amazon SageMaker can't find a tuning job called {name}. Type another name.")


def name_in_use(name: str) -> ResourceInUseException:
    """CreateHyperParameterTuningJob with a name that exists, in SageMaker's words."""
    return ResourceInUseException(
        message=f"A hyperparameter tuning job with the name, {name}, already exists. Choose a different name."
    )


def training_job_name(tuning_name: str, index: int) -> str:
    """``<tuning job>-<NNN>-<8 hex>``, the form SageMaker names a tuning job's training jobs in."""
    digest = hashlib.sha256(f"{tuning_name}\x00{index}".encode()).hexdigest()[:8]
    return f"{tuning_name}-{index:03d}-{digest}"


# -- validation ------------------------------------------------------------------------------------


def _number(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(message=f"The value {value!r} of {what} is not a number.") from None
    if not math.isfinite(number):
        raise ValidationError(message=f"The value {value!r} of {what} is not a finite number.")
    return number


def _check_numeric(r: dict[str, Any], integer: bool) -> None:
    kind = "IntegerParameterRange" if integer else "ContinuousParameterRange"
    lo = _number(r.get("MinValue"), f"{kind} {r.get('Name')} MinValue")
    hi = _number(r.get("MaxValue"), f"{kind} {r.get('Name')} MaxValue")
    if integer and (lo != int(lo) or hi != int(hi)):
        raise ValidationError(message=f"The values of IntegerParameterRange {r['Name']} must be integers.")
    if lo > hi:
        raise ValidationError(message=f"The MinValue {r['MinValue']} of hyperparameter {r['Name']} must be less "
                                      f"than or equal to its MaxValue {r['MaxValue']}.")
    scaling = r.get("ScalingType", "Auto")
    if scaling == "Logarithmic" and lo <= 0:
        raise ValidationError(message=f"Logarithmic scaling of hyperparameter {r['Name']} requires a MinValue "
                                      "greater than 0.")
    if scaling == "ReverseLogarithmic" and (integer or lo < 0 or hi >= 1):
        raise ValidationError(message=f"ReverseLogarithmic scaling of hyperparameter {r['Name']} requires a "
                                      "continuous range within [0, 1).")


def _ranges(config: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    ranges = config.get("ParameterRanges") or {}
    if ranges.get("AutoParameters"):
        raise ValidationError(message="localaws does not emulate AutoParameters (Autotune); give the ranges.")
    out = {kind: list(ranges.get(f"{kind}ParameterRanges") or []) for kind in ("Integer", "Continuous", "Categorical")}
    names = [r.get("Name") for rs in out.values() for r in rs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValidationError(message=f"Hyperparameters {dupes} appear in more than one parameter range.")
    if not names:
        raise ValidationError(message="A hyperparameter tuning job needs at least one parameter range.")
    for r in out["Integer"]:
        _check_numeric(r, integer=True)
    for r in out["Continuous"]:
        _check_numeric(r, integer=False)
    for r in out["Categorical"]:
        if not r.get("Values"):
            raise ValidationError(message=f"CategoricalParameterRange {r.get('Name')} needs at least one value.")
    return out


def _check_objective(config: dict[str, Any], definition: dict[str, Any]) -> None:
    objective = config.get("HyperParameterTuningJobObjective") or definition.get("TuningObjective")
    if not objective:
        raise ValidationError(message="HyperParameterTuningJobObjective is required for this strategy.")
    if objective.get("Type") not in ("Maximize", "Minimize"):
        raise ValidationError(message=f"Objective type {objective.get('Type')!r} is not Maximize or Minimize.")
    defined = [m.get("Name") for m in (definition.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []]
    if objective.get("MetricName") not in defined:
        raise ValidationError(message=f"The objective metric {objective.get('MetricName')} is not defined in the "
                                      f"algorithm's MetricDefinitions {defined}.")


def validate(req: dict[str, Any], existing: dict[str, Any]) -> None:
    """Refuse a request SageMaker would refuse, or that localaws cannot run for real."""
    name = req.get("HyperParameterTuningJobName") or ""
    if not NAME_RE.match(name):
        raise ValidationError(message=f"1 validation error detected: Value '{name}' at 'hyperParameterTuningJobName' "
                                      "failed to satisfy constraint: Member must satisfy regular expression pattern: "
                                      "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}")
    if name in existing:
        raise name_in_use(name)
    for unsupported in ("TrainingJobDefinitions", "WarmStartConfig", "Autotune"):
        if req.get(unsupported):
            raise ValidationError(message=f"localaws does not emulate {unsupported}; use one TrainingJobDefinition.")
    definition = req.get("TrainingJobDefinition")
    if not definition:
        raise ValidationError(message="TrainingJobDefinition is required.")
    config = req["HyperParameterTuningJobConfig"]
    strategy = config.get("Strategy")
    if strategy == "Hyperband":
        raise ValidationError(message="localaws does not emulate the Hyperband strategy (it would stop and resume "
                                      "jobs on intermediate metrics); use Random, Grid or Bayesian.")
    ranges = _ranges(config)
    limits = config.get("ResourceLimits") or {}
    if strategy == "Grid":
        if ranges["Integer"] or ranges["Continuous"]:
            raise ValidationError(message="The Grid strategy supports only CategoricalParameterRanges.")
        if limits.get("MaxNumberOfTrainingJobs") is not None:
            raise ValidationError(message="Don't specify MaxNumberOfTrainingJobs with the Grid strategy.")
    elif not limits.get("MaxNumberOfTrainingJobs"):
        raise ValidationError(message=f"MaxNumberOfTrainingJobs is required with the {strategy} strategy.")
    static = set(definition.get("StaticHyperParameters") or {})
    tuned = {r["Name"] for rs in ranges.values() for r in rs}
    if static & tuned:
        raise ValidationError(message=f"Hyperparameters {sorted(static & tuned)} are both static and tunable.")
    _check_objective(config, definition)


# -- sampling ---------------------------------------------------------------------------------------


def _draw(rng: random.Random, r: dict[str, Any], integer: bool) -> str:
    lo, hi = float(r["MinValue"]), float(r["MaxValue"])
    scaling = r.get("ScalingType", "Auto")
    if scaling == "Logarithmic":
        value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    elif scaling == "ReverseLogarithmic":
        value = 1 - math.exp(rng.uniform(math.log(1 - hi), math.log(1 - lo)))
    else:
        value = rng.uniform(lo, hi)
    return str(min(int(hi), max(int(lo), round(value)))) if integer else repr(min(hi, max(lo, value)))


def _centre(r: dict[str, Any], integer: bool) -> str:
    lo, hi = float(r["MinValue"]), float(r["MaxValue"])
    if r.get("ScalingType") == "Logarithmic":
        mid = math.sqrt(lo * hi)
    else:
        mid = (lo + hi) / 2
    return str(round(mid)) if integer else repr(mid)


def sample(req: dict[str, Any]) -> list[dict[str, str]]:
    """The tuned hyperparameters of every training job the tuning job will run, in launch order."""
    config = req["HyperParameterTuningJobConfig"]
    ranges = _ranges(config)
    if config["Strategy"] == "Grid":
        cats = ranges["Categorical"]
        return [dict(zip([r["Name"] for r in cats], combo, strict=True))
                for combo in itertools.product(*[r["Values"] for r in cats])]
    seed = config.get("RandomSeed")
    if seed is None:
        seed = int(hashlib.sha256(req["HyperParameterTuningJobName"].encode()).hexdigest()[:8], 16)
    rng = random.Random(seed)
    points = []
    for index in range(int(config["ResourceLimits"]["MaxNumberOfTrainingJobs"])):
        centre = config["Strategy"] == "Bayesian" and index == 0
        point = {}
        for r in ranges["Integer"]:
            point[r["Name"]] = _centre(r, True) if centre else _draw(rng, r, True)
        for r in ranges["Continuous"]:
            point[r["Name"]] = _centre(r, False) if centre else _draw(rng, r, False)
        for r in ranges["Categorical"]:
            point[r["Name"]] = r["Values"][0] if centre else rng.choice(r["Values"])
        points.append(point)
    return points


def training_request(req: dict[str, Any], index: int, tuned: dict[str, str]) -> dict[str, Any]:
    """The CreateTrainingJob request of the tuning job's ``index``-th training job (1-based)."""
    d = req["TrainingJobDefinition"]
    name = training_job_name(req["HyperParameterTuningJobName"], index)
    out = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {k: v for k, v in d["AlgorithmSpecification"].items() if k != "AlgorithmName"},
        "RoleArn": d["RoleArn"],
        "HyperParameters": {**(d.get("StaticHyperParameters") or {}), **tuned},
        "InputDataConfig": d.get("InputDataConfig") or [],
        "OutputDataConfig": d["OutputDataConfig"],
        "ResourceConfig": d.get("ResourceConfig"),
        "StoppingCondition": d["StoppingCondition"],
        "EnableManagedSpotTraining": d.get("EnableManagedSpotTraining", False),
        "Environment": d.get("Environment"),
        "VpcConfig": d.get("VpcConfig"),
        # as given: every training job of the tuning job gets the same CheckpointConfig
        "CheckpointConfig": d.get("CheckpointConfig"),
    }
    return {k: v for k, v in out.items() if v is not None}


# -- the running tuning job -------------------------------------------------------------------------


def _objective(job: Any, metric: str) -> float | None:
    for entry in job.final_metric_data_list or []:
        if entry.get("MetricName") == metric:
            return float(entry["Value"])
    return None


class TuningRun:
    """The thread that runs a tuning job's training jobs and keeps its moto object up to date."""

    def __init__(self, backend: Any, job: Any, req: dict[str, Any]):
        self.backend, self.job, self.req = backend, job, req
        config = req["HyperParameterTuningJobConfig"]
        self.objective = config.get("HyperParameterTuningJobObjective") or req["TrainingJobDefinition"]["TuningObjective"]
        self.max_parallel = int(config["ResourceLimits"]["MaxParallelTrainingJobs"])
        self.points = sample(req)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True, name=f"localaws-tuning-{job.name}")

    def start(self) -> None:
        """Start launching training jobs."""
        self.thread.start()

    def request_stop(self) -> None:
        """StopHyperParameterTuningJob: stop launching, stop the running training jobs."""
        self.stop_event.set()

    def shutdown(self) -> None:
        """Registry shutdown: stop launching (the training jobs have their own registry entries)."""
        self.stop_event.set()

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - the tuning job fails with the reason, visibly
            self.job.set(status="Failed", failure_reason=f"localaws tuning job error: {type(exc).__name__}: {exc}")

    def _running(self) -> list[str]:
        return [n for n in self.job.training_names if self.backend.training_jobs[n].training_job_status not in ENDED]

    def _run(self) -> None:
        queue = list(enumerate(self.points, 1))
        while True:
            if self.stop_event.is_set():
                self._stop_all()
                break
            while queue and len(self._running()) < self.max_parallel:
                index, tuned = queue.pop(0)
                request = training_request(self.req, index, tuned)
                self.backend.localaws_create_training_job(request)
                self.job.add_training(request["TrainingJobName"], tuned)
            self.refresh()
            if not queue and not self._running():
                break
            time.sleep(POLL_SECONDS)
        self.refresh()
        if self.job.status == "Stopping":
            self.job.set(status="Stopped")
        elif self.job.objective_status_counters["Succeeded"]:
            self.job.set(status="Completed")
        else:
            self.job.set(status="Failed", failure_reason="No training job reported the objective metric "
                                                         f"{self.objective['MetricName']}.")

    def _stop_all(self) -> None:
        self.job.set(status="Stopping")
        for name in self._running():
            try:
                self.backend.stop_training_job(name)
            except ValidationError:
                pass  # ended between the look and the stop
        while self._running():
            time.sleep(POLL_SECONDS)

    def refresh(self) -> None:
        """Recompute the summaries, counters and best job from the training jobs' state."""
        summaries = [self._summary(name, tuned) for name, tuned in zip(self.job.training_names,
                                                                       self.job.tuned, strict=True)]
        self.job.update(summaries, self.objective["Type"])

    def _summary(self, name: str, tuned: dict[str, str]) -> dict[str, Any]:
        t = self.backend.training_jobs[name]
        status = t.training_job_status
        value = _objective(t, self.objective["MetricName"])
        summary: dict[str, Any] = {
            "TrainingJobName": name,
            "TrainingJobArn": t.arn,
            "TuningJobName": self.job.name,
            "CreationTime": t.creation_time,
            "TrainingJobStatus": status,
            "TunedHyperParameters": dict(tuned),
        }
        for key, attr in (("TrainingStartTime", "training_start_time"), ("TrainingEndTime", "training_end_time"),
                          ("FailureReason", "failure_reason")):
            if getattr(t, attr, None):
                summary[key] = getattr(t, attr)
        if status not in ENDED:
            summary["ObjectiveStatus"] = "Pending"
        elif value is not None and status in ("Completed", "Stopped"):
            summary["ObjectiveStatus"] = "Succeeded"
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": self.objective["Type"], "MetricName": self.objective["MetricName"], "Value": value}
        else:
            summary["ObjectiveStatus"] = "Failed"
        return summary


def counters(summaries: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int]]:
    """(TrainingJobStatusCounters, ObjectiveStatusCounters) of the training job summaries."""
    jobs = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    objectives = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    for s in summaries:
        status = s["TrainingJobStatus"]
        jobs["NonRetryableError" if status == "Failed" else "InProgress" if status not in ENDED else status] += 1
        objectives[s["ObjectiveStatus"]] += 1
    return jobs, objectives


def best(summaries: list[dict[str, Any]], objective_type: str) -> dict[str, Any] | None:
    """The summary with the best objective value (first launched wins a tie), or None."""
    scored = [s for s in summaries if s["ObjectiveStatus"] == "Succeeded"]
    if not scored:
        return None
    sign = -1 if objective_type == "Maximize" else 1
    return min(scored, key=lambda s: sign * s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])


SORT_KEYS = {
    "Name": lambda s: s["TrainingJobName"],
    "CreationTime": lambda s: s["CreationTime"],
    "Status": lambda s: s["TrainingJobStatus"],
    "FinalObjectiveMetricValue": lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
}


def list_summaries(summaries: list[dict[str, Any]], params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """ListTrainingJobsForHyperParameterTuningJob: filter, sort (default Name, Ascending), page (10)."""
    rows = [s for s in summaries if not params.get("StatusEquals") or s["TrainingJobStatus"] == params["StatusEquals"]]
    sort_by = params.get("SortBy") or "Name"
    if sort_by not in SORT_KEYS:
        raise ValidationError(message=f"Value '{sort_by}' at 'sortBy' failed to satisfy constraint: Member must "
                                      "satisfy enum value set: [Name, CreationTime, Status, FinalObjectiveMetricValue]")
    if sort_by == "FinalObjectiveMetricValue":  # jobs without an objective value are not listed
        rows = [s for s in rows if "FinalHyperParameterTuningJobObjectiveMetric" in s]
    rows.sort(key=SORT_KEYS[sort_by], reverse=params.get("SortOrder") == "Descending")
    size = int(params.get("MaxResults") or 10)
    if not 1 <= size <= 100:
        raise ValidationError(message=f"Value '{size}' at 'maxResults' failed to satisfy constraint: Member must "
                                      "have value between 1 and 100")
    start = int(params.get("NextToken") or 0)
    page = rows[start:start + size]
    return page, (str(start + size) if start + size < len(rows) else None)


class LocalTuningJob:
    """The tuning job's plain state (what Describe/List answer); the thread lives in ``TuningRun``."""

    def __init__(self, req: dict[str, Any], arn: str):
        self.name = req["HyperParameterTuningJobName"]
        self.arn = arn
        self.req = req
        self.status = "InProgress"
        self.failure_reason: str | None = None
        self.creation_time = self.last_modified_time = now()
        self.end_time = None
        self.training_names: list[str] = []
        self.tuned: list[dict[str, str]] = []
        self.summaries: list[dict[str, Any]] = []
        self.training_job_status_counters, self.objective_status_counters = counters([])
        self.best_training_job: dict[str, Any] | None = None
        self._lock = threading.Lock()

    @property
    def hyper_parameter_tuning_job_name(self) -> str:
        """moto's ListHyperParameterTuningJobs filters on these attribute names."""
        return self.name

    @property
    def hyper_parameter_tuning_job_status(self) -> str:
        """See :attr:`hyper_parameter_tuning_job_name`."""
        return self.status

    def add_training(self, name: str, tuned: dict[str, str]) -> None:
        """Record a training job the tuning job started."""
        with self._lock:
            self.training_names.append(name)
            self.tuned.append(tuned)

    def update(self, summaries: list[dict[str, Any]], objective_type: str) -> None:
        """New summaries, counters and best job."""
        with self._lock:
            self.summaries = summaries
            self.training_job_status_counters, self.objective_status_counters = counters(summaries)
            self.best_training_job = best(summaries, objective_type)
            self.last_modified_time = now()

    def set(self, *, status: str, failure_reason: str | None = None) -> None:
        """A status transition (with the end time when it is final)."""
        with self._lock:
            self.status = status
            if failure_reason:
                self.failure_reason = failure_reason
            if status in ENDED:
                self.end_time = now()
            self.last_modified_time = now()

    def describe(self) -> dict[str, Any]:
        """DescribeHyperParameterTuningJob's answer."""
        with self._lock:
            out = {
                "HyperParameterTuningJobName": self.name,
                "HyperParameterTuningJobArn": self.arn,
                "HyperParameterTuningJobConfig": self.req["HyperParameterTuningJobConfig"],
                "TrainingJobDefinition": self.req["TrainingJobDefinition"],
                "HyperParameterTuningJobStatus": self.status,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified_time,
                "TrainingJobStatusCounters": dict(self.training_job_status_counters),
                "ObjectiveStatusCounters": dict(self.objective_status_counters),
            }
            optional = {"HyperParameterTuningEndTime": self.end_time, "BestTrainingJob": self.best_training_job,
                        "OverallBestTrainingJob": None, "FailureReason": self.failure_reason}
            out.update({k: v for k, v in optional.items() if v is not None})
            return out

    def summary(self) -> dict[str, Any]:
        """ListHyperParameterTuningJobs' row."""
        d = self.describe()
        keys = ("HyperParameterTuningJobName", "HyperParameterTuningJobArn", "HyperParameterTuningJobStatus",
                "CreationTime", "HyperParameterTuningEndTime", "LastModifiedTime", "TrainingJobStatusCounters",
                "ObjectiveStatusCounters")
        out = {k: d[k] for k in keys if k in d}
        out["Strategy"] = self.req["HyperParameterTuningJobConfig"]["Strategy"]
        out["ResourceLimits"] = self.req["HyperParameterTuningJobConfig"]["ResourceLimits"]
        return out
