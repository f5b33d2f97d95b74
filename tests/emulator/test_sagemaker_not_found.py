"""Every SageMaker resource kind the emulator serves answers an unknown name in AWS's words.

ValidationException with SageMaker's texts (double-quoted, lower-cased ARNs; "Requested resource not
found." for training jobs; "Could not find requested job with name …" for processing/transform jobs;
"… does not exist." for the model registry), not moto's single-quoted variants; and
``ogiri.aws.not_found`` recognises each of them (and nothing else).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ogiri.aws import not_found

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from sm_helpers import make_role  # noqa: E402

ARN = "arn:aws:sagemaker:us-east-1:123456789012"
CASES = [
    ("describe_training_job", {"TrainingJobName": "Nope-1"}, "Requested resource not found."),
    ("stop_training_job", {"TrainingJobName": "Nope-1"}, "Requested resource not found."),
    ("describe_processing_job", {"ProcessingJobName": "Nope-1"}, "Could not find requested job with name Nope-1"),
    ("stop_processing_job", {"ProcessingJobName": "Nope-1"}, "Could not find requested job with name Nope-1"),
    ("describe_transform_job", {"TransformJobName": "Nope-1"}, "Could not find requested job with name Nope-1"),
    ("stop_transform_job", {"TransformJobName": "Nope-1"}, "Could not find requested job with name Nope-1"),
    ("describe_model", {"ModelName": "Nope-1"}, f'Could not find model "{ARN}:model/nope-1".'),
    ("delete_model", {"ModelName": "Nope-1"}, f'Could not find model "{ARN}:model/nope-1".'),
    ("describe_endpoint_config", {"EndpointConfigName": "Nope-1"},
     f'Could not find endpoint configuration "{ARN}:endpoint-config/nope-1".'),
    ("delete_endpoint_config", {"EndpointConfigName": "Nope-1"},
     f'Could not find endpoint configuration "{ARN}:endpoint-config/nope-1".'),
    ("create_endpoint", {"EndpointName": "ep-1", "EndpointConfigName": "Nope-1"},
     f'Could not find endpoint configuration "{ARN}:endpoint-config/nope-1".'),
    ("describe_endpoint", {"EndpointName": "Nope-1"}, f'Could not find endpoint "{ARN}:endpoint/nope-1".'),
    ("delete_endpoint", {"EndpointName": "Nope-1"}, f'Could not find endpoint "{ARN}:endpoint/nope-1".'),
    ("update_endpoint", {"EndpointName": "Nope-1", "EndpointConfigName": "c"},
     f'Could not find endpoint "{ARN}:endpoint/nope-1".'),
    ("create_endpoint_config",
     {"EndpointConfigName": "c", "ProductionVariants": [
         {"VariantName": "AllTraffic", "ModelName": "Nope-1", "InitialInstanceCount": 1,
          "InstanceType": "ml.g5.xlarge"}]},
     f'Could not find model "{ARN}:model/nope-1".'),
    ("describe_model_package", {"ModelPackageName": "Nope-1"}, "Model package Nope-1 does not exist."),
    ("describe_model_package_group", {"ModelPackageGroupName": "nope-1"},
     f"ModelPackageGroup {ARN}:model-package-group/nope-1 does not exist."),
]


@pytest.mark.parametrize(("operation", "request_body", "message"), CASES, ids=[c[0] for c in CASES])
def test_unknown_resource_answers_in_aws_words(aws, operation, request_body, message):
    client = aws.client("sagemaker")
    with pytest.raises(ClientError) as err:
        getattr(client, operation)(**request_body)
    error = err.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("ValidationException", message)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert not_found(err.value)


def test_other_validation_errors_are_not_not_found(aws):
    client = aws.client("sagemaker")
    make_role(aws.client("iam"), "r")
    client.create_model(ModelName="m-dup", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"})
    with pytest.raises(ClientError) as err:
        client.create_model(ModelName="m-dup", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                            PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"})
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert not not_found(err.value)
