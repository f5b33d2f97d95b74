"""The endpoint invocation metrics SageMaker publishes to CloudWatch (namespace ``AWS/SageMaker``).

Per InvokeEndpoint answered by a model server (developer guide, "SageMaker AI endpoint invocation
metrics"): ``Invocations`` 1, ``Invocation4XXErrors`` / ``Invocation5XXErrors`` 1 or 0 (so their
Average is the error rate), ``ModelLatency`` and ``OverheadLatency`` in Microseconds. Each is put
twice: with dimensions ``EndpointName, VariantName`` and with ``EndpointName, VariantName,
EndpointConfigName`` (the fleet that answered, which tells a blue/green deployment's new fleet
from the old one: both carry the same variant name).
"""

from __future__ import annotations

from localaws.cloudwatch.models import publish

NAMESPACE = "AWS/SageMaker"


def invocation(account: str, region: str, endpoint: str, variant: str, config: str, status: int,
               model_us: float | None, overhead_us: float) -> None:
    """Publish one invocation's metrics; ``status`` is the model's HTTP status (0: no answer)."""
    values = [
        ("Invocations", 1.0, "None"),
        ("Invocation4XXErrors", 1.0 if 400 <= status < 500 else 0.0, "None"),
        ("Invocation5XXErrors", 1.0 if status >= 500 or status == 0 else 0.0, "None"),
        ("OverheadLatency", overhead_us, "Microseconds"),
    ]
    if model_us is not None:
        values.append(("ModelLatency", model_us, "Microseconds"))
    base = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    data = []
    for dims in (base, [*base, {"Name": "EndpointConfigName", "Value": config}]):
        data += [{"MetricName": n, "Value": v, "Unit": u, "Dimensions": dims} for n, v, u in values]
    publish(account, region, NAMESPACE, data)
