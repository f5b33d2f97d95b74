"""S3 conditional writes (``PutObject`` with ``If-None-Match: *``) in the emulator, as S3 answers them:
the first write of a key to finish wins, every later one gets ``412 PreconditionFailed`` and leaves
the object untouched, also when the writes overlap."""

from __future__ import annotations

import os
import threading

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=16)


@pytest.fixture
def s3(aws):
    client = aws.client("s3", config=NO_RETRIES)
    client.create_bucket(Bucket="cond-bucket")
    return client


def test_conditional_put_creates_a_missing_key_and_refuses_an_existing_one_with_412(s3):
    first = s3.put_object(Bucket="cond-bucket", Key="a/k.jpg", Body=b"one", IfNoneMatch="*")
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 200
    before = s3.head_object(Bucket="cond-bucket", Key="a/k.jpg")
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="cond-bucket", Key="a/k.jpg", Body=b"two", IfNoneMatch="*")
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert err["Error"]["Code"] == "PreconditionFailed"
    assert err["Error"]["Message"] == "At least one of the pre-conditions you specified did not hold"
    assert err["Error"]["Condition"] == "If-None-Match"
    after = s3.head_object(Bucket="cond-bucket", Key="a/k.jpg")
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    assert s3.get_object(Bucket="cond-bucket", Key="a/k.jpg")["Body"].read() == b"one"
    # An unconditional put still overwrites (S3's default).
    s3.put_object(Bucket="cond-bucket", Key="a/k.jpg", Body=b"three")
    assert s3.get_object(Bucket="cond-bucket", Key="a/k.jpg")["Body"].read() == b"three"


def _overlapping_puts(s3, key: str, n: int, **kwargs) -> tuple[dict[int, str], list[bytes]]:
    """``n`` threads put ``key`` at once; large bodies keep each put in flight long enough to overlap."""
    bodies = [bytes([i]) * (6 << 20) + os.urandom(16) for i in range(n)]
    outcomes: dict[int, str] = {}
    start = threading.Barrier(n)

    def put(i: int) -> None:
        start.wait()
        try:
            s3.put_object(Bucket="cond-bucket", Key=key, Body=bodies[i], **kwargs)
            outcomes[i] = "created"
        except ClientError as exc:
            outcomes[i] = exc.response["Error"]["Code"]

    threads = [threading.Thread(target=put, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return outcomes, bodies


@pytest.mark.parametrize("round_", range(3))
def test_overlapping_conditional_puts_of_one_key_create_it_exactly_once(s3, round_):
    outcomes, bodies = _overlapping_puts(s3, f"same-{round_}.bin", 8, IfNoneMatch="*")
    winners = [i for i, o in outcomes.items() if o == "created"]
    assert len(winners) == 1, outcomes
    assert sorted(o for o in outcomes.values() if o != "created") == ["PreconditionFailed"] * 7
    stored = s3.get_object(Bucket="cond-bucket", Key=f"same-{round_}.bin")["Body"].read()
    assert stored == bodies[winners[0]]


def test_overlapping_unconditional_puts_all_succeed_and_one_body_is_stored(s3):
    outcomes, bodies = _overlapping_puts(s3, "plain.bin", 6)
    assert set(outcomes.values()) == {"created"}, outcomes
    assert s3.get_object(Bucket="cond-bucket", Key="plain.bin")["Body"].read() in bodies
