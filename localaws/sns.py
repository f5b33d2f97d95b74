"""What was published to SNS topics, for tests and the demo (``GET /_localaws/sns/published``).

moto keeps every message published to a topic (delivered or not: a topic with no subscriber still
records it) in ``Topic.sent_notifications``; this reads them back per topic, in publish order.
Local admin only: AWS has no API to read a topic's messages (subscribe a queue or an e-mail instead).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs


def published(topic_arn: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """``{topic ARN: [{"message_id", "subject", "message", "message_attributes", "group_id"}]}`` over every
    account and region (only ``topic_arn`` when given; absent topics give an empty mapping)."""
    from moto.sns import sns_backends

    found: dict[str, list[dict[str, Any]]] = {}
    for account, regions in list(sns_backends.items()):
        for region in list(regions.keys()):
            backend = sns_backends[account][region]
            for arn, topic in list(backend.topics.items()):
                if topic_arn and arn != topic_arn:
                    continue
                found[arn] = [
                    {"message_id": m[0], "message": m[1], "subject": m[2], "message_attributes": m[3] or {},
                     "group_id": m[4]}
                    for m in list(topic.sent_notifications)
                ]
    return found


def respond(query_string: str) -> tuple[int, dict[str, Any]]:
    """The admin route's status and body: ``{"topics": {arn: [message, …]}}`` (``?topic_arn=`` filters)."""
    query = parse_qs(query_string or "")
    topic_arn = (query.get("topic_arn") or [None])[0]
    return 200, {"topics": published(topic_arn)}
