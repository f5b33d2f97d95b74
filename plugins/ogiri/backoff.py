"""Retries with capped exponential backoff and full jitter for throttled AWS calls."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError

T = TypeVar("T")

#: Error codes that mean "slow down and try again" across S3, DynamoDB and Rekognition.
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalServerErrorException",
    }
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ('' for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_throttling(exc: BaseException) -> bool:
    """Whether ``exc`` is a throttling / transient server error worth retrying."""
    return error_code(exc) in THROTTLING_CODES


class RetriesExhausted(RuntimeError):
    """A call kept being throttled after every attempt."""


def with_backoff(
    call: Callable[[], T],
    *,
    attempts: int = 8,
    base_s: float = 0.05,
    cap_s: float = 5.0,
    retry_if: Callable[[BaseException], bool] = is_throttling,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """Run ``call``; on a retryable error wait ``uniform(0, min(cap, base * 2**n))`` and try again.

    Non-retryable errors propagate at once; after ``attempts`` retryable failures the last one is
    re-raised as :class:`RetriesExhausted` (chained).
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if not retry_if(exc):
                raise
            if attempt == attempts - 1:
                raise RetriesExhausted(f"still throttled after {attempts} attempts: {exc}") from exc
            if on_retry is not None:
                on_retry(attempt + 1, exc)
            sleep(random.uniform(0, min(cap_s, base_s * 2**attempt)))
    raise AssertionError("unreachable")  # pragma: no cover


class TokenBucket:
    """Thread-safe client-side rate limit: at most ``rate`` acquisitions per second on average,
    bursts up to ``burst``. ``rate <= 0`` means unlimited."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, self.rate))
        if self.rate > 0 and self.burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available. Returns the seconds waited."""
        if self.rate <= 0:
            return 0.0
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1 - 1e-9:  # tolerate float rounding of the refill
                    self._tokens = max(0.0, self._tokens - 1)
                    return waited
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)
            waited += wait
