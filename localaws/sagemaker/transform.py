"""Batch transform jobs: a model server runs the handlers over every input object, writing `.out` files.

Honours SplitType None/Line, BatchStrategy SingleRecord/MultiRecord (MaxPayloadInMB),
ContentType, TransformOutput.Accept and AssembleWith None/Line; output for input key
`<prefix><rel>` goes to `<S3OutputPath>/<rel>.out`. A handler error fails the job with a
FailureReason naming the object.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from localaws.sagemaker.common import now, parse_s3_uri, s3_data_objects, trim_reason, work_dir
from localaws.sagemaker.jobs import set_attrs
from localaws.sagemaker.workers import Worker, WorkerFailed

LOG_GROUP = "/aws/sagemaker/TransformJobs"


class RecordError(Exception):
    """One input object could not be transformed."""


def initial_attrs() -> dict[str, Any]:
    """Attributes every emulated transform job has from creation on."""
    return {
        "transform_job_status": "InProgress",
        "failure_reason": None,
        "transform_start_time": None,
        "transform_end_time": None,
    }


def split_requests(data: bytes, split_type: str, strategy: str, max_payload: int) -> list[bytes]:
    """Request bodies for one object, the way SageMaker batches them."""
    if split_type in (None, "", "None"):
        if max_payload and len(data) > max_payload:
            raise RecordError(f"object is {len(data)} bytes, more than MaxPayloadInMB ({max_payload} bytes)")
        return [data]
    if split_type != "Line":
        raise RecordError(f"SplitType {split_type!r} is not supported locally (use None or Line)")
    records = [line for line in data.split(b"\n") if line.strip()]
    if strategy != "MultiRecord":
        return records
    batches: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for record in records:
        if current and max_payload and size + len(record) + 1 > max_payload:
            batches.append(b"\n".join(current) + b"\n")
            current, size = [], 0
        current.append(record)
        size += len(record) + 1
    if current:
        batches.append(b"\n".join(current) + b"\n")
    return batches


def assemble(outputs: list[bytes], assemble_with: str | None) -> bytes:
    """Join the responses of one object (AssembleWith Line puts each on its own line)."""
    if assemble_with == "Line":
        return b"".join(o if o.endswith(b"\n") else o + b"\n" for o in outputs)
    return b"".join(outputs)


class TransformRun:
    """Runs one transform job in a background thread, updating its FakeTransformJob."""

    def __init__(self, job: Any, request: dict[str, Any], model: dict[str, Any], account: str, region: str):
        self.job, self.req, self.model = job, request, model
        self.account, self.region = account, region
        self.name = request["TransformJobName"]
        self.stop_event = threading.Event()
        self.worker: Worker | None = None
        self._dead = False
        self.thread = threading.Thread(target=self._main, daemon=True, name=f"localaws-transform-{self.name}")

    def start(self) -> None:
        """Start the job thread."""
        self.thread.start()

    def request_stop(self) -> None:
        """StopTransformJob: Stopping now, Stopped when the current requests end."""
        if self.job.transform_job_status == "InProgress":
            set_attrs(self.job, transform_job_status="Stopping")
        self.stop_event.set()

    def shutdown(self) -> None:
        """Kill the model server at once."""
        self._dead = True
        self.stop_event.set()
        if self.worker is not None:
            self.worker.stop()

    def _finish(self, status: str, reason: str | None = None) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self._dead:
            return
        set_attrs(self.job, failure_reason=trim_reason(reason) if reason else None, transform_end_time=now())
        set_attrs(self.job, transform_job_status=status)

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - any emulator error must end the job, not hang it
            traceback.print_exc()
            self._finish("Failed", f"InternalServerError: localaws could not run the job: {type(exc).__name__}: {exc}")

    def _run(self) -> None:
        """Start the model server, transform every input object and set the final status."""
        req = self.req
        root = work_dir("transform", self.name)
        max_payload = int(req.get("MaxPayloadInMB") or 6) * 1024 * 1024
        concurrency = max(1, min(int(req.get("MaxConcurrentTransforms") or 1), 4))
        if not self._start_model_server(root, max_payload, concurrency):
            return
        source = ((req.get("TransformInput") or {}).get("DataSource") or {}).get("S3DataSource") or {}
        s3 = self.worker.session.s3()  # a transform job reads and writes as the model's execution role
        try:
            objects = s3_data_objects(s3, source.get("S3Uri", ""), source.get("S3DataType", "S3Prefix"))
        except Exception as exc:  # noqa: BLE001 - bad data source: the job fails with the reason
            self._finish("Failed", f"ClientError: could not list the input {source.get('S3Uri')!r}: {exc}")
            return
        failures = self._transform_all(s3, objects, max_payload, concurrency)
        if self.stop_event.is_set() and not failures:
            time.sleep(0.05)
            self._finish("Stopped")
        elif failures:
            self._finish("Failed", f"ClientError: failed to transform {failures[0]}")
        else:
            self._finish("Completed")

    def _start_model_server(self, root: Path, max_payload: int, concurrency: int) -> bool:
        """Start the batch model server and wait until it is ready; False if the run must end here."""
        env = {
            **(self.req.get("Environment") or {}),
            "SAGEMAKER_BATCH": "true",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(max_payload // (1024 * 1024)),
            "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": str(concurrency),
        }
        set_attrs(self.job, transform_start_time=now())
        self.worker = Worker(
            self.account,
            self.region,
            self.model,
            root,
            LOG_GROUP,
            f"{self.name}/i-{random.randrange(16**17):017x}",
            extra_env=env,
        )
        try:
            if self._dead:
                return False
            self.worker.start()
            self.worker.wait_ready()
        except WorkerFailed as exc:
            self._finish("Failed", f"ClientError: the model server failed to start: {exc}")
            return False
        return True

    def _transform_all(self, s3: Any, objects: list[tuple[str, str, str]], max_payload: int,
                       concurrency: int) -> list[str]:
        """Transform the objects on `concurrency` threads; one message per object that failed."""
        out_bucket, out_prefix = parse_s3_uri((self.req.get("TransformOutput") or {}).get("S3OutputPath", ""))
        out_prefix = out_prefix.rstrip("/") + "/" if out_prefix.strip("/") else ""
        failures: list[str] = []
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = {
                pool.submit(self._transform_one, s3, item, max_payload, out_bucket, out_prefix): item
                for item in objects
            }
            for future, (bucket, key, _) in futures.items():
                try:
                    future.result()
                except Exception as exc:  # noqa: BLE001 - reported as the job's FailureReason
                    failures.append(f"s3://{bucket}/{key}: {exc}")
                    self.stop_event.set()
        return failures

    def _transform_one(self, s3: Any, item: tuple[str, str, str], max_payload: int, out_bucket: str,
                       out_prefix: str) -> None:
        """Send one input object's requests to the model server and write its assembled `.out` object."""
        tin = self.req.get("TransformInput") or {}
        tout = self.req.get("TransformOutput") or {}
        bucket, key, rel = item
        if self.stop_event.is_set():
            return
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        outputs = []
        for body in split_requests(data, tin.get("SplitType"), self.req.get("BatchStrategy"), max_payload):
            if self.stop_event.is_set():
                return
            status, _, out = self.worker.invoke(body, tin.get("ContentType"), tout.get("Accept"))
            if status != 200:
                raise RecordError(out.decode("utf-8", "replace"))
            outputs.append(out)
        s3.put_object(Bucket=out_bucket, Key=f"{out_prefix}{rel}.out", Body=assemble(outputs, tout.get("AssembleWith")))
