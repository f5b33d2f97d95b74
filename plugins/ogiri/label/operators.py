"""A re-attaching, deferrable SageMaker Ground Truth labeling job operator.

The Amazon provider has no labeling operator; :class:`GroundTruthLabelingOperator` is written on its
:class:`SageMakerHook` (the hook's boto3 client) with the describe-first behaviour of
:mod:`ogiri.jobs`: the configured ``LabelingJobName`` (deterministic, from the run key) *is* the
job's identity, so a task retry

* creates the job when none of that name exists (one job per run),
* re-attaches (defers on :class:`LabelingJobTrigger`) while it is ``Initializing``/``InProgress``/``Stopping``,
* returns a ``Completed`` or ``Stopped`` job's description without starting anything (a stopped or
  expired job still has labels to ingest; what it did not label is counted as expired),
* fails without retries when it ``Failed`` (SageMaker's ``FailureReason`` in the message).

Killing the task (waiting in the worker or deferred) stops the job.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.operators.sagemaker import serialize
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.triggers.base import TriggerEvent
from botocore.exceptions import ClientError

from ogiri import links
from ogiri.aws import fail_fast_on_access_denied, not_found
from ogiri.training_logs import JobPollTrigger

WAITING = frozenset({"Initializing", "InProgress", "Stopping"})
#: Terminal statuses whose labels are ingested.
ENDED_WITH_LABELS = frozenset({"Completed", "Stopped"})


def describe_or_none(sm: Any, name: str) -> dict[str, Any] | None:
    """``DescribeLabelingJob`` of ``name``, or None when SageMaker has no such job."""
    try:
        return sm.describe_labeling_job(LabelingJobName=name)
    except ClientError as exc:
        if not_found(exc):
            return None
        raise


def stop_labeling_job(sm: Any, name: str, log: Any) -> bool:
    """Stop the job while it is still running (a user killed the task). True when a stop was asked."""
    description = describe_or_none(sm, name)
    if description is None or description["LabelingJobStatus"] not in {"Initializing", "InProgress"}:
        log.info("Labeling job %s is %s: nothing to stop.", name,
                 description and description["LabelingJobStatus"] or "not created")
        return False
    sm.stop_labeling_job(LabelingJobName=name)
    log.warning("Task killed: stopping labeling job %s (its labels so far will not be ingested by this try).", name)
    return True


class LabelingJobTrigger(JobPollTrigger):
    """Poll ``DescribeLabelingJob`` until the job ends; fire ``{"status", "job_name", "message"}``."""

    def __init__(self, job_name: str, poll_seconds: float = 60, max_attempts: int = 14400,
                 aws_conn_id: str | None = "aws_default", region_name: str | None = None):
        super().__init__(job_name, poll_seconds, max_attempts, aws_conn_id, region_name)

    def _hook(self) -> SageMakerHook:
        return SageMakerHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    async def on_kill(self) -> None:
        """A user killed the deferred task: stop the labeling job."""
        await asyncio.to_thread(stop_labeling_job, self._hook().conn, self.job_name, self.log)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the job; log its counters when they change; fire when it ends."""
        last = None
        async with await self._hook().get_async_conn() as sm:
            for _ in range(self.max_attempts):
                description = await sm.describe_labeling_job(LabelingJobName=self.job_name)
                status = description["LabelingJobStatus"]
                line = f"{status} {description.get('LabelCounters') or {}}"
                if line != last:
                    self.log.info("Labeling job %s: %s", self.job_name, line)
                    last = line
                if status not in WAITING:
                    message = description.get("FailureReason") or f"labeling job {self.job_name} {status}"
                    yield TriggerEvent({"status": status, "job_name": self.job_name, "message": message})
                    return
                await asyncio.sleep(self.poll_seconds)
        yield TriggerEvent({"status": "timeout", "job_name": self.job_name,
                            "message": f"labeling job {self.job_name} still running after {self.max_attempts} polls"})


class GroundTruthLabelingOperator(AwsBaseOperator[SageMakerHook]):
    """Create (or re-attach to) one labeling job and wait for it; returns ``{"LabelingJob": description}``.

    :param config: a ``CreateLabelingJob`` request (templated; usually an XCom of the request task).
    :param check_interval: seconds between polls (default ``OGIRI_SAGEMAKER_POLL_SECONDS``, read at run time).
    :param max_wait_seconds: give up waiting after this long (a retry re-attaches). Default 10 days.
    :param deferrable: wait in the triggerer (default) instead of the worker.
    """

    aws_hook_class = SageMakerHook
    #: "SageMaker job": the AWS console, or the emulator's page of the job in local mode.
    operator_extra_links = (links.SageMakerResourceLink(),)
    template_fields: Sequence[str] = aws_template_fields("config")
    template_fields_renderers = {"config": "json"}
    ui_color = "#f4c98b"

    def __init__(self, *, config: Any, check_interval: int | None = None, max_wait_seconds: int = 10 * 86400,
                 deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.check_interval = check_interval
        self.max_wait_seconds = max_wait_seconds
        self.deferrable = deferrable

    @property
    def job_name(self) -> str:
        return self.config["LabelingJobName"]

    def _poll_seconds(self) -> int:
        if self.check_interval is not None:
            return int(self.check_interval)
        from ogiri.config import get_settings

        return get_settings().sagemaker_poll_seconds

    def execute(self, context: Any) -> dict[str, Any]:
        sm = fail_fast_on_access_denied(self.hook.conn)
        description = describe_or_none(sm, self.job_name)
        if description is None:
            self.log.info("No labeling job %s yet: creating it.", self.job_name)
            sm.create_labeling_job(**self.config)
            # a job just created may not be visible to Describe yet: it is starting either way
            description = describe_or_none(sm, self.job_name) or {"LabelingJobStatus": "Initializing"}
        else:
            self.log.info("Labeling job %s already exists (%s): re-attaching, creating nothing.",
                          self.job_name, description["LabelingJobStatus"])
        self.log.info("SageMaker labeling job page: %s", links.persist(context, self.hook, "labeling", self.job_name))
        if description["LabelingJobStatus"] not in WAITING:
            return self._result(description)
        poll = self._poll_seconds()
        if self.deferrable:
            self.defer(
                trigger=LabelingJobTrigger(job_name=self.job_name, poll_seconds=poll,
                                           max_attempts=max(1, math.ceil(self.max_wait_seconds / poll)),
                                           aws_conn_id=self.aws_conn_id, region_name=self.region_name),
                method_name="execute_complete",
                timeout=datetime.timedelta(seconds=self.max_wait_seconds),
            )
        return self._wait(sm, poll)

    def _wait(self, sm: Any, poll: int) -> dict[str, Any]:
        deadline = time.monotonic() + self.max_wait_seconds
        while True:
            description = sm.describe_labeling_job(LabelingJobName=self.job_name)
            if description["LabelingJobStatus"] not in WAITING:
                return self._result(description)
            if time.monotonic() > deadline:
                raise AirflowException(f"labeling job {self.job_name} still {description['LabelingJobStatus']} "
                                       f"after {self.max_wait_seconds}s; a retry re-attaches")
            time.sleep(poll)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: describe the job once more and judge its end."""
        if not event or event.get("status") == "timeout":
            raise AirflowException((event or {}).get("message") or "labeling job trigger gave no event")
        return self._result(self.hook.conn.describe_labeling_job(LabelingJobName=self.job_name))

    def _result(self, description: dict[str, Any]) -> dict[str, Any]:
        status = description["LabelingJobStatus"]
        self.log.info("Labeling job %s %s: %s", self.job_name, status, description.get("LabelCounters"))
        if status not in ENDED_WITH_LABELS:
            raise AirflowFailException(f"labeling job {self.job_name} ended {status}: "
                                       f"{description.get('FailureReason') or '(no FailureReason given)'}")
        return {"LabelingJob": serialize(description)}

    def on_kill(self) -> None:
        """A user killed the task while it waited in the worker: stop the job."""
        stop_labeling_job(self.hook.conn, self.job_name, self.log)
