"""SNS in the emulator (issue 14): Publish authorized on the topic's ARN as AWS does, refusals in SNS's
shape, and what each topic received readable back (``GET /_localaws/sns/published``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).with_name("fixtures")))
from iam_helpers import ACCOUNT, allow, user_with  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_publish_is_scoped_to_the_granted_topic_and_read_back_per_topic(aws):
    sns = aws.client("sns")
    alerts = sns.create_topic(Name="ogiri-alerts")["TopicArn"]
    other = sns.create_topic(Name="someone-elses")["TopicArn"]
    assert alerts == f"arn:aws:sns:us-east-1:{ACCOUNT}:ogiri-alerts"
    worker = user_with(aws, allow("sns:Publish", alerts), name="sns-worker").client("sns")

    sent = worker.publish(TargetArn=alerts, Subject="Ogiri drift: ep 2026-12-07T14", Message="drift\nReport: s3://b/r")
    with pytest.raises(ClientError) as e:
        worker.publish(TopicArn=other, Message="not allowed")
    assert e.value.response["Error"]["Code"] == "AuthorizationError"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert f"sns:Publish on resource: {other}" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:  # creating topics is not granted either
        worker.create_topic(Name="ogiri-new")
    assert e.value.response["Error"]["Code"] == "AuthorizationError"

    published = aws.sns_published()
    assert published[other] == []  # a topic with no subscriber still records what it received
    [message] = published[alerts]
    assert message["message_id"] == sent["MessageId"]
    assert (message["subject"], message["message"]) == ("Ogiri drift: ep 2026-12-07T14", "drift\nReport: s3://b/r")
    assert aws.sns_published(alerts) == {alerts: [message]}
    assert aws.sns_published(f"arn:aws:sns:us-east-1:{ACCOUNT}:absent") == {}

    out = subprocess.run([sys.executable, "-m", "localaws", "sns-published", "--url", aws.url, "--topic-arn", alerts],
                         cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"topics": {alerts: [message]}}
