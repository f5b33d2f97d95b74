"""Endpoints: one model server per production variant; create, update with rollback, invoke, delete.

CreateEndpoint: Creating → InService once every variant's server answers /ping, or Failed with
FailureReason. UpdateEndpoint is a blue/green deployment: Updating while the new config's servers
(the green fleet) start beside the old ones; a fleet that fails its ping rolls back at once. Then
the green fleet takes each step's share of the requests (``deployments.steps``: all at once, canary
then the rest, or linear steps), each step followed by a baking period of WaitIntervalInSeconds
while the AutoRollbackConfiguration alarms are watched (CloudWatch, evaluated by the emulator). An
alarm in ALARM, or MaximumExecutionTimeoutInSeconds passing, → RollingBack: all traffic back on the
old fleet, green stopped, InService on the old config with FailureReason. Otherwise the green fleet
serves everything, the endpoint is InService on the new config, and the old fleet stops after
TerminationWaitInSeconds. DescribeEndpoint shows PendingDeploymentSummary meanwhile
(``pending_summary``) and LastDeploymentConfig. The old servers answer invocations throughout.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from localaws.sagemaker import capture, deployments
from localaws.sagemaker.common import home, trim_reason
from localaws.sagemaker.jobs import set_attrs
from localaws.sagemaker.workers import Worker, WorkerFailed

_counter = itertools.count(1)


class EndpointNotReady(Exception):
    """The endpoint has no healthy model server to take the request."""


def model_spec(model: Any) -> dict[str, Any]:
    """The container description of a moto Model."""
    return {
        "PrimaryContainer": model.primary_container,
        "Containers": model.containers,
        "ExecutionRoleArn": model.execution_role_arn,
        "ModelArn": model.arn,
    }


class EndpointRuntime:
    """Model servers of one endpoint, keyed by variant name; the Fake endpoint holds only data."""

    def __init__(self, account: str, region: str, endpoint: Any):
        self.account, self.region, self.endpoint = account, region, endpoint
        self.name = endpoint.endpoint_name
        self.workers: dict[str, Worker] = {}
        self.weights: dict[str, float] = {}
        self.green: dict[str, Worker] = {}  #: the new fleet during an update
        self.green_share = 0.0  #: the share of each variant's requests the new fleet takes
        self.pending: dict[str, Any] | None = None  #: the in-progress deployment, for DescribeEndpoint
        self._pending: list[Worker] = []
        self.capture: capture.EndpointCapture | None = None  #: data capture of the serving config
        self._lock = threading.Lock()
        self._dead = False

    # -- lifecycle --------------------------------------------------------------------------
    def _start_variants(self, config_name: str, variants: list[dict[str, Any]], models: dict[str, Any]):
        """Start and health-check one server per variant; returns {variant: Worker} or raises WorkerFailed."""
        generation = next(_counter)
        started: dict[str, Worker] = {}
        try:
            for variant in variants:
                vname = variant["VariantName"]
                model = models.get(variant["ModelName"])
                if model is None:
                    raise WorkerFailed(f"Could not find model {variant['ModelName']!r} for variant {vname}")
                worker = Worker(
                    self.account,
                    self.region,
                    model_spec(model),
                    home() / "endpoints" / self.name / f"{config_name}-{generation}" / vname,
                    f"/aws/sagemaker/Endpoints/{self.name}",
                    f"{vname}/i-{generation:08x}{random.randrange(16**9):09x}",
                )
                worker.config_name = config_name  # the metrics' EndpointConfigName dimension
                started[vname] = worker
                with self._lock:
                    if self._dead:
                        raise WorkerFailed("endpoint deleted")
                    self._pending.append(worker)
                worker.start()
            for vname, worker in started.items():
                try:
                    worker.wait_ready()
                except WorkerFailed as exc:
                    raise WorkerFailed(
                        f"The primary container for production variant {vname} did not pass the ping "
                        f"health check. Please check CloudWatch logs for this endpoint. (localaws: {exc})"
                    ) from exc
        except Exception:
            for worker in started.values():
                worker.stop()
            raise
        finally:
            with self._lock:
                self._pending = [w for w in self._pending if w not in started.values()]
        return started

    def create(self, config_name: str, variants: list[dict[str, Any]], models: dict[str, Any]) -> None:
        """Start the servers in a thread; the endpoint goes InService or Failed."""

        def run() -> None:
            time.sleep(0.1)
            try:
                workers = self._start_variants(config_name, variants, models)
            except WorkerFailed as exc:
                if not self._dead:
                    set_attrs(self.endpoint, failure_reason=trim_reason(str(exc)), endpoint_status="Failed")
                return
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                if not self._dead:
                    set_attrs(self.endpoint, failure_reason=f"InternalServerError: {exc}", endpoint_status="Failed")
                return
            with self._lock:
                if self._dead:
                    for worker in workers.values():
                        worker.stop()
                    return
                self.workers = workers
                self.weights = {v["VariantName"]: float(v.get("InitialVariantWeight", 1.0)) for v in variants}
            set_attrs(self.endpoint, failure_reason=None, endpoint_status="InService")

        threading.Thread(target=run, daemon=True, name=f"localaws-endpoint-{self.name}").start()

    def update(self, config_name: str, variants: list[dict[str, Any]], models: dict[str, Any],
               deployment_config: dict[str, Any] | None = None, capture_config: dict[str, Any] | None = None,
               ) -> None:
        """Blue/green: start the new fleet beside the old one, shift traffic step by step while the
        alarms are watched, then swap; any failure or alarm rolls back to the old fleet."""
        self.pending = {"config": config_name, "variants": variants, "start": time.time(),
                        "status": "Creating", "message": "Launching the new fleet", "share": 0.0}

        def run() -> None:
            began = time.monotonic()
            try:
                workers = self._start_variants(config_name, variants, models)
            except Exception as exc:  # noqa: BLE001 - any failure rolls back
                self._roll_back({}, trim_reason(str(exc)))
                return
            reason = self._shift(workers, deployments.steps(deployment_config, variants), deployment_config, began)
            if reason is not None:
                self._roll_back(workers, reason)
                return
            self._swap(config_name, variants, workers, deployments.timings(deployment_config)[1])
            self._switch_capture(capture_config)

        threading.Thread(target=run, daemon=True, name=f"localaws-endpoint-update-{self.name}").start()

    def _shift(self, workers: dict[str, Worker], steps: list[float], config: dict[str, Any] | None,
               began: float) -> str | None:
        """Give the new fleet each step's share and bake; the FailureReason when it must roll back."""
        wait, _, timeout = deployments.timings(config)
        alarms = deployments.alarm_names(config)
        first = next(iter(workers.values()))
        reader = deployments.AlarmReader(self.account, self.region, first.role_arn, first.model_arn)
        for number, share in enumerate(steps, 1):
            with self._lock:
                self.green, self.green_share = workers, share
            self._progress("Baking", f"{share:.0%} of traffic on the new fleet (step {number} of {len(steps)}); "
                           f"baking for {wait:g} seconds", share)
            reason = self._bake(wait, (reader, alarms), began + timeout, timeout)
            if reason is not None:
                return reason
        return None

    def _bake(self, wait: float, watch: tuple[deployments.AlarmReader, list[str]], deadline: float,
              timeout: float) -> str | None:
        """Watch the alarms for ``wait`` seconds (at least once); the FailureReason when one fires."""
        reader, alarms = watch
        end = time.monotonic() + wait
        while True:
            if self._dead:
                return "endpoint deleted"
            try:
                tripped = reader.tripped(alarms)
            except deployments.AlarmsUnreadable as exc:
                return trim_reason(str(exc))
            if tripped:
                return deployments.alarm_reason(tripped)
            if time.monotonic() > deadline:
                return deployments.timeout_reason(timeout)
            if time.monotonic() >= end:
                return None
            time.sleep(min(0.2, max(end - time.monotonic(), 0.01)))

    def _progress(self, status: str, message: str, share: float) -> None:
        if self.pending is not None:
            self.pending.update(status=status, message=message, share=share)

    def _roll_back(self, workers: dict[str, Worker], reason: str) -> None:
        """RollingBack → InService on the old fleet with ``reason``; the new fleet stops."""
        if self._dead:
            return
        set_attrs(self.endpoint, endpoint_status="RollingBack")
        with self._lock:
            self.green, self.green_share = {}, 0.0
        for worker in workers.values():  # requests already on the new fleet finish there
            worker.drain()
            worker.stop()
        time.sleep(1.0)  # visible to a poller, even on a loaded machine (on AWS a rollback takes minutes)
        self.pending = None
        set_attrs(self.endpoint, failure_reason=reason, endpoint_status="InService")

    def _swap(self, config_name: str, variants: list[dict[str, Any]], workers: dict[str, Worker],
              termination_wait: float) -> None:
        with self._lock:
            if self._dead:
                for worker in workers.values():
                    worker.stop()
                return
            old, self.workers = self.workers, workers
            self.green, self.green_share = {}, 0.0
            self.weights = {v["VariantName"]: float(v.get("InitialVariantWeight", 1.0)) for v in variants}
        self.pending = None
        set_attrs(
            self.endpoint,
            endpoint_config_name=config_name,
            production_variants=self.endpoint._process_production_variants(variants),
            failure_reason=None,
            endpoint_status="InService",
        )

        def terminate() -> None:
            for worker in old.values():
                worker.drain()
                worker.stop()

        if termination_wait > 0:
            timer = threading.Timer(termination_wait, terminate)
            timer.daemon = True  # shutdown() stops the old fleet's servers too (they stay in _pending)
            with self._lock:
                self._pending.extend(old.values())
            timer.start()
        else:
            terminate()

    def _switch_capture(self, config: dict[str, Any] | None) -> None:
        """The new config's data capture takes over; what the old one buffered is written first."""
        if self._dead:
            return
        old, self.capture = self.capture, capture.EndpointCapture.start(self.name, config)
        self.endpoint.data_capture_config = config or {}
        if old is not None:
            old.close()

    def pending_summary(self) -> dict[str, Any] | None:
        """DescribeEndpoint's PendingDeploymentSummary while an update is in progress."""
        pending = self.pending
        if pending is None:
            return None
        start = datetime.fromtimestamp(pending["start"], UTC).isoformat()
        summaries = []
        for variant in pending["variants"]:
            weight = float(variant.get("InitialVariantWeight", 1.0))
            summaries.append({
                "VariantName": variant["VariantName"],
                "CurrentWeight": round(weight * pending["share"], 4),
                "DesiredWeight": weight,
                "CurrentInstanceCount": int(variant.get("InitialInstanceCount") or 1) if pending["share"] else 0,
                "DesiredInstanceCount": int(variant.get("InitialInstanceCount") or 1),
                "InstanceType": variant.get("InstanceType"),
                "VariantStatus": [{"Status": pending["status"], "StatusMessage": pending["message"], "StartTime": start}],
            })
        return {"EndpointConfigName": pending["config"], "ProductionVariants": summaries, "StartTime": start}

    # -- serving ----------------------------------------------------------------------------
    def pick(self, target_variant: str | None) -> tuple[str, Worker]:
        """The variant that takes a request (TargetVariant, else weighted random)."""
        with self._lock:
            workers = dict(self.workers)
            weights = dict(self.weights)
        if not workers:
            raise EndpointNotReady(f"Endpoint {self.name} has no running model server")
        if target_variant:
            if target_variant not in workers:
                raise EndpointNotReady(f"Variant {target_variant} not found for endpoint {self.name}")
            return target_variant, self._fleet_for(target_variant, workers[target_variant])
        names = list(workers)
        chosen = random.choices(names, weights=[max(weights.get(n, 1.0), 0.0) or 1e-9 for n in names])[0]
        return chosen, self._fleet_for(chosen, workers[chosen])

    def _fleet_for(self, variant: str, blue: Worker) -> Worker:
        """During an update, the new fleet takes its current share of the variant's requests (sampled)."""
        with self._lock:
            green, share = self.green.get(variant), self.green_share
        return green if green is not None and random.random() < share else blue

    def shutdown(self) -> None:
        """Stop every model server of the endpoint."""
        with self._lock:
            self._dead = True
            workers, self.workers = list(self.workers.values()) + list(self.green.values()) + self._pending, {}
            self.green = {}
        if self.capture is not None:
            self.capture.close(flush=False)
        for worker in workers:
            worker.stop()
