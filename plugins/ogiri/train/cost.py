"""Billable seconds and their price, from SageMaker job descriptions and the config's price table."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


def elapsed_seconds(start: datetime | None, end: datetime | None, instance_count: int = 1) -> int:
    """Whole seconds between ``start`` and ``end`` times ``instance_count`` (0 when not started/ended)."""
    if start is None or end is None:
        return 0
    return max(0, math.ceil((end - start).total_seconds())) * max(1, int(instance_count))


@dataclass(frozen=True)
class JobCost:
    """What one job cost: billable seconds on an instance type, and USD (None when the price is unknown)."""

    job_name: str
    instance_type: str
    instance_count: int
    billable_seconds: int
    price_per_hour: float | None
    usd: float | None
    spot: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (XCom / ledger friendly)."""
        return asdict(self)


def price(seconds: int, price_per_hour: float | None) -> float | None:
    """``seconds`` × hourly price, rounded to a tenth of a cent; None when the price is unknown."""
    if price_per_hour is None:
        return None
    return round(seconds * price_per_hour / 3600.0, 4)


def training_cost(description: dict[str, Any], prices: dict[str, float]) -> JobCost:
    """Cost of a DescribeTrainingJob response. Uses ``BillableTimeInSeconds`` when SageMaker reports it
    (it already reflects Managed Spot savings), else start→end × instance count."""
    resources = description.get("ResourceConfig") or {}
    itype = resources.get("InstanceType", "unknown")
    count = int(resources.get("InstanceCount", 1) or 1)
    seconds = description.get("BillableTimeInSeconds")
    if seconds is None:
        seconds = elapsed_seconds(description.get("TrainingStartTime"), description.get("TrainingEndTime"), count)
    seconds = int(seconds)
    rate = prices.get(itype)
    return JobCost(
        job_name=description.get("TrainingJobName", ""),
        instance_type=itype,
        instance_count=count,
        billable_seconds=seconds,
        price_per_hour=rate,
        usd=price(seconds, rate),
        spot=bool(description.get("EnableManagedSpotTraining")),
    )


def processing_cost(description: dict[str, Any], prices: dict[str, float]) -> JobCost:
    """Cost of a DescribeProcessingJob response (start→end × instance count)."""
    cluster = (description.get("ProcessingResources") or {}).get("ClusterConfig") or {}
    itype = cluster.get("InstanceType", "unknown")
    count = int(cluster.get("InstanceCount", 1) or 1)
    seconds = elapsed_seconds(description.get("ProcessingStartTime"), description.get("ProcessingEndTime"), count)
    rate = prices.get(itype)
    return JobCost(
        job_name=description.get("ProcessingJobName", ""),
        instance_type=itype,
        instance_count=count,
        billable_seconds=seconds,
        price_per_hour=rate,
        usd=price(seconds, rate),
    )
