"""CreateLabelingJob / DescribeLabelingJob / StopLabelingJob / ListLabelingJobs(ForWorkteam) handlers,
added to moto's ``SageMakerResponse`` (which dispatches on snake_case names)."""

from __future__ import annotations

import copy
from typing import Any

from moto.core.responses import ActionResult, EmptyResult


def _params(self: Any) -> dict[str, Any]:
    return copy.deepcopy(dict(self.params))


def create_labeling_job(self: Any) -> ActionResult:
    job = self.sagemaker_backend.localaws_create_labeling_job(_params(self))
    return ActionResult({"LabelingJobArn": job.arn})


def describe_labeling_job(self: Any) -> ActionResult:
    return ActionResult(self.sagemaker_backend.describe_labeling_job(self._get_param("LabelingJobName")))


def stop_labeling_job(self: Any) -> EmptyResult:
    self.sagemaker_backend.localaws_stop_labeling_job(self._get_param("LabelingJobName"))
    return EmptyResult()


def list_labeling_jobs(self: Any) -> ActionResult:
    rows, token = self.sagemaker_backend.localaws_list_labeling_jobs(_params(self))
    return ActionResult({"LabelingJobSummaryList": rows, **({"NextToken": token} if token else {})})


def list_labeling_jobs_for_workteam(self: Any) -> ActionResult:
    rows, token = self.sagemaker_backend.localaws_list_labeling_jobs_for_workteam(_params(self))
    return ActionResult({"LabelingJobSummaryList": rows, **({"NextToken": token} if token else {})})


RESPONSE_METHODS = {f.__name__: f for f in (create_labeling_job, describe_labeling_job, stop_labeling_job,
                                            list_labeling_jobs, list_labeling_jobs_for_workteam)}
