"""SageMaker instance types checked as AWS checks them: against each API's own enum.

moto 5.2.5's fixed lists reject current types (``ml.g5.*``, ``ml.p5.*`` ...), and a loose pattern
would accept types AWS refuses (``ml.zz99.huge``, ``local``). The enums here come from the
SageMaker service model shipped with botocore (the same JSON AWS's own SDKs are generated from),
one per API: ``ProductionVariantInstanceType`` for endpoint configs and real-time model packages,
``TrainingInstanceType``, ``ProcessingInstanceType``, ``TransformInstanceType``,
``ClusterInstanceType`` and the notebook ``InstanceType``. ``local`` / ``local_gpu`` are the
SageMaker Python SDK's local mode, never accepted by the service, so they are refused here too.

A refusal is AWS's ``ValidationException`` wording: ``1 validation error detected: Value 'x' at
'<field>' failed to satisfy constraint: Member must satisfy enum value set: [...]``.
"""

from __future__ import annotations

from functools import cache

ENDPOINT = "ProductionVariantInstanceType"
TRAINING = "TrainingInstanceType"
PROCESSING = "ProcessingInstanceType"
TRANSFORM = "TransformInstanceType"
CLUSTER = "ClusterInstanceType"
NOTEBOOK = "InstanceType"


@cache
def instance_types(shape: str = ENDPOINT) -> frozenset[str]:
    """The instance types the SageMaker API accepts where ``shape`` is used (botocore's model)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for(shape).enum)


def is_valid_instance_type(instance_type: object, shape: str = ENDPOINT) -> bool:
    """Whether ``instance_type`` is in the enum of ``shape`` (``ml.g5.xlarge`` yes, ``local`` no)."""
    return isinstance(instance_type, str) and instance_type in instance_types(shape)


def check_instance_type(instance_type: object, field: str = "instanceType", shape: str = ENDPOINT) -> None:
    """Raise moto's SageMaker ValidationError (HTTP 400 ``ValidationException``) as AWS words it."""
    if not is_valid_instance_type(instance_type, shape):
        from moto.sagemaker.exceptions import ValidationError

        raise ValidationError(
            message=f"1 validation error detected: Value '{instance_type}' at '{field}' failed to satisfy "
            f"constraint: Member must satisfy enum value set: [{', '.join(sorted(instance_types(shape)))}]"
        )


def _validate_instance_type(self: object, instance_type: str) -> None:
    check_instance_type(instance_type, "productionVariants.1.member.instanceType", ENDPOINT)


def _validate_notebook_type(self: object, instance_type: str) -> None:
    check_instance_type(instance_type, "instanceType", NOTEBOOK)


def _validate_transform_types(instance_types_: list[str]) -> None:
    for instance_type in instance_types_:
        check_instance_type(instance_type, "inferenceSpecification.supportedTransformInstanceTypes", TRANSFORM)


def _validate_realtime_types(instance_types_: list[str]) -> None:
    for instance_type in instance_types_:
        check_instance_type(instance_type, "inferenceSpecification.supportedRealtimeInferenceInstanceTypes", ENDPOINT)


def _validate_cluster_type(self: object, instance_type: str) -> None:
    check_instance_type(instance_type, "instanceGroups.1.member.instanceType", CLUSTER)


def install() -> None:
    """Patch moto's SageMaker validators to check each API's enum (idempotent)."""
    from moto.sagemaker import models

    models.FakeEndpointConfig.validate_instance_type = _validate_instance_type  # type: ignore[method-assign]
    models.FakeSagemakerNotebookInstance.validate_instance_type = _validate_notebook_type  # type: ignore[method-assign]
    models.ModelPackage.validate_supported_transform_instance_types = staticmethod(_validate_transform_types)  # type: ignore[method-assign]
    models.ModelPackage.validate_supported_realtime_inference_instance_types = staticmethod(  # type: ignore[method-assign]
        _validate_realtime_types
    )
    models.Cluster.valid_cluster_node_instance_types = _validate_cluster_type  # type: ignore[method-assign]
