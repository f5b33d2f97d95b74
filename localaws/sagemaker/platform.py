"""What SageMaker itself does as the execution role, on a job's or an endpoint's behalf.

SageMaker pulls the container image, downloads the inputs, uploads the outputs, writes the CloudWatch
logs and publishes the training metrics with the role it assumed (a job's ``RoleArn``, a model's
``ExecutionRoleArn``), never with the caller's identity. Under IAM enforcement each step is held to
that role's policies, with AWS's consequences:

* **image pull** (images in ECR): ``ecr:GetAuthorizationToken`` and ``BatchCheckLayerAvailability``,
  ``GetDownloadUrlForLayer``, ``BatchGetImage`` on the image's repository; a denial fails the job or
  the endpoint with SageMaker's reason ("The role '…' does not have BatchGetImage permission for the
  image: '…'.");
* **S3 staging**: every download and upload is signed with the role session, so a denied one fails
  the job with a ``ClientError`` naming the object;
* **logs**: ``logs:CreateLogGroup`` (for a new group), ``CreateLogStream``, ``PutLogEvents`` and
  ``DescribeLogStreams``; a denial leaves the stream empty (AWS drops the logs; the job still runs);
* **metrics**: ``cloudwatch:PutMetricData`` in ``/aws/sagemaker/TrainingJobs`` for the
  ``MetricDefinitions`` values (dimension ``Host``); a denial publishes nothing.

Without enforcement every step is allowed (IAM is not modelled then).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from localaws.iam import service_decision
from localaws.sagemaker import roles
from localaws.sagemaker.common import LogSink, s3_client

#: ``<registry>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:tag|@digest]``
_ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)")
_PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage")
#: Where SageMaker publishes a training job's MetricDefinitions values.
TRAINING_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"


class PlatformDenied(Exception):
    """SageMaker could not do a step as the execution role (the message is SageMaker's reason)."""


@dataclass
class RoleSession:
    """The execution role session SageMaker holds for one job or model."""

    account: str
    region: str
    role_arn: str | None
    credentials: dict[str, str]

    @classmethod
    def assume(cls, role_arn: str | None, account: str, region: str, source_arn: str) -> RoleSession:
        """Assume the role as SageMaker does (raises ``roles.RoleUnusable`` with SageMaker's message)."""
        return cls(account, region, role_arn, roles.credentials(role_arn, account, region, source_arn))

    def denial(self, action: str, resource: str, context: dict[str, list[str]] | None = None) -> str | None:
        """None when the role may do ``action`` on ``resource``, else AWS's denial message."""
        return service_decision(self.credentials, action, resource, self.region, context)

    def s3(self) -> Any:
        """An S3 client signed with the role session."""
        return s3_client(self.region, self.credentials)

    def pull_image(self, image: str | None) -> None:
        """Raise PlatformDenied when the role may not pull ``image`` (non-ECR images are not checked)."""
        found = _ECR_IMAGE.match(image or "")
        if not found:
            return
        registry, region, repository = found.groups()
        repo_arn = f"arn:aws:ecr:{region}:{registry}:repository/{repository}"
        denied = [a for a in ("ecr:GetAuthorizationToken",) if self.denial(a, "*")]
        denied += [a for a in _PULL_ACTIONS if self.denial(a, repo_arn)]
        if denied:
            action = "BatchGetImage" if "ecr:BatchGetImage" in denied else denied[0].split(":", 1)[1]
            raise PlatformDenied(f"The role '{self.role_arn}' does not have {action} permission for the image: '{image}'.")

    def log_sink(self, group: str, stream: str) -> LogSink:
        """A writer for ``group``/``stream`` that writes nothing when the role may not log there."""
        group_arn = f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}"
        checks = [
            ("logs:CreateLogGroup", group_arn),
            ("logs:CreateLogStream", f"{group_arn}:log-stream:{stream}"),
            ("logs:PutLogEvents", f"{group_arn}:log-stream:{stream}"),
            ("logs:DescribeLogStreams", f"{group_arn}:*"),
        ]
        if LogSink.group_exists(self.account, self.region, group):
            checks = checks[1:]
        allowed = not [a for a, r in checks if self.denial(a, r)]
        return LogSink(self.account, self.region, group, stream, enabled=allowed)

    def publish_training_metrics(self, job_name: str, metrics: list[dict[str, Any]]) -> bool:
        """Publish the final MetricDefinitions values to CloudWatch; False when the role may not."""
        if not metrics:
            return True
        context = {"cloudwatch:namespace": [TRAINING_METRICS_NAMESPACE]}
        if self.denial("cloudwatch:PutMetricData", "*", context):
            return False
        from moto.cloudwatch.models import cloudwatch_backends

        data = [
            {
                "MetricName": m["MetricName"],
                "Value": float(m["Value"]),
                "Timestamp": m.get("Timestamp"),
                "Dimensions": [{"Name": "Host", "Value": f"{job_name}/algo-1"}],
            }
            for m in metrics
        ]
        cloudwatch_backends[self.account][self.region].put_metric_data(TRAINING_METRICS_NAMESPACE, data)
        return True
