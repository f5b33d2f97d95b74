"""PyTorch Deep Learning Container image URIs for the region, resolved offline with the sagemaker SDK."""

from __future__ import annotations

from functools import lru_cache

SCOPES = ("training", "inference")


@lru_cache(maxsize=64)
def pytorch_image_uri(
    scope: str, region: str, framework_version: str, py_version: str, instance_type: str
) -> str:
    """ECR URI of the PyTorch ``scope`` image (``training`` or ``inference``); no AWS call is made."""
    if scope not in SCOPES:
        raise ValueError(f"image scope must be one of {SCOPES}, not {scope!r}")
    from sagemaker.core import image_uris

    try:
        return image_uris.retrieve(
            "pytorch",
            region=region,
            version=framework_version,
            py_version=py_version,
            instance_type=instance_type,
            image_scope=scope,
        )
    except ValueError as exc:
        raise ValueError(
            f"no PyTorch {framework_version}/{py_version} {scope} image for {instance_type} in {region}: {exc}"
        ) from exc


def training_image_uri(settings, instance_type: str | None = None) -> str:
    """Training image for ``settings`` (region, framework and Python version) and the instance type."""
    return pytorch_image_uri(
        "training",
        settings.region,
        settings.framework_version,
        settings.py_version,
        instance_type or settings.training_instance_type,
    )


def inference_image_uri(settings, instance_type: str | None = None) -> str:
    """Inference (serving) image for ``settings`` and the endpoint instance type."""
    return pytorch_image_uri(
        "inference",
        settings.region,
        settings.framework_version,
        settings.py_version,
        instance_type or settings.endpoint_instance_type,
    )
