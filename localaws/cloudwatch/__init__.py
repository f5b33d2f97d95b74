"""CloudWatch extensions of the emulator: alarms that are evaluated, and metrics emulated services publish.

``install()`` patches moto's ``CloudWatchBackend`` (idempotent; the patches live on the class, so
they survive ``/moto-api/reset``):

* ``PutMetricAlarm`` validates a single-metric alarm as CloudWatch does (statistic, period,
  comparison, ``DatapointsToAlarm``, ``TreatMissingData``), starts a new alarm ``INSUFFICIENT_DATA``
  (an update keeps the state, as on AWS) and evaluates it at once;
* ``PutMetricData`` and every ``DescribeAlarms`` re-evaluate the alarms concerned;
* ``GetMetricStatistics`` answers for the metric with exactly the dimensions asked for (moto also
  counted every metric that merely contains them, as ``ListMetrics`` rightly does), in periods
  aligned on ``StartTime`` (moto started each series' periods at its own first datapoint).

Evaluation and :func:`~localaws.cloudwatch.models.publish` are in ``models.py``.
"""

from __future__ import annotations

import functools
import threading
from datetime import timedelta
from typing import Any

_installed = False
_lock = threading.Lock()


def install() -> None:
    """Patch moto's CloudWatch backend (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.cloudwatch.models import CloudWatchBackend

        for name in ("describe_alarms", "get_alarms_by_alarm_names", "get_alarms_by_alarm_name_prefix",
                     "get_alarms_by_action_prefix", "get_alarms_by_state_value"):
            setattr(CloudWatchBackend, name, _evaluated(getattr(CloudWatchBackend, name)))
        CloudWatchBackend.put_metric_alarm = _put_metric_alarm(CloudWatchBackend.put_metric_alarm)
        CloudWatchBackend.put_metric_data = _put_metric_data(CloudWatchBackend.put_metric_data)
        CloudWatchBackend.get_metric_statistics = _exact_dimensions(CloudWatchBackend.get_metric_statistics)
        _installed = True


def _evaluated(read: Any) -> Any:
    @functools.wraps(read)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        from localaws.cloudwatch.models import evaluate

        evaluate(self.alarms.values())
        return list(read(self, *args, **kwargs))

    return wrapper


def _put_metric_alarm(put: Any) -> Any:
    @functools.wraps(put)
    def wrapper(self: Any, name: str, namespace: str, metric_name: str, comparison_operator: str,
                evaluation_periods: int, period: int, threshold: float, statistic: str, *args: Any,
                **kwargs: Any) -> Any:
        from localaws.cloudwatch.models import evaluate, validate_alarm

        if not kwargs.get("metric_data_queries") and not kwargs.get("rule"):
            validate_alarm(period, statistic, kwargs.get("extended_statistic"), comparison_operator,
                           evaluation_periods, kwargs.get("datapoints_to_alarm"), kwargs.get("treat_missing_data"))
        previous = self.alarms.get(name)
        alarm = put(self, name, namespace, metric_name, comparison_operator, evaluation_periods, period,
                    threshold, statistic, *args, **kwargs)
        if previous is None:
            alarm.state_value = "INSUFFICIENT_DATA"
        else:  # an update overwrites the configuration and leaves the state as it was
            alarm.state_value, alarm.state_reason = previous.state_value, previous.state_reason
            alarm.state_reason_data, alarm.history = previous.state_reason_data, previous.history
        evaluate([alarm])
        return alarm

    return wrapper


def _put_metric_data(put: Any) -> Any:
    @functools.wraps(put)
    def wrapper(self: Any, namespace: str, metric_data: list[dict[str, Any]]) -> Any:
        from localaws.cloudwatch.models import evaluate

        result = put(self, namespace, metric_data)
        names = {m["MetricName"] for m in metric_data}
        evaluate(a for a in self.alarms.values() if a.namespace == namespace and a.metric_name in names)
        return result

    return wrapper


def _exact_dimensions(get: Any) -> Any:
    @functools.wraps(get)
    def wrapper(self: Any, namespace: str, metric_name: str, start_time: Any, end_time: Any, period: int,
                stats: list[str], dimensions: list[dict[str, str]], unit: str | None = None) -> Any:
        from moto.cloudwatch.models import Statistics

        get(self, namespace, metric_name, start_time, end_time, period, stats, dimensions, unit)  # its checks
        start, end = start_time.replace(microsecond=0), end_time.replace(microsecond=0)
        wanted = sorted((d["Name"], d.get("Value")) for d in dimensions or [])
        buckets: dict[int, Any] = {}
        for datum in self.get_all_metrics():
            if (datum.namespace != namespace or datum.name != metric_name or not start <= datum.timestamp < end
                    or (unit and datum.unit != unit)
                    or sorted((d.name, d.value) for d in datum.dimensions) != wanted):
                continue
            index = int((datum.timestamp - start).total_seconds() // period)
            bucket = buckets.setdefault(index, Statistics(stats, start + timedelta(seconds=index * period)))
            bucket.metric_data.append(datum)
            bucket.unit = datum.unit
        return [buckets[i] for i in sorted(buckets)]

    return wrapper
