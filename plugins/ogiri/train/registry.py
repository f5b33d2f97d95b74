"""SageMaker Model Registry: one model package group per endpoint, one version per deployed candidate."""

from __future__ import annotations

import json
from typing import Any


def ensure_group(sm_client: Any, group: str, description: str = "") -> str:
    """ARN of model package group ``group``, created when missing."""
    from botocore.exceptions import ClientError

    from ogiri.aws import not_found

    try:
        return sm_client.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]
    except ClientError as exc:
        if not not_found(exc):  # a malformed name is a ValidationException too, and not "missing"
            raise
    return sm_client.create_model_package_group(
        ModelPackageGroupName=group, ModelPackageGroupDescription=description or f"Ogiri captioner {group}"
    )["ModelPackageGroupArn"]


def find_version(sm_client: Any, group: str, training_job: str) -> str | None:
    """ARN of the package in ``group`` registered for ``training_job`` (so retries never add a twin)."""
    paginator = sm_client.get_paginator("list_model_packages")
    for page in paginator.paginate(ModelPackageGroupName=group):
        for summary in page.get("ModelPackageSummaryList", []):
            described = sm_client.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if (described.get("CustomerMetadataProperties") or {}).get("TrainingJobName") == training_job:
                return summary["ModelPackageArn"]
    return None


def register_model_version(
    sm_client: Any,
    *,
    group: str,
    training_job: str,
    image_uri: str,
    model_data_url: str,
    metrics: dict[str, float],
    evaluation_uri: str | None,
    dataset_version: str | None,
    approved: bool,
) -> str:
    """Register (once) the candidate as a new version of ``group`` with its metrics; returns its ARN."""
    ensure_group(sm_client, group)
    existing = find_version(sm_client, group, training_job)
    if existing:
        return existing
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": f"{training_job} on dataset {dataset_version}",
        "ModelApprovalStatus": "Approved" if approved else "PendingManualApproval",
        "InferenceSpecification": {
            "Containers": [{"Image": image_uri, "ModelDataUrl": model_data_url}],
            "SupportedContentTypes": ["application/x-image", "application/json", "application/jsonlines"],
            "SupportedResponseMIMETypes": ["application/json", "application/jsonlines"],
        },
        "CustomerMetadataProperties": {
            "TrainingJobName": training_job,
            "DatasetVersion": str(dataset_version),
            **{f"metric_{k}": f"{v:.6g}" for k, v in sorted(metrics.items()) if isinstance(v, int | float)},
        },
    }
    if evaluation_uri:
        request["ModelMetrics"] = {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}
        }
    return sm_client.create_model_package(**request)["ModelPackageArn"]


def metrics_summary(metrics: dict[str, Any]) -> str:
    """Compact JSON of numeric metrics for logs."""
    return json.dumps({k: v for k, v in metrics.items() if isinstance(v, int | float)}, sort_keys=True)
