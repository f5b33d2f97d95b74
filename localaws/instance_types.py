"""Accept current SageMaker instance types (moto 5.2.5's fixed lists reject ``ml.g5.*``, ``ml.p5.*`` ...).

``install()`` replaces the validators on moto's SageMaker model classes with one pattern check:
``ml.<family>.<size>`` (e.g. ``ml.g5.xlarge``, ``ml.p4d.24xlarge``) or ``local`` / ``local_gpu``
(SageMaker local mode). Anything else still fails with moto's ``ValidationException``.
"""

from __future__ import annotations

import re

INSTANCE_TYPE_PATTERN = re.compile(r"^(ml\.[a-z0-9-]+\.[a-z0-9-]+|local|local_gpu)$")


def is_valid_instance_type(instance_type: object) -> bool:
    """Whether ``instance_type`` looks like a SageMaker instance type (``ml.g5.xlarge``, ``local``)."""
    return isinstance(instance_type, str) and INSTANCE_TYPE_PATTERN.match(instance_type) is not None


def check_instance_type(instance_type: object, field: str = "instanceType") -> None:
    """Raise moto's SageMaker ValidationError (HTTP 400 ``ValidationException``) for a malformed type."""
    if not is_valid_instance_type(instance_type):
        from moto.sagemaker.exceptions import ValidationError

        raise ValidationError(
            message=f"Value '{instance_type}' at '{field}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {INSTANCE_TYPE_PATTERN.pattern}"
        )


def _validate_instance_type(self: object, instance_type: str) -> None:
    check_instance_type(instance_type)


def _validate_transform_types(instance_types: list[str]) -> None:
    for instance_type in instance_types:
        check_instance_type(instance_type, "SupportedTransformInstanceTypes")


def _validate_realtime_types(instance_types: list[str]) -> None:
    for instance_type in instance_types:
        check_instance_type(instance_type, "SupportedRealtimeInferenceInstanceTypes")


def _validate_cluster_type(self: object, instance_type: str) -> None:
    check_instance_type(instance_type, "InstanceType")


def install() -> None:
    """Patch moto's SageMaker validators to accept every well-formed instance type (idempotent)."""
    from moto.sagemaker import models

    models.FakeEndpointConfig.validate_instance_type = _validate_instance_type  # type: ignore[method-assign]
    models.FakeSagemakerNotebookInstance.validate_instance_type = _validate_instance_type  # type: ignore[method-assign]
    models.ModelPackage.validate_supported_transform_instance_types = staticmethod(_validate_transform_types)  # type: ignore[method-assign]
    models.ModelPackage.validate_supported_realtime_inference_instance_types = staticmethod(  # type: ignore[method-assign]
        _validate_realtime_types
    )
    models.Cluster.valid_cluster_node_instance_types = _validate_cluster_type  # type: ignore[method-assign]
