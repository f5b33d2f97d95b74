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


def _cost(job_name: str, resources: dict[str, Any], seconds: int | None, start: Any, end: Any,
          prices: dict[str, float], spot: bool = False) -> JobCost:
    """The cost of ``seconds`` billable (start→end × instances when None) on ``resources``' instances."""
    itype = resources.get("InstanceType", "unknown")
    count = int(resources.get("InstanceCount", 1) or 1)
    billable = int(seconds) if seconds is not None else elapsed_seconds(start, end, count)
    rate = prices.get(itype)
    return JobCost(job_name=job_name, instance_type=itype, instance_count=count, billable_seconds=billable,
                   price_per_hour=rate, usd=price(billable, rate), spot=spot)


def training_cost(description: dict[str, Any], prices: dict[str, float]) -> JobCost:
    """Cost of a DescribeTrainingJob response. Uses ``BillableTimeInSeconds`` when SageMaker reports it
    (it already reflects Managed Spot savings), else start→end × instance count."""
    return _cost(description.get("TrainingJobName", ""), description.get("ResourceConfig") or {},
                 description.get("BillableTimeInSeconds"), description.get("TrainingStartTime"),
                 description.get("TrainingEndTime"), prices, spot=bool(description.get("EnableManagedSpotTraining")))


def processing_cost(description: dict[str, Any], prices: dict[str, float]) -> JobCost:
    """Cost of a DescribeProcessingJob response (start→end × instance count)."""
    cluster = (description.get("ProcessingResources") or {}).get("ClusterConfig") or {}
    return _cost(description.get("ProcessingJobName", ""), cluster, None, description.get("ProcessingStartTime"),
                 description.get("ProcessingEndTime"), prices)
