"""A retry-safe, deferrable SageMaker batch transform operator.

:class:`RetrySafeTransformOperator` is the provider's :class:`SageMakerTransformOperator` with the
describe-first behaviour of :class:`ogiri.jobs.ReattachJobMixin`: the configured
``TransformJobName`` (deterministic, from the run key) *is* the job's identity, so a task retry

* creates the job when none of that name exists,
* re-attaches (defers on the provider's trigger) when it is ``InProgress``/``Stopping``,
* reuses a ``Completed`` job's result without starting anything,
* fails loudly, without retrying, when it ``Failed``/``Stopped`` (SageMaker's ``FailureReason`` in the
  message): a second paid job for the same run is never started behind the user's back. A job that
  fails while the task waits on it also fails the task without retries, since a retry could only
  find the same failed job.

The poll interval defaults to ``OGIRI_SAGEMAKER_POLL_SECONDS`` (30), read when the task runs.
"""

from __future__ import annotations

import math
from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTransformOperator, serialize
from airflow.sdk.exceptions import AirflowFailException

from ogiri.jobs import ReattachJobMixin

#: Poll interval until ``execute`` reads the setting (the operator is built at parse time).
DEFAULT_POLL_SECONDS = 30
#: How long a deferred task waits for one transform job before giving up.
DEFAULT_MAX_WAIT_SECONDS = 12 * 3600


def poll_seconds(explicit: int | None = None) -> int:
    """``explicit`` if given, else ``Settings.sagemaker_poll_seconds`` (``OGIRI_SAGEMAKER_POLL_SECONDS``, 30)."""
    if explicit is not None:
        return int(explicit)
    from ogiri.config import get_settings

    return get_settings().sagemaker_poll_seconds


class RetrySafeTransformOperator(ReattachJobMixin, SageMakerTransformOperator):
    """:class:`SageMakerTransformOperator` whose retries re-attach to / reuse the job they started.

    ``config`` is a ``CreateTransformJob`` request (no ``Model`` section: the model must exist).

    :param check_interval: seconds between status polls (default: ``OGIRI_SAGEMAKER_POLL_SECONDS`` or 30).
    :param max_wait_seconds: give up waiting after this long (default 12 h).
    :param restart_failed: start ``<name>-r1``… when the job ended Failed/Stopped instead of failing.
    """

    name_field = "TransformJobName"
    status_field = "TransformJobStatus"
    job_type = "Transform"
    result_key = "Transform"

    def __init__(
        self,
        *,
        check_interval: int | None = None,
        max_wait_seconds: int = DEFAULT_MAX_WAIT_SECONDS,
        restart_failed: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs["check_if_job_exists"] = False  # existence is handled by the mixin; never rename
        kwargs["check_if_model_exists"] = False
        super().__init__(check_interval=DEFAULT_POLL_SECONDS, **kwargs)
        self._check_interval_arg = check_interval
        self.max_wait_seconds = max_wait_seconds
        self.restart_failed = restart_failed

    def execute(self, context: Any) -> dict[str, Any]:
        if "Model" in self.config or "Transform" in self.config:
            raise ValueError(
                "RetrySafeTransformOperator takes a bare CreateTransformJob config (no Model section)"
            )
        self.check_interval = poll_seconds(self._check_interval_arg)
        self.max_attempts = max(1, math.ceil(self.max_wait_seconds / self.check_interval))
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, dict]:
        """Resume after the trigger: a Failed/Stopped job fails the task without retries (a retry
        would only find the same ended job); a timeout or trigger error may be retried (re-attach)."""
        if event and event.get("status") in {"failed", "stopped"}:
            name = event.get("job_name") or self.config[self.name_field]
            reason = event.get("message") or "(no FailureReason given)"
            raise AirflowFailException(f"SageMaker Transform job {name} ended {event['status']}: {reason}")
        return super().execute_complete(context, event)

    def _describe_func(self):
        return self.hook.describe_transform_job

    def _completed_result(self, description: dict[str, Any]) -> dict[str, Any]:
        self.serialized_model = {}
        self.serialized_transform = serialize(description)
        return {"Transform": self.serialized_transform}

    def serialize_result(self, job_name: str) -> dict[str, dict]:
        """The job's description (the model's is not fetched: the model may be replaced later)."""
        return self._completed_result(self.hook.describe_transform_job(job_name))
