"""SageMaker's "not found" answers, worded as AWS words them (moto's differ: single quotes, other texts).

All are `ValidationException` (HTTP 400), although the API model lists `ResourceNotFound` for the
job operations: that is what SageMaker answers in practice (see the ACK SageMaker controller's
`generator.yaml`, which keys its 404 handling on these exact prefixes, and the error texts quoted in
aws/amazon-sagemaker-examples and aws/sagemaker-python-sdk threads). SageMaker ARNs carry the
resource name in lower case.
"""

from __future__ import annotations

from moto.sagemaker.exceptions import ValidationError


def arn(kind: str, name: str, account: str, region: str) -> str:
    """`arn:aws:sagemaker:<region>:<account>:<kind>/<name in lower case>`."""
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"


def training_job(name: str) -> ValidationError:
    """DescribeTrainingJob / StopTrainingJob of an unknown job."""
    return ValidationError(message="Requested resource not found.")


def job(name: str) -> ValidationError:
    """Describe/Stop of an unknown processing or transform job."""
    return ValidationError(message=f"Could not find requested job with name {name}")


def model(name: str, account: str, region: str) -> ValidationError:
    """An unknown model (DescribeModel, DeleteModel, a variant or transform job naming it)."""
    return ValidationError(message=f'Could not find model "{arn("model", name, account, region)}".')


def endpoint_config(name: str, account: str, region: str) -> ValidationError:
    """An unknown endpoint configuration (Describe/Delete, CreateEndpoint, UpdateEndpoint)."""
    return ValidationError(
        message=f'Could not find endpoint configuration "{arn("endpoint-config", name, account, region)}".'
    )


def endpoint(name: str, account: str, region: str) -> ValidationError:
    """An unknown endpoint (Describe/Delete/UpdateEndpoint)."""
    return ValidationError(message=f'Could not find endpoint "{arn("endpoint", name, account, region)}".')


def model_package(name: str) -> ValidationError:
    """DescribeModelPackage / UpdateModelPackage of an unknown package (name or ARN as given)."""
    return ValidationError(message=f"Model package {name} does not exist.")
