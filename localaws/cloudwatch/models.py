"""Metric publishing and alarm evaluation on top of moto's CloudWatch backend.

moto stores metric data and alarms but never evaluates an alarm (every alarm stays ``OK`` with
"Unchecked: Initial alarm creation"). Here an alarm is evaluated as CloudWatch does it, over the
metric it names (namespace, metric name and the *exact* dimension set, unit when the alarm names
one):

* the last ``EvaluationPeriods`` periods of ``Period`` seconds, ending now (a sliding window: the
  emulator does not wait for a minute to close, so alarms react within a test's seconds);
* each period's datapoint is the alarm's ``Statistic`` (SampleCount, Average, Sum, Minimum,
  Maximum) or ``ExtendedStatistic`` percentile (``p99``, ``p99.9``; nearest rank);
* a datapoint breaches when ``<datapoint> <ComparisonOperator> <Threshold>``; ``ALARM`` when at
  least ``DatapointsToAlarm`` (default ``EvaluationPeriods``) datapoints breach;
* periods without data follow ``TreatMissingData``: ``missing`` (default; all missing →
  ``INSUFFICIENT_DATA``), ``notBreaching``, ``breaching``, ``ignore`` (all missing → state kept).

An alarm is (re)evaluated when it is put, when metric data arrives, whenever it is read
(DescribeAlarms), and when another emulated service reads it (:func:`alarm_states`). New alarms
start ``INSUFFICIENT_DATA``, as on AWS. Not modelled: metric-math alarms (``Metrics``; they keep
moto's behaviour), anomaly-detection thresholds, ``EvaluateLowSampleCountPercentile``, alarm actions.

:func:`publish` is the one way emulated services (SageMaker endpoints, later monitoring jobs) put
their metrics, straight into the backend of the caller's account and region.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.cloudwatch.exceptions import InvalidParameterCombination, InvalidParameterValue, ValidationError

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
_COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_MISSING = ("missing", "notBreaching", "breaching", "ignore")
_lock = threading.RLock()


def backend(account: str, region: str) -> Any:
    """moto's CloudWatch backend of ``account``/``region``."""
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[account][region]


def publish(account: str, region: str, namespace: str, data: Sequence[dict[str, Any]]) -> None:
    """Put metric data as the service itself would (``MetricName``, ``Value``, ``Unit``,
    ``Dimensions``), then re-evaluate the alarms watching those metrics."""
    from moto.cloudwatch.models import MetricDatum

    cw = backend(account, region)
    now = _now()
    with _lock:
        for datum in data:
            cw.metric_data.append(
                MetricDatum(namespace, datum["MetricName"], float(datum["Value"]), datum.get("Dimensions") or [],
                            datum.get("Timestamp") or now, datum.get("Unit"))
            )
        names = {d["MetricName"] for d in data}
        evaluate(a for a in cw.alarms.values() if a.namespace == namespace and a.metric_name in names)


def alarm_states(account: str, region: str, names: Iterable[str]) -> dict[str, Any]:
    """The named alarms, freshly evaluated, by name (absent names are left out)."""
    cw = backend(account, region)
    alarms = {n: cw.alarms[n] for n in names if n in cw.alarms}
    evaluate(alarms.values())
    return alarms


def evaluate(alarms: Iterable[Any]) -> None:
    """Re-evaluate metric alarms now; composite and metric-math alarms are left as they are."""
    now = _now()
    with _lock:
        for alarm in list(alarms):
            if alarm.rule is None and not alarm.metric_data_queries and alarm.metric_name:
                _evaluate_one(alarm, now)


def validate_alarm(period: Any, statistic: str | None, extended: str | None, comparison: str | None,
                   evaluation_periods: Any, datapoints_to_alarm: Any, treat_missing: str | None) -> None:
    """PutMetricAlarm's checks on a single-metric alarm (CloudWatch's wording)."""
    if statistic and extended:
        raise InvalidParameterCombination("Statistic and ExtendedStatistic cannot both be specified.")
    if not statistic and not extended:
        raise ValidationError("One of Statistic or ExtendedStatistic must be specified.")
    if statistic and statistic not in STATISTICS:
        raise ValidationError(
            f"1 validation error detected: Value '{statistic}' at 'statistic' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(STATISTICS)}]"
        )
    if extended and _percentile(extended) is None:
        raise InvalidParameterValue(f"The value {extended} for parameter ExtendedStatistic is not supported.")
    p = int(period or 0)
    if p not in (10, 30) and (p < 60 or p % 60):
        raise InvalidParameterValue("The parameter Period must be 10, 30 or a multiple of 60.")
    if comparison not in _COMPARE:
        raise ValidationError(f"Invalid value for parameter ComparisonOperator: {comparison}")
    n = int(evaluation_periods or 0)
    if n < 1:
        raise ValidationError("EvaluationPeriods must be at least 1.")
    if datapoints_to_alarm is not None and not 1 <= int(datapoints_to_alarm) <= n:
        raise ValidationError("DatapointsToAlarm must be between 1 and EvaluationPeriods.")
    if treat_missing is not None and treat_missing not in _MISSING:
        raise ValidationError(
            f"Invalid value for parameter TreatMissingData: {treat_missing}; one of {', '.join(_MISSING)}."
        )


# -- evaluation ---------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _percentile(name: str) -> float | None:
    if not name.startswith("p"):
        return None
    try:
        value = float(name[1:])
    except ValueError:
        return None
    return value if 0 <= value <= 100 else None


def _statistic(values: list[float], statistic: str | None, extended: str | None) -> float:
    if extended:
        ordered = sorted(values)
        rank = max(1, math.ceil(_percentile(extended) / 100 * len(ordered)))  # type: ignore[operator]
        return ordered[rank - 1]
    return {
        "SampleCount": lambda: float(len(values)),
        "Sum": lambda: sum(values),
        "Average": lambda: sum(values) / len(values),
        "Minimum": lambda: min(values),
        "Maximum": lambda: max(values),
    }[statistic or "Average"]()


def _series(alarm: Any, cw: Any, start: datetime) -> list[tuple[datetime, float]]:
    wanted = sorted((d.name, d.value) for d in alarm.dimensions)
    out = []
    for datum in cw.metric_data:
        if datum.namespace != alarm.namespace or datum.name != alarm.metric_name or not hasattr(datum, "value"):
            continue
        if sorted((d.name, d.value) for d in datum.dimensions) != wanted:
            continue
        if alarm.unit and datum.unit and datum.unit != alarm.unit:
            continue
        ts = _naive(datum.timestamp)
        if ts >= start:
            out.append((ts, datum.value))
    return out


def _evaluate_one(alarm: Any, now: datetime) -> None:
    from moto.cloudwatch.models import cloudwatch_backends

    period, n = int(alarm.period), int(alarm.evaluation_periods)
    m = int(alarm.datapoints_to_alarm or n)
    account = alarm.alarm_arn.split(":")[4]
    cw = cloudwatch_backends[account][alarm.region_name]
    start = now - timedelta(seconds=period * n)
    buckets: list[list[float]] = [[] for _ in range(n)]
    for ts, value in _series(alarm, cw, start):
        index = min(int((now - ts).total_seconds() // period), n - 1)
        buckets[index].append(value)
    datapoints = [_statistic(b, alarm.statistic, alarm.extended_statistic) if b else None for b in buckets]
    compare = _COMPARE[alarm.comparison_operator]
    treat = alarm.treat_missing_data or "missing"
    present = [v for v in datapoints if v is not None]
    breaching = sum(1 for v in present if compare(v, float(alarm.threshold)))
    if treat == "breaching":
        breaching += n - len(present)
    if breaching >= m:
        state = "ALARM"
    elif present or treat in ("notBreaching", "breaching"):
        state = "OK"
    elif treat == "ignore":
        return
    else:
        state = "INSUFFICIENT_DATA"
    _set_state(alarm, state, datapoints, period, now)


def _set_state(alarm: Any, state: str, datapoints: list[float | None], period: int, now: datetime) -> None:
    if state == alarm.state_value:
        return
    stat = alarm.extended_statistic or alarm.statistic
    shown = [round(v, 6) for v in datapoints if v is not None]
    if state == "INSUFFICIENT_DATA":
        reason = f"Insufficient Data: {len(datapoints)} datapoints were unknown."
    else:
        verb = "was" if state == "ALARM" else "was not"
        reason = (
            f"Threshold Crossed: {len(shown)} datapoint{'s' if len(shown) != 1 else ''} {shown} "
            f"{verb} {alarm.comparison_operator.replace('Threshold', '')} the threshold ({alarm.threshold})."
        )
    data = {"version": "1.0", "queryDate": now.isoformat() + "+0000", "statistic": stat, "period": period,
            "recentDatapoints": shown, "threshold": alarm.threshold}
    alarm.update_state(reason, json.dumps(data), state)
