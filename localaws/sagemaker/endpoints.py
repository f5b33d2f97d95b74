"""Endpoints: one model server per production variant; create, update with rollback, invoke, delete.

CreateEndpoint: Creating → InService once every variant's server answers /ping, or Failed with
FailureReason. UpdateEndpoint: Updating while the new config's servers start beside the old ones;
swap only when all are healthy, otherwise RollingBack → InService on the old config with
FailureReason. The old servers answer invocations throughout.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import traceback
from typing import Any

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
        self._pending: list[Worker] = []
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

    def update(self, config_name: str, variants: list[dict[str, Any]], models: dict[str, Any]) -> None:
        """Start the new config's servers beside the old ones; swap when healthy, else roll back."""

        def run() -> None:
            try:
                workers = self._start_variants(config_name, variants, models)
            except Exception as exc:  # noqa: BLE001 - any failure rolls back
                if self._dead:
                    return
                set_attrs(self.endpoint, endpoint_status="RollingBack")
                time.sleep(0.3)  # visible to a poller
                set_attrs(self.endpoint, failure_reason=trim_reason(str(exc)), endpoint_status="InService")
                return
            with self._lock:
                if self._dead:
                    for worker in workers.values():
                        worker.stop()
                    return
                old, self.workers = self.workers, workers
                self.weights = {v["VariantName"]: float(v.get("InitialVariantWeight", 1.0)) for v in variants}
            set_attrs(
                self.endpoint,
                endpoint_config_name=config_name,
                production_variants=self.endpoint._process_production_variants(variants),
                failure_reason=None,
                endpoint_status="InService",
            )
            for worker in old.values():
                worker.stop()

        threading.Thread(target=run, daemon=True, name=f"localaws-endpoint-update-{self.name}").start()

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
            return target_variant, workers[target_variant]
        names = list(workers)
        chosen = random.choices(names, weights=[max(weights.get(n, 1.0), 0.0) or 1e-9 for n in names])[0]
        return chosen, workers[chosen]

    def shutdown(self) -> None:
        """Stop every model server of the endpoint."""
        with self._lock:
            self._dead = True
            workers, self.workers = list(self.workers.values()) + self._pending, {}
        for worker in workers:
            worker.stop()
