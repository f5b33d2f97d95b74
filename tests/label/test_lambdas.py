"""The Ground Truth Lambdas (include/labeling) as the Lambda runtime calls them."""

from __future__ import annotations

import json

from label_env import BUCKET


def test_pre_annotation_rate_and_caption(lambdas):
    pre, _ = lambdas
    rate = pre.handler({"version": "2018-10-16", "labelingJobArn": "arn", "dataObject": {
        "source-ref": "s3://b/images/aa/a.jpg", "ogiri-task": "rate", "caption": "a cat", "ogiri-id": "i"}})
    assert rate["isHumanAnnotationRequired"] == "true"
    assert rate["taskInput"]["task"] == "rate" and rate["taskInput"]["caption"] == "a cat"
    assert rate["taskInput"]["taskObject"] == "s3://b/images/aa/a.jpg"
    caption = pre.handler({"dataObject": {"source-ref": "s3://b/x.jpg", "ogiri-task": "caption"}})
    assert caption["taskInput"]["task"] == "caption"


def test_pre_annotation_needs_no_human_for_a_broken_line(lambdas):
    pre, _ = lambdas
    assert pre.handler({"dataObject": {"ogiri-task": "rate", "source-ref": "s3://b/x.jpg"}})[
        "isHumanAnnotationRequired"] == "false"
    assert pre.handler({"dataObject": {"source": "text"}})["isHumanAnnotationRequired"] == "false"


def test_consolidation_reads_the_payload_from_s3_and_takes_medians(lambdas, moto_aws):
    _, acs = lambdas
    payload = [
        {"datasetObjectId": "0", "dataObject": {"s3Uri": "s3://b/a.jpg"}, "annotations": [
            {"workerId": "w1", "annotationData": {"content": json.dumps({"fit": 4, "humour": "2"})}},
            {"workerId": "w2", "annotationData": {"content": json.dumps({"fit": 5, "humour": 5})}},
            {"workerId": "w3", "annotationData": {"content": json.dumps({"fit": 1, "humour": 3})}},
            {"workerId": "w4", "annotationData": {"content": "{broken"}}]},
        {"datasetObjectId": "1", "dataObject": {"s3Uri": "s3://b/b.jpg"}, "annotations": [
            {"workerId": "w1", "annotationData": {"content": json.dumps({"caption": "a cat"})}},
            {"workerId": "w2", "annotationData": {"content": json.dumps({"caption": ""})}}]}]
    moto_aws["s3"].put_object(Bucket=BUCKET, Key="labeling/j/output/j/payload.json", Body=json.dumps(payload))
    out = acs.handler({"version": "2018-10-16", "labelingJobArn": "arn", "labelAttributeName": "ogiri-label",
                       "roleArn": "arn:role", "payload": {"s3Uri": f"s3://{BUCKET}/labeling/j/output/j/payload.json"},
                       "outputConfig": "s3://b/out"})
    rate = out[0]["consolidatedAnnotation"]["content"]["ogiri-label"]
    assert out[0]["datasetObjectId"] == "0"
    assert (rate["fit"], rate["humour"], rate["count"]) == (4, 3, 3)
    assert [i["workerId"] for i in rate["invalid"]] == ["w4"]
    caption = out[1]["consolidatedAnnotation"]["content"]["ogiri-label"]
    assert caption["captions"] == [{"workerId": "w1", "caption": "a cat"}, {"workerId": "w2", "caption": ""}]
