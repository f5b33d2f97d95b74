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

:class:`ReattachingEndpointOperator` does it for Create/UpdateEndpoint: a retry that finds the
endpoint changing to *this* config waits for it instead of calling again ("Cannot update in-progress
endpoint"); another deployment in progress fails the task clearly; while it waits, the task log shows
each step of a guarded update's traffic shift (``PendingDeploymentSummary``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointConfigOperator,
    SageMakerEndpointOperator,
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
#: SageMakerTrigger job type -> (Stop* client method, its name parameter, Describe* method, status key)
_STOP = {
    "Training": ("stop_training_job", "TrainingJobName", "describe_training_job", "TrainingJobStatus"),
    "Processing": ("stop_processing_job", "ProcessingJobName", "describe_processing_job", "ProcessingJobStatus"),
    "Transform": ("stop_transform_job", "TransformJobName", "describe_transform_job", "TransformJobStatus"),
    "Tuning": ("stop_hyper_parameter_tuning_job", "HyperParameterTuningJobName",
               "describe_hyper_parameter_tuning_job", "HyperParameterTuningJobStatus"),
}
ENDED_BADLY = frozenset({"Failed", "Stopped"})
#: At most this many restarts of a failed job, so a broken job can never loop on paid instances.
MAX_RESTARTS = 5


def attempt_name(base: str, attempt: int) -> str:
    """``base`` for attempt 0, else ``base`` shortened to fit and suffixed ``-r<attempt>`` (≤ 63 chars)."""
    if attempt == 0:
        return base
    suffix = f"-r{attempt}"
    return base[: 63 - len(suffix)].rstrip("-") + suffix


def stop_job(sm_client: Any, job_type: str, name: str, log: Any) -> bool:
    """Stop the job when it is still ``InProgress`` (a user killed the task waiting on it, so it must not
    keep running on paid instances). True when a stop was requested."""
    stop, field, describe, status_key = _STOP[job_type]
    try:
        status = getattr(sm_client, describe)(**{field: name})[status_key]
    except ClientError as exc:
        if not_found(exc):
            log.info("SageMaker %s job %s was never created: nothing to stop.", job_type, name)
            return False
        raise
    if status != "InProgress":
        log.info("SageMaker %s job %s is %s: nothing to stop.", job_type, name, status)
        return False
    getattr(sm_client, stop)(**{field: name})
    log.warning("Task killed: stopping SageMaker %s job %s so it does not keep running.", job_type, name)
    return True


class StoppingSageMakerTrigger(SageMakerTrigger):
    """The provider's :class:`SageMakerTrigger`, which also stops the job when a user kills the deferred
    task (mark failed or success, clear); a triggerer restart or a timeout leaves the job running."""

    async def on_kill(self) -> None:
        """Stop the job (in a thread: the client is synchronous)."""
        import asyncio

        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        hook = SageMakerHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        await asyncio.to_thread(stop_job, hook.conn, self.job_type, self.job_name, self.log)


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

    def on_kill(self) -> None:
        """A user killed the task while it waited on the job in the worker: stop the job."""
        stop_job(self.hook.conn, self.job_type, self.config[self.name_field], self.log)

    def defer(self, *, trigger: Any, method_name: str, kwargs: dict[str, Any] | None = None,
              timeout: datetime.timedelta | None = None) -> None:
        """Defer as asked, on a trigger that stops the job when the deferred task is killed."""
        if type(trigger) is SageMakerTrigger:
            trigger = StoppingSageMakerTrigger(
                job_name=trigger.job_name,
                job_type=trigger.job_type,
                waiter_delay=trigger.waiter_delay,
                waiter_max_attempts=trigger.attempts,
                aws_conn_id=trigger.aws_conn_id,
                region_name=trigger.region_name,
                verify=trigger.verify,
                botocore_config=trigger.botocore_config,
            )
        super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

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


#: Endpoint states in which SageMaker is still changing the endpoint.
ENDPOINT_CHANGING = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


def deployment_step(endpoint: dict[str, Any]) -> str:
    """One line for the log: the endpoint's status and, during a deployment, each variant's step."""
    pending = endpoint.get("PendingDeploymentSummary") or {}
    steps = [
        f"{v['VariantName']}: {s.get('Status')} - {s.get('StatusMessage', '')}".rstrip(" -")
        for v in pending.get("ProductionVariants") or [] for s in v.get("VariantStatus") or []
    ]
    target = f" to {pending['EndpointConfigName']}" if pending.get("EndpointConfigName") else ""
    return f"{endpoint['EndpointStatus']}{target}" + (f" ({'; '.join(steps)})" if steps else "")


class ReattachingEndpointOperator(SageMakerEndpointOperator):
    """:class:`SageMakerEndpointOperator` (``config`` = the Create/UpdateEndpoint request, which may hold
    a ``DeploymentConfig``) that describes the endpoint first and waits in the task, logging the traffic
    shift. An endpoint SageMaker rolled back (InService on another config) is logged as a warning, as the
    provider's waiter ends there too; the smoke test that follows records and fails it. A Failed
    endpoint fails the task without a retry."""

    def execute(self, context: Any) -> dict:
        fail_fast_on_access_denied(self.hook.conn)
        request = self.config.get("Endpoint", self.config)
        name, wanted = request["EndpointName"], request["EndpointConfigName"]
        current = self._describe_or_none(name)
        if current is not None and current["EndpointStatus"] in ENDPOINT_CHANGING:
            target = (current.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
            if current["EndpointStatus"] == "Creating":
                target = current["EndpointConfigName"]
            if target != wanted:
                raise AirflowFailException(
                    f"SageMaker endpoint {name} is {current['EndpointStatus']} with another deployment "
                    f"({target or 'unknown endpoint config'}), not this run's {wanted}: not starting a second "
                    "update. Let it finish, then clear this task."
                )
            self.log.info("Endpoint %s is already %s with %s (a previous try's call): waiting for it, "
                          "not calling again.", name, current["EndpointStatus"], wanted)
            return self._watch(name, wanted)
        if current is not None and current["EndpointStatus"] == "InService" and current["EndpointConfigName"] == wanted:
            self.log.info("Endpoint %s already serves %s: nothing to do.", name, wanted)
            return self._watch(name, wanted)
        if self.operation == "create":
            self.log.info("First deploy of %s: creating it with %s. There is no traffic to shift, so no "
                          "canary or baking period (guarded traffic shifting applies to updates).", name, wanted)
        self.deferrable, self.wait_for_completion = False, False  # the wait below logs each step
        super().execute(context)
        return self._watch(name, wanted)

    def _describe_or_none(self, name: str) -> dict[str, Any] | None:
        try:
            return self.hook.describe_endpoint(name)
        except ClientError as exc:
            if not_found(exc):
                return None
            raise

    def _watch(self, name: str, wanted: str) -> dict[str, Any]:
        """Poll until the endpoint settles, logging every change of step; fail if it is not serving ``wanted``."""
        import time

        deadline = time.monotonic() + (self.max_ingestion_time or 3600)
        last = None
        while True:
            endpoint = self.hook.describe_endpoint(name)
            line = deployment_step(endpoint)
            if line != last:
                self.log.info("Endpoint %s: %s", name, line)
                last = line
            if endpoint["EndpointStatus"] not in ENDPOINT_CHANGING:
                break
            if time.monotonic() > deadline:
                raise AirflowException(f"endpoint {name} still {endpoint['EndpointStatus']} after "
                                       f"{self.max_ingestion_time}s; a retry re-attaches")
            time.sleep(self.check_interval)
        if endpoint["EndpointStatus"] != "InService":
            raise AirflowFailException(f"SageMaker endpoint {name} is {endpoint['EndpointStatus']}: "
                                       f"{endpoint.get('FailureReason')}")
        if endpoint["EndpointConfigName"] != wanted:  # not retried: a retry would deploy the same model again
            self.log.warning("SageMaker rolled the update of %s back: it serves %s again, not %s. FailureReason: "
                             "%s", name, endpoint["EndpointConfigName"], wanted, endpoint.get("FailureReason"))
        return {"EndpointConfig": serialize(self.hook.describe_endpoint_config(wanted)), "Endpoint": serialize(endpoint)}
