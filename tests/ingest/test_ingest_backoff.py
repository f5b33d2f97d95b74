"""Retry/backoff and the client-side token bucket (no AWS)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from ogiri.backoff import RetriesExhausted, TokenBucket, is_throttling, with_backoff


def _err(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "DetectLabels")


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_token_bucket_enforces_rate_after_burst():
    clock = FakeClock()
    bucket = TokenBucket(5, burst=1, clock=clock, sleep=clock.sleep)
    for _ in range(11):
        bucket.acquire()
    # The first token is free; the next 10 need 1/5 s each.
    assert clock.now == pytest.approx(2.0)


def test_token_bucket_refills_while_idle_but_caps_burst():
    clock = FakeClock()
    bucket = TokenBucket(2, burst=2, clock=clock, sleep=clock.sleep)
    bucket.acquire(), bucket.acquire()
    clock.now += 100  # idle: refills to the burst size only
    start = clock.now
    for _ in range(4):
        bucket.acquire()
    assert clock.now - start == pytest.approx(1.0)


def test_token_bucket_zero_rate_is_unlimited():
    clock = FakeClock()
    bucket = TokenBucket(0, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        bucket.acquire()
    assert clock.slept == []


def test_with_backoff_retries_throttling_then_succeeds():
    calls, slept = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise _err("ThrottlingException")
        return "ok"

    assert with_backoff(flaky, attempts=5, sleep=slept.append) == "ok"
    assert len(calls) == 4 and len(slept) == 3
    assert all(0 <= s <= 5.0 for s in slept)


def test_with_backoff_does_not_retry_other_errors():
    calls = []

    def denied():
        calls.append(1)
        raise _err("AccessDeniedException")

    with pytest.raises(ClientError, match="AccessDenied"):
        with_backoff(denied, sleep=lambda s: None)
    assert len(calls) == 1


def test_with_backoff_gives_up_after_attempts():
    with pytest.raises(RetriesExhausted, match="3 attempts"):
        with_backoff(
            lambda: (_ for _ in ()).throw(_err("ProvisionedThroughputExceededException")),
            attempts=3,
            sleep=lambda s: None,
        )


def test_is_throttling():
    assert is_throttling(_err("ThrottlingException"))
    assert is_throttling(_err("ProvisionedThroughputExceededException"))
    assert not is_throttling(_err("ValidationException"))
    assert not is_throttling(ValueError("x"))
