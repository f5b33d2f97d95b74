"""Labeling jobs' state and CreateLabelingJob's validation, as the SageMaker API defines them.

The request is checked as the service does (all violations in one ``N validation errors detected``
message, in the API's member paths); then the rules the service adds: ``LabelAttributeName`` may
not end with ``-metadata`` nor, for a custom task, with ``-ref``; names are unique per account and
region ignoring case; the work team must be a private team of the same account and region.
What localaws does not run is refused clearly: streaming jobs (``SnsDataSource``), automated data
labeling (``LabelingJobAlgorithmsConfig``) and built-in task UIs (``HumanTaskUiArn``).
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
from typing import Any

from moto.sagemaker.exceptions import ResourceInUseException, ValidationError

from localaws.sagemaker.common import now

NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
ATTRIBUTE = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,126}"
S3_URI = r"(https|s3)://([^/]+)/?(.*)"
LAMBDA_ARN = r"arn:aws[a-z\-]*:lambda:[a-z0-9\-]*:[0-9]{12}:function:.*"
WORKTEAM_ARN = r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:workteam/.*"
ROLE_ARN = r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
ENDED = frozenset({"Completed", "Failed", "Stopped"})
#: (request path, API member path, pattern or None, required)
_STRINGS = (
    (("LabelingJobName",), "labelingJobName", NAME, True),
    (("LabelAttributeName",), "labelAttributeName", ATTRIBUTE, True),
    (("RoleArn",), "roleArn", ROLE_ARN, True),
    (("InputConfig", "DataSource", "S3DataSource", "ManifestS3Uri"),
     "inputConfig.dataSource.s3DataSource.manifestS3Uri", S3_URI, True),
    (("OutputConfig", "S3OutputPath"), "outputConfig.s3OutputPath", S3_URI, True),
    (("HumanTaskConfig", "WorkteamArn"), "humanTaskConfig.workteamArn", WORKTEAM_ARN, True),
    (("HumanTaskConfig", "UiConfig", "UiTemplateS3Uri"), "humanTaskConfig.uiConfig.uiTemplateS3Uri", S3_URI, False),
    (("HumanTaskConfig", "PreHumanTaskLambdaArn"), "humanTaskConfig.preHumanTaskLambdaArn", LAMBDA_ARN, False),
    (("HumanTaskConfig", "TaskTitle"), "humanTaskConfig.taskTitle", None, True),
    (("HumanTaskConfig", "TaskDescription"), "humanTaskConfig.taskDescription", None, True),
    (("HumanTaskConfig", "AnnotationConsolidationConfig", "AnnotationConsolidationLambdaArn"),
     "humanTaskConfig.annotationConsolidationConfig.annotationConsolidationLambdaArn", LAMBDA_ARN, True),
)
#: (request path, API member path, min, max, required)
_NUMBERS = (
    (("HumanTaskConfig", "NumberOfHumanWorkersPerDataObject"), "humanTaskConfig.numberOfHumanWorkersPerDataObject",
     1, 9, True),
    (("HumanTaskConfig", "TaskTimeLimitInSeconds"), "humanTaskConfig.taskTimeLimitInSeconds", 30, None, True),
    (("HumanTaskConfig", "TaskAvailabilityLifetimeInSeconds"),
     "humanTaskConfig.taskAvailabilityLifetimeInSeconds", 60, None, False),
    (("HumanTaskConfig", "MaxConcurrentTaskCount"), "humanTaskConfig.maxConcurrentTaskCount", 1, 5000, False),
    (("StoppingConditions", "MaxHumanLabeledObjectCount"), "stoppingConditions.maxHumanLabeledObjectCount",
     1, None, False),
    (("StoppingConditions", "MaxPercentageOfInputDatasetLabeled"),
     "stoppingConditions.maxPercentageOfInputDatasetLabeled", 1, 100, False),
)


def _get(req: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = req
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _member(path: tuple[str, ...]) -> str:
    """The API's member path of a request path (``humanTaskConfig.uiConfig.uiTemplateS3Uri``)."""
    return ".".join(part[0].lower() + part[1:] for part in path)


def _missing(req: dict[str, Any], path: tuple[str, ...]) -> str | None:
    """The member path of the first absent structure or value on ``path``, or None."""
    value: Any = req
    for depth, key in enumerate(path):
        value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            return _member(path[:depth + 1])
    return None


def _shape_errors(req: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    null = "Value null at '{}' failed to satisfy constraint: Member must not be null"
    for path, member, pattern, required in _STRINGS:
        value = _get(req, path)
        if value is None:
            missing = _missing(req, path)
            if required and null.format(missing) not in errors:
                errors.append(null.format(missing))
        elif not isinstance(value, str) or not value:
            errors.append(f"Value '{value}' at '{member}' failed to satisfy constraint: Member must have length "
                          "greater than or equal to 1")
        elif pattern and not re.fullmatch(pattern, value):
            errors.append(f"Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy "
                          f"regular expression pattern: {pattern}")
    for path, member, low, high, required in _NUMBERS:
        value = _get(req, path)
        if value is None:
            if required and null.format(_missing(req, path)) not in errors:
                errors.append(null.format(_missing(req, path)))
        elif not isinstance(value, int) or value < low:
            errors.append(f"Value '{value}' at '{member}' failed to satisfy constraint: Member must have value "
                          f"greater than or equal to {low}")
        elif high is not None and value > high:
            errors.append(f"Value '{value}' at '{member}' failed to satisfy constraint: Member must have value "
                          f"less than or equal to {high}")
    return errors


def _raise(errors: list[str]) -> None:
    if errors:
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: "
        raise ValidationError(message=count + "; ".join(errors))


def validate(req: dict[str, Any], jobs: dict[str, LabelingJob], account: str, region: str) -> None:
    """Refuse what SageMaker refuses, and what localaws cannot run, before any job exists."""
    _raise(_shape_errors(req))
    attribute = req["LabelAttributeName"]
    if attribute.endswith("-metadata"):
        raise ValidationError(message=f"LabelAttributeName {attribute} can't end with \"-metadata\".")
    if attribute.endswith("-ref"):
        raise ValidationError(message=f"LabelAttributeName {attribute} can't end with \"-ref\" for this task type; "
                                      "only semantic segmentation, video frame and 3D point cloud task types use it.")
    existing = jobs.get(req["LabelingJobName"].lower())
    if existing is not None:
        raise ResourceInUseException(message="Labeling job names must be unique within an Amazon Web Services "
                                             f"account and region, and a labeling job with this name already exists "
                                             f"({existing.arn})")
    _check_supported(req)
    team = req["HumanTaskConfig"]["WorkteamArn"]
    if not re.fullmatch(rf"arn:aws[a-z\-]*:sagemaker:{region}:{account}:workteam/private-crowd/[\w.-]+", team):
        raise ValidationError(message=f"Workteam {team} does not exist or is not a private work team of this "
                                      "account and region (localaws simulates private work teams only).")


def _check_supported(req: dict[str, Any]) -> None:
    if _get(req, ("InputConfig", "DataSource", "SnsDataSource")):
        raise ValidationError(message="localaws does not emulate streaming labeling jobs (SnsDataSource).")
    if req.get("LabelingJobAlgorithmsConfig"):
        raise ValidationError(message="localaws does not emulate automated data labeling "
                                      "(LabelingJobAlgorithmsConfig).")
    ui = _get(req, ("HumanTaskConfig", "UiConfig")) or {}
    if ui.get("HumanTaskUiArn") or not ui.get("UiTemplateS3Uri"):
        raise ValidationError(message="localaws runs custom worker templates only: give "
                                      "HumanTaskConfig.UiConfig.UiTemplateS3Uri (not HumanTaskUiArn).")


def not_found(name: str) -> ValidationError:
    """Describe/Stop of an unknown labeling job (SageMaker answers ValidationException)."""
    return ValidationError(message=f"Could not find requested job with name {name}")


class LabelingJob:
    """A labeling job's plain state (what Describe/List answer); the work lives in ``run.LabelingRun``."""

    def __init__(self, req: dict[str, Any], account: str, region: str):
        self.req = copy.deepcopy(req)
        self.name = req["LabelingJobName"]
        self.arn = f"arn:aws:sagemaker:{region}:{account}:labeling-job/{self.name.lower()}"
        self.status = "Initializing"
        self.failure_reason: str | None = None
        self.creation_time = self.last_modified_time = now()
        self.counters = {"TotalLabeled": 0, "HumanLabeled": 0, "MachineLabeled": 0, "FailedNonRetryableError": 0,
                         "Unlabeled": 0}
        self.output_uri: str | None = None
        digest = hashlib.sha256(self.arn.encode()).hexdigest()
        self.reference_code = f"{account}{int(digest[:24], 16):x}"[:28]
        self._lock = threading.Lock()

    def set(self, **values: Any) -> None:
        """Update status / counters / reason atomically (from the job thread)."""
        with self._lock:
            for key, value in values.items():
                setattr(self, key, value)
            self.last_modified_time = now()

    def _common(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "LabelingJobName": self.name, "LabelingJobArn": self.arn, "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time, "LabelingJobStatus": self.status,
            "LabelCounters": dict(self.counters), "InputConfig": copy.deepcopy(self.req["InputConfig"]),
        }
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.output_uri:
            out["LabelingJobOutput"] = {"OutputDatasetS3Uri": self.output_uri}
        return out

    def describe(self) -> dict[str, Any]:
        """DescribeLabelingJob's answer."""
        with self._lock:
            out = self._common()
            out.update({key: copy.deepcopy(self.req[key]) for key in (
                "LabelAttributeName", "OutputConfig", "RoleArn", "HumanTaskConfig", "LabelCategoryConfigS3Uri",
                "StoppingConditions", "Tags") if self.req.get(key) is not None})
            out["JobReferenceCode"] = self.reference_code
            return out

    def summary(self) -> dict[str, Any]:
        """A LabelingJobSummary row of ListLabelingJobs."""
        with self._lock:
            task = self.req["HumanTaskConfig"]
            out = self._common()
            out["WorkteamArn"] = task["WorkteamArn"]
            out["AnnotationConsolidationLambdaArn"] = task["AnnotationConsolidationConfig"][
                "AnnotationConsolidationLambdaArn"]
            if task.get("PreHumanTaskLambdaArn"):
                out["PreHumanTaskLambdaArn"] = task["PreHumanTaskLambdaArn"]
            return out


_SORT = {"Name": lambda j: j["LabelingJobName"], "CreationTime": lambda j: j["CreationTime"],
         "Status": lambda j: j["LabelingJobStatus"]}


def list_jobs(jobs: list[LabelingJob], params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """ListLabelingJobs: filters, sort (default CreationTime, Ascending) and pages (default 10)."""
    rows = [j.summary() for j in jobs]
    if params.get("NameContains"):
        rows = [r for r in rows if params["NameContains"].lower() in r["LabelingJobName"].lower()]
    if params.get("StatusEquals"):
        rows = [r for r in rows if r["LabelingJobStatus"] == params["StatusEquals"]]
    for key, field, after in (("CreationTimeAfter", "CreationTime", True), ("CreationTimeBefore", "CreationTime", False),
                              ("LastModifiedTimeAfter", "LastModifiedTime", True),
                              ("LastModifiedTimeBefore", "LastModifiedTime", False)):
        if params.get(key) is not None:
            bound = _timestamp(params[key])
            rows = [r for r in rows if (r[field].timestamp() > bound if after else r[field].timestamp() < bound)]
    sort_by = params.get("SortBy") or "CreationTime"
    if sort_by not in _SORT:
        raise ValidationError(message=f"1 validation error detected: Value '{sort_by}' at 'sortBy' failed to satisfy "
                                      "constraint: Member must satisfy enum value set: [Name, CreationTime, Status]")
    rows.sort(key=_SORT[sort_by], reverse=params.get("SortOrder") == "Descending")
    size = int(params.get("MaxResults") or 10)
    start = int(params.get("NextToken") or 0)
    return rows[start:start + size], (str(start + size) if start + size < len(rows) else None)


def _timestamp(value: Any) -> float:
    import datetime as dt

    if isinstance(value, int | float):
        return float(value)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def list_for_workteam(jobs: list[LabelingJob], params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """ListLabelingJobsForWorkteam: LabelingJobForWorkteamSummary rows of the team's jobs."""
    team = params.get("WorkteamArn")
    rows = []
    for job in jobs:
        task = job.req["HumanTaskConfig"]
        if task["WorkteamArn"] != team:
            continue
        if params.get("JobReferenceCodeContains") and params["JobReferenceCodeContains"] not in job.reference_code:
            continue
        c = dict(job.counters)
        rows.append({"LabelingJobName": job.name, "JobReferenceCode": job.reference_code,
                     "WorkRequesterAccountId": job.arn.split(":")[4], "CreationTime": job.creation_time,
                     "LabelCounters": {"HumanLabeled": c["HumanLabeled"], "PendingHuman": c["Unlabeled"],
                                       "Total": sum(c[k] for k in ("TotalLabeled", "FailedNonRetryableError",
                                                                   "Unlabeled"))},
                     "NumberOfHumanWorkersPerDataObject": task["NumberOfHumanWorkersPerDataObject"]})
    rows.sort(key=lambda r: r["CreationTime"], reverse=params.get("SortOrder") == "Descending")
    size = int(params.get("MaxResults") or 10)
    start = int(params.get("NextToken") or 0)
    return rows[start:start + size], (str(start + size) if start + size < len(rows) else None)
