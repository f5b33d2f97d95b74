"""Training progress in the task log while the job runs, deferrable mode included.

The Amazon provider prints a training job's CloudWatch log only when the operator waits in the
worker; deferred, it waits on the plain ``SageMakerTrigger``, whose log says only "Training job
not done yet: InProgress" every poll. :class:`TrainingLogTrigger` waits in the triggerer like that
trigger, and also tails the job's streams in ``/aws/sagemaker/TrainingJobs`` (``<job>/algo-*``),
logging every line as the job prints it (epoch, loss, validation metrics), which Airflow shows in
the task's log. At the end it logs the job's final metrics as one summary line and fires the same
event the provider's ``execute_complete`` expects.

It needs ``logs:DescribeLogStreams`` and ``logs:GetLogEvents`` on the log group (the worker
role's ``ReadJobLogs`` statement in ``infra/ogiri.yaml``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL = {"Completed": "success", "Failed": "failed", "Stopped": "stopped"}


def metrics_line(job_name: str, description: dict[str, Any]) -> str:
    """``training job <name> Completed: train:loss=1.23 val:bleu4=0.31 …`` from a description."""
    metrics = sorted((m["MetricName"], m["Value"]) for m in description.get("FinalMetricDataList") or [])
    shown = " ".join(f"{name}={value:.4g}" for name, value in metrics) or "(no metrics reported)"
    return f"training job {job_name} {description.get('TrainingJobStatus')}: {shown}"


class JobPollTrigger(BaseTrigger):
    """Base of our job-polling triggers: one job name, a poll interval, a poll budget and the AWS
    connection; subclasses implement ``run`` (and ``on_kill``). Serializes as its own class."""

    def __init__(self, job_name: str, poll_seconds: float = 30, max_attempts: int = 480,
                 aws_conn_id: str | None = "aws_default", region_name: str | None = None):
        super().__init__()
        self.job_name = job_name
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and kwargs, for the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"job_name": self.job_name, "poll_seconds": self.poll_seconds, "max_attempts": self.max_attempts,
             "aws_conn_id": self.aws_conn_id, "region_name": self.region_name},
        )


class TrainingLogTrigger(JobPollTrigger):
    """Wait for a training job and stream its CloudWatch log lines into the task log."""

    async def on_kill(self) -> None:
        """A user killed the deferred task: stop the training job."""

        from ogiri.jobs import stop_job

        sagemaker_hook, _ = self._hooks()
        await asyncio.to_thread(stop_job, sagemaker_hook.conn, "Training", self.job_name, self.log)

    def _hooks(self):
        from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        kw = {"aws_conn_id": self.aws_conn_id, "region_name": self.region_name}
        return SageMakerHook(**kw), AwsLogsHook(**kw)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the job; log new lines of each of its streams; fire when it ends."""
        sagemaker_hook, logs_hook = self._hooks()
        tokens: dict[str, str | None] = {}
        async with await sagemaker_hook.get_async_conn() as sm, await logs_hook.get_async_conn() as logs:
            for _ in range(self.max_attempts):
                description = await sm.describe_training_job(TrainingJobName=self.job_name)
                status = description["TrainingJobStatus"]
                await self._print_new_lines(logs, tokens)
                if status in TERMINAL:
                    await self._print_new_lines(logs, tokens)  # what the job wrote as it ended
                    self.log.info("%s", metrics_line(self.job_name, description))
                    message = description.get("FailureReason") or f"training job {self.job_name} {status}"
                    yield TriggerEvent({"status": TERMINAL[status], "job_name": self.job_name, "message": message})
                    return
                await asyncio.sleep(self.poll_seconds)
        yield TriggerEvent({"status": "timeout", "job_name": self.job_name,
                            "message": f"training job {self.job_name} still running after {self.max_attempts} polls"})

    async def _print_new_lines(self, logs: Any, tokens: dict[str, str | None]) -> None:
        """Log the lines added to the job's streams since the last call (``tokens`` per stream)."""
        try:
            page = await logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{self.job_name}/")
        except Exception as exc:  # noqa: BLE001 - no group yet (job starting) or no permission: keep waiting
            if "ResourceNotFound" not in str(exc):
                self.log.warning("cannot list the log streams of %s: %s", self.job_name, exc)
            return
        for stream in sorted(s["logStreamName"] for s in page.get("logStreams", [])):
            await self._print_stream(logs, stream, tokens)

    async def _print_stream(self, logs: Any, stream: str, tokens: dict[str, str | None]) -> None:
        while True:
            kwargs: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
            if tokens.get(stream):
                kwargs["nextToken"] = tokens[stream]
            page = await logs.get_log_events(**kwargs)
            for event in page.get("events", []):
                self.log.info("[%s] %s", stream.split("/", 1)[-1], event["message"].rstrip())
            token = page.get("nextForwardToken")
            if not page.get("events") or token == tokens.get(stream):
                tokens[stream] = token
                return
            tokens[stream] = token
