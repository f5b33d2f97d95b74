"""Retry-safe SageMaker job operators.

The provider's operators make a fresh job name (a timestamp suffix) when the configured one exists, so
a task retry launches a second paid job. These subclasses treat the configured name as the identity
of the job instead (build it with :func:`ogiri.naming.resource_name` from the run key) and, on every
(re)execution, describe it first:

* absent → create it (exactly as the provider does);
* ``InProgress`` / ``Stopping`` → re-attach: defer on the provider's trigger (or poll) until it ends;
* ``Completed`` → return its description without starting anything;
* ``Failed`` / ``Stopped`` → fail the task (no further retries) with SageMaker's ``FailureReason``,
  unless ``restart_failed=True``, which starts ``<name>-r1``, ``<name>-r2``, … (each a new paid job,
  each itself re-attached on the next retry).

:class:`ReusingModelOperator` and :class:`ReusingEndpointConfigOperator` do the same for the
(free, instantaneous) model and endpoint-config creations: an existing resource of the configured
name is reused instead of failing the retry.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointConfigOperator,
    SageMakerModelOperator,
    SageMakerProcessingOperator,
    SageMakerTrainingOperator,
    SageMakerTuningOperator,
    serialize,
)
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from botocore.exceptions import ClientError

from ogiri import links
from ogiri.aws import fail_fast_on_access_denied, not_found

IN_PROGRESS = frozenset({"InProgress", "Stopping"})
ENDED_BADLY = frozenset({"Failed", "Stopped"})
#: At most this many restarts of a failed job, so a broken job can never loop on paid instances.
MAX_RESTARTS = 5


def attempt_name(base: str, attempt: int) -> str:
    """``base`` for attempt 0, else ``base`` shortened to fit and suffixed ``-r<attempt>`` (≤ 63 chars)."""
    if attempt == 0:
        return base
    suffix = f"-r{attempt}"
    return base[: 63 - len(suffix)].rstrip("-") + suffix


class ReattachJobMixin:
    """Shared describe-first logic; subclasses set the job-kind attributes below."""

    #: "SageMaker job": the AWS console, or the emulator's page of the job in local mode.
    operator_extra_links = (links.SageMakerResourceLink(),)

    name_field: str
    status_field: str
    job_type: str  #: SageMakerTrigger job type
    result_key: str

    restart_failed: bool

    def _describe_func(self) -> Callable[[str], dict[str, Any]]:
        raise NotImplementedError

    def _describe_or_none(self, name: str) -> dict[str, Any] | None:
        try:
            return self._describe_func()(name)
        except ClientError as exc:
            if not_found(exc):
                return None
            raise

    def _latest_attempt(self, base: str) -> tuple[int, dict[str, Any] | None]:
        """The highest attempt that exists and its description, or (0, None) when none does."""
        found: tuple[int, dict[str, Any] | None] = (0, None)
        for attempt in range(MAX_RESTARTS + 1):
            description = self._describe_or_none(attempt_name(base, attempt))
            if description is None:
                break
            found = (attempt, description)
            if description[self.status_field] not in ENDED_BADLY:
                break
        return found

    def _completed_result(self, description: dict[str, Any]) -> dict[str, Any]:
        return {self.result_key: serialize(description)}

    def execute(self, context: Any) -> dict[str, Any]:
        fail_fast_on_access_denied(self.hook.conn)  # a missing grant is not retried like a throttle
        base = self.config[self.name_field]
        attempt, description = self._latest_attempt(base)
        if description is None:
            self.log.info("No SageMaker %s job %s yet: creating it.", self.job_type, base)
            return self._start(context)
        name = attempt_name(base, attempt)
        self.config[self.name_field] = name
        self._persist_link(context)
        status = description[self.status_field]
        if status == "Completed":
            self.log.info("SageMaker %s job %s already Completed: reusing it, starting nothing.", self.job_type, name)
            return self._completed_result(description)
        if status in IN_PROGRESS:
            self.log.info("SageMaker %s job %s is %s: re-attaching to it.", self.job_type, name, status)
            return self._reattach(name, context)
        reason = description.get("FailureReason") or "(no FailureReason given)"
        if not self.restart_failed:
            raise AirflowFailException(
                f"SageMaker {self.job_type} job {name} already ended {status}: {reason}. Not starting another "
                f"paid job; fix the cause and clear the run, or set restart_failed=True to start a new attempt."
            )
        if attempt >= MAX_RESTARTS:
            raise AirflowFailException(
                f"SageMaker {self.job_type} job {name} ended {status} ({reason}) after {MAX_RESTARTS} restarts; "
                "giving up."
            )
        self.config[self.name_field] = attempt_name(base, attempt + 1)
        self.log.warning(
            "SageMaker %s job %s ended %s (%s); restart_failed=True so starting %s.",
            self.job_type,
            name,
            status,
            reason,
            self.config[self.name_field],
        )
        return self._start(context)

    def _start(self, context: Any) -> dict[str, Any]:
        """Create the configured job exactly as the provider does, its link pushed first."""
        self._persist_link(context)
        return super().execute(context)

    def _persist_link(self, context: Any) -> None:
        url = links.persist(context, self.hook, self.job_type.lower(), self.config[self.name_field])
        self.log.info("SageMaker %s job page: %s", self.job_type, url)

    def _reattach(self, name: str, context: Any) -> dict[str, Any]:
        if self.deferrable and self.wait_for_completion:
            timeout = self.execution_timeout
            if self.max_ingestion_time:
                timeout = datetime.timedelta(seconds=self.max_ingestion_time)
            self.defer(
                timeout=timeout,
                trigger=SageMakerTrigger(
                    job_name=name,
                    job_type=self.job_type,
                    waiter_delay=self.check_interval,
                    waiter_max_attempts=self.max_attempts,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    verify=self.verify,
                    botocore_config=self.botocore_config,
                ),
                method_name="execute_complete",
            )
        if not self.wait_for_completion:
            return self._completed_result(self._describe_func()(name))
        description = self.hook.check_status(
            name,
            self.status_field,
            self._describe_func(),
            self.check_interval,
            self.max_ingestion_time,
            non_terminal_states=set(IN_PROGRESS),
        )
        if description[self.status_field] != "Completed":
            raise AirflowException(
                f"SageMaker {self.job_type} job {name} ended {description[self.status_field]}: "
                f"{description.get('FailureReason') or '(no FailureReason given)'}"
            )
        return self._completed_result(description)


class ReattachingTrainingOperator(ReattachJobMixin, SageMakerTrainingOperator):
    """:class:`SageMakerTrainingOperator` whose retries re-attach to the job instead of paying for another.

    :param restart_failed: start a new attempt (``<name>-r<n>``) when the job ended Failed/Stopped,
        instead of failing the task. Off by default.

    Deferred (a new job or a re-attached one), it waits on :class:`~ogiri.training_logs.TrainingLogTrigger`
    when ``print_log`` is on, so the job's epoch and loss lines reach the task log while it runs.
    """

    name_field = "TrainingJobName"
    status_field = "TrainingJobStatus"
    job_type = "Training"
    result_key = "Training"

    def __init__(self, *, restart_failed: bool = False, **kwargs: Any) -> None:
        kwargs["check_if_job_exists"] = False  # existence is handled here; never rename with a timestamp
        super().__init__(**kwargs)
        self.restart_failed = restart_failed

    def _describe_func(self) -> Callable[[str], dict[str, Any]]:
        return self.hook.describe_training_job

    def defer(self, *, trigger: Any, method_name: str, kwargs: dict[str, Any] | None = None,
              timeout: datetime.timedelta | None = None) -> None:
        """Defer as asked, on the log-tailing trigger instead of the plain waiter when printing logs."""
        if self.print_log and isinstance(trigger, SageMakerTrigger):
            from ogiri.training_logs import TrainingLogTrigger

            trigger = TrainingLogTrigger(
                job_name=trigger.job_name,
                poll_seconds=self.check_interval,
                max_attempts=self.max_attempts,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
            )
        super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def _completed_result(self, description: dict[str, Any]) -> dict[str, Any]:
        self.serialized_training_data = serialize(description)
        return {"Training": self.serialized_training_data}


class ReattachingProcessingOperator(ReattachJobMixin, SageMakerProcessingOperator):
    """:class:`SageMakerProcessingOperator` with the same describe-first retry behaviour.

    :param restart_failed: start a new attempt when the job ended Failed/Stopped. Off by default.
    """

    name_field = "ProcessingJobName"
    status_field = "ProcessingJobStatus"
    job_type = "Processing"
    result_key = "Processing"

    def __init__(self, *, restart_failed: bool = False, **kwargs: Any) -> None:
        kwargs["action_if_job_exists"] = "fail"  # never rename with a timestamp
        super().__init__(**kwargs)
        self.restart_failed = restart_failed

    def _describe_func(self) -> Callable[[str], dict[str, Any]]:
        return self.hook.describe_processing_job

    def _completed_result(self, description: dict[str, Any]) -> dict[str, Any]:
        self.serialized_job = serialize(description)
        result = {"Processing": self.serialized_job}
        result.update(self._read_output_files())
        return result


class ReattachingTuningOperator(ReattachJobMixin, SageMakerTuningOperator):
    """:class:`SageMakerTuningOperator` with the same describe-first retry behaviour: a retry re-attaches
    to the tuning job it started (and so to its training jobs) instead of starting another.

    Give it a tuning job name of at most 29 characters, so ``-r<n>`` attempts fit SageMaker's 32.

    :param restart_failed: start a new attempt when the tuning job ended Failed/Stopped. Off by default.
    :param max_attempts: polls of a re-attached wait (the provider's operator has no such argument).
    """

    name_field = "HyperParameterTuningJobName"
    status_field = "HyperParameterTuningJobStatus"
    job_type = "Tuning"
    result_key = "Tuning"

    def __init__(self, *, restart_failed: bool = False, max_attempts: int = 1440, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.restart_failed = restart_failed
        self.max_attempts = max_attempts

    def _describe_func(self) -> Callable[[str], dict[str, Any]]:
        return self.hook.describe_tuning_job

    def _latest_attempt(self, base: str) -> tuple[int, dict[str, Any] | None]:
        if not self.restart_failed:  # attempts beyond the first only exist when restarts are on
            return 0, self._describe_or_none(base)
        return super()._latest_attempt(base)


class ReusingModelOperator(SageMakerModelOperator):
    """:class:`SageMakerModelOperator` that reuses the model when one of the configured (deterministic)
    name exists, so a retry after the model was created does not fail on "already existing model"."""

    def execute(self, context: Any) -> dict:
        fail_fast_on_access_denied(self.hook.conn)
        try:
            existing = self.hook.describe_model(self.config["ModelName"])
        except ClientError as exc:
            if not not_found(exc):
                raise
            return super().execute(context)
        self.log.info("SageMaker model %s already exists: reusing it.", self.config["ModelName"])
        return {"Model": serialize(existing)}


class ReusingEndpointConfigOperator(SageMakerEndpointConfigOperator):
    """:class:`SageMakerEndpointConfigOperator` that reuses an existing endpoint config of the configured
    name, so a retry after it was created does not fail on "already existing endpoint configuration"."""

    def execute(self, context: Any) -> dict:
        fail_fast_on_access_denied(self.hook.conn)
        name = self.config["EndpointConfigName"]
        try:
            existing = self.hook.describe_endpoint_config(name)
        except ClientError as exc:
            if not not_found(exc):
                raise
            return super().execute(context)
        self.log.info("SageMaker endpoint config %s already exists: reusing it.", name)
        return {"EndpointConfig": serialize(existing)}
