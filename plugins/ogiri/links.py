"""Extra links on the SageMaker tasks: the job or endpoint in the AWS console on AWS, and the
emulator's own page of it (``/_localaws/sagemaker/<kind>/<name>``) when the AWS connection points
at a local endpoint. The URL is pushed when the task starts the job, so it is there while the task
waits (deferred) too.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

#: Our kind → the console's path segment.
CONSOLE_PATHS = {
    "training": "jobs",
    "processing": "processing-jobs",
    "transform": "transform-jobs",
    "endpoint": "endpoints",
    "tuning": "hyper-tuning-jobs",
    "labeling": "labeling-jobs",
}
_DOMAINS = {"aws": "aws.amazon.com", "aws-cn": "amazonaws.cn", "aws-us-gov": "amazonaws-us-gov.com"}


def resource_url(kind: str, name: str, region: str, *, endpoint_url: str | None = None, partition: str = "aws") -> str:
    """The page of a SageMaker ``kind`` (``training``/``processing``/``transform``/``endpoint``)."""
    quoted = urllib.parse.quote(name, safe="")
    if endpoint_url:
        return f"{endpoint_url.rstrip('/')}/_localaws/sagemaker/{kind}/{quoted}?region={urllib.parse.quote(region)}"
    domain = _DOMAINS.get(partition, _DOMAINS["aws"])
    return f"https://console.{domain}/sagemaker/home?region={region}#/{CONSOLE_PATHS[kind]}/{quoted}"


class SageMakerResourceLink(BaseOperatorLink):
    """"SageMaker job" button: the URL pushed by :func:`persist`."""

    name = "SageMaker job"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """The pushed URL, or nothing before the task named its job."""
        return XCom.get_value(key=self.xcom_key, ti_key=ti_key) or ""


def persist(context: Any, hook: Any, kind: str, name: str) -> str:
    """Push the link of ``name`` for this task instance (through ``hook``'s connection)."""
    url = resource_url(
        kind,
        name,
        hook.conn_region_name or "us-east-1",
        endpoint_url=hook.conn_config.endpoint_url,
        partition=hook.conn_partition,
    )
    ti = context.get("ti")
    if ti is not None:  # an operator called outside a task instance has nowhere to push it
        ti.xcom_push(key=SageMakerResourceLink().xcom_key, value=url)
    return url
