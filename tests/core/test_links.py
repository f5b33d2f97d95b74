"""Extra links: the AWS console on AWS, the emulator's page when the connection has an endpoint."""

from __future__ import annotations

from ogiri.links import resource_url


def test_console_url_per_kind_and_partition():
    assert resource_url("training", "ogiri-train-x", "eu-west-1") == (
        "https://console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/ogiri-train-x"
    )
    assert resource_url("transform", "a/b", "cn-north-1", partition="aws-cn") == (
        "https://console.amazonaws.cn/sagemaker/home?region=cn-north-1#/transform-jobs/a%2Fb"
    )


def test_local_endpoint_gets_the_emulator_page():
    url = resource_url("processing", "ogiri-eval-1", "us-east-1", endpoint_url="http://127.0.0.1:5055/")
    assert url == "http://127.0.0.1:5055/_localaws/sagemaker/processing/ogiri-eval-1?region=us-east-1"
