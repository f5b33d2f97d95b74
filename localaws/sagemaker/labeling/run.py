"""A labeling job's run: as the execution role, object by object, then the output manifest.

1. SageMaker assumes ``RoleArn`` (trust in ``sagemaker.amazonaws.com``); the manifest and the UI
   template are read, and every output object written, with that role session (a denial fails
   the job with a ``ClientError`` naming the object); ``lambda:InvokeFunction`` on both Lambdas
   must be allowed to the role, else the job fails with the denial.
2. Per manifest line (``datasetObjectId`` = its 0-based index): the pre-annotation Lambda gets
   ``{"version": "2018-10-16", "labelingJobArn", "dataObject": <line>}`` and answers ``{"taskInput",
   "isHumanAnnotationRequired"}`` (without a pre-annotation Lambda, taskInput is the line);
   ``NumberOfHumanWorkersPerDataObject`` simulated workers answer (``workforce.py``); their
   responses are written; then the post-annotation Lambda consolidates them (``{"version",
   "labelingJobArn", "labelCategories"?, "labelAttributeName", "roleArn", "payload": {"s3Uri"},
   "outputConfig"}``) and its ``[{"datasetObjectId", "consolidatedAnnotation": {"content"}}]`` is
   merged into the object's output line.
3. A Lambda that raises or answers badly fails that object (``FailedNonRetryableError``, the
   reason in the line's metadata ``failure-reason``); so does an object that fewer than
   ``min_answers`` workers answered in time (expired). ``isHumanAnnotationRequired: "false"``
   leaves it ``Unlabeled``. The job still ends ``Completed``.
4. ``StopLabelingJob`` (or a StoppingConditions limit): Stopping, the objects done so far are
   written, the rest stay ``Unlabeled``, then Stopped. ``LabelCounters`` always add up to the lines.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from localaws.lambdas.runtime import LambdaProcess, LambdaUnavailable
from localaws.sagemaker import roles
from localaws.sagemaker.common import now, parse_s3_uri, trim_reason
from localaws.sagemaker.jobs import JobRun
from localaws.sagemaker.labeling import crowd
from localaws.sagemaker.labeling.models import LabelingJob
from localaws.sagemaker.labeling.output import OutputWriter, data_object_ref, metadata
from localaws.sagemaker.labeling.workforce import STORE
from localaws.sagemaker.platform import PlatformDenied, RoleSession

LOG_GROUP = "/aws/sagemaker/LabelingJobs"
VERSION = "2018-10-16"


class JobFailed(Exception):
    """The whole job fails with this FailureReason."""


@dataclass
class DataObject:
    """One manifest line and what became of it."""

    index: int
    line: dict[str, Any]
    state: str = "unlabeled"  # unlabeled | labeled | failed
    reason: str | None = None
    output: dict[str, Any] = field(default_factory=dict)

    @property
    def object_id(self) -> str:
        return str(self.index)


def parse_manifest(body: bytes, uri: str) -> list[dict[str, Any]]:
    """JSON lines, each an object with ``source-ref`` or ``source``."""
    lines = []
    for number, text in enumerate(body.decode("utf-8", "replace").splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            raise JobFailed(f"ClientError: The input manifest {uri} is not valid JSON Lines (line {number}).") from None
        if not isinstance(line, dict) or not ("source-ref" in line or "source" in line):
            raise JobFailed(f"ClientError: Line {number} of the input manifest {uri} has no source-ref or source.")
        lines.append(line)
    if not lines:
        raise JobFailed(f"ClientError: The input manifest {uri} has no data objects.")
    return lines


class LabelingRun(JobRun):
    """Runs one labeling job in a background thread, updating its ``LabelingJob``."""

    def __init__(self, job: LabelingJob, account: str, region: str):
        super().__init__(account, region, job.name, LOG_GROUP)
        self.job, self.req = job, job.req
        self.task = self.req["HumanTaskConfig"]
        self.lambdas: dict[str, LambdaProcess] = {}
        self.stopped_by_limit = False

    def request_stop(self) -> None:
        """StopLabelingJob: Stopping now, Stopped once the work done so far is written."""
        if self.job.status in ("Initializing", "InProgress"):
            self.job.set(status="Stopping")
        super().request_stop()

    def shutdown(self) -> None:
        super().shutdown()
        for process in self.lambdas.values():
            process.shutdown()

    def _main(self) -> None:
        try:
            self._run()
        except JobFailed as exc:
            self._finish("Failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - any emulator error must end the job, not hang it
            traceback.print_exc()
            self._finish("Failed", f"InternalServerError: localaws could not run the job: {type(exc).__name__}: {exc}")
        finally:
            for process in self.lambdas.values():
                process.shutdown()

    def _finish(self, status: str, reason: str | None = None) -> None:
        if not self._dead:
            self.job.set(status=status, failure_reason=trim_reason(reason) if reason else None)

    def _run(self) -> None:
        time.sleep(0.1)  # a poller sees Initializing
        if not self.stop_event.is_set():
            self.job.set(status="InProgress")
        s3 = self._assume_role()
        log = self.sink(f"{self.name}/labeling")
        objects = [DataObject(i, line) for i, line in enumerate(self._read_inputs(s3))]
        self.job.set(counters=counters(objects))
        self._start_lambdas()
        writer = OutputWriter(s3, self.req["OutputConfig"]["S3OutputPath"], self.name)
        config = STORE.for_job(self.name)
        log.write(f"Labeling job {self.name}: {len(objects)} data objects, "
                  f"{self.task['NumberOfHumanWorkersPerDataObject']} workers per object")
        for obj in objects:
            if self.stop_event.is_set() or self._limit_reached(objects):
                break
            self._label(obj, s3, writer, config)
            self.job.set(counters=counters(objects))
            if config.get("pace_seconds"):
                self.stop_event.wait(float(config["pace_seconds"]))
        self._guard(lambda: writer.manifest([o.output or o.line for o in objects]), "write the output manifest")
        stopped = self.stop_event.is_set() or self.stopped_by_limit
        self.job.set(counters=counters(objects), output_uri=writer.uri("manifests/output/output.manifest"))
        log.write(f"Labeling job {self.name}: {counters(objects)}")
        self._finish("Stopped" if stopped else "Completed")

    def _limit_reached(self, objects: list[DataObject]) -> bool:
        limits = self.req.get("StoppingConditions") or {}
        labeled = sum(1 for o in objects if o.state == "labeled")
        count = limits.get("MaxHumanLabeledObjectCount")
        percent = limits.get("MaxPercentageOfInputDatasetLabeled")
        reached = (count is not None and labeled >= count) or (
            percent is not None and labeled * 100 >= percent * len(objects))
        self.stopped_by_limit = self.stopped_by_limit or reached
        return reached

    def _assume_role(self) -> Any:
        try:
            self.session = RoleSession.assume(self.req.get("RoleArn"), self.account, self.region, self.job.arn)
        except (roles.RoleUnusable, PlatformDenied) as exc:
            raise JobFailed(f"ClientError: {exc}") from None
        return self.session.s3()

    def _guard(self, action: Any, what: str) -> Any:
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - a denied or failed S3 call fails the job with the reason
            raise JobFailed(f"ClientError: Could not {what}: {exc}") from None

    def _read(self, s3: Any, uri: str, what: str) -> bytes:
        bucket, key = parse_s3_uri(uri)
        return self._guard(lambda: s3.get_object(Bucket=bucket, Key=key)["Body"].read(), f"read the {what} {uri}")

    def _read_inputs(self, s3: Any) -> list[dict[str, Any]]:
        uri = self.req["InputConfig"]["DataSource"]["S3DataSource"]["ManifestS3Uri"]
        lines = parse_manifest(self._read(s3, uri, "input manifest"), uri)
        self._read(s3, self.task["UiConfig"]["UiTemplateS3Uri"], "worker task template")
        categories = self.req.get("LabelCategoryConfigS3Uri")
        if categories:
            self._read(s3, categories, "label category configuration")
        return lines

    def _start_lambdas(self) -> None:
        arns = {"pre": self.task.get("PreHumanTaskLambdaArn"),
                "post": self.task["AnnotationConsolidationConfig"]["AnnotationConsolidationLambdaArn"]}
        for kind, arn in arns.items():
            if not arn:
                continue
            denied = self.session.denial("lambda:InvokeFunction", arn)
            if denied:
                raise JobFailed(f"ClientError: {denied}")
            try:
                self.lambdas[kind] = LambdaProcess(self.account, self.region, arn)
            except LambdaUnavailable as exc:
                raise JobFailed(f"ClientError: {exc}") from None

    def _label(self, obj: DataObject, s3: Any, writer: OutputWriter, config: dict[str, Any]) -> None:
        """Pre-annotation, workers, worker responses, consolidation of one data object."""
        task_input = self._pre_annotate(obj)
        if task_input is None:
            return
        answers, reason = crowd.answer(self, obj, task_input, config, s3)
        if reason is not None:
            self._fail(obj, reason)
            return
        at = now()
        self._guard(lambda: writer.worker_response(obj.object_id, answers, at), "write the worker responses")
        self._consolidate(obj, answers, writer)

    def _fail(self, obj: DataObject, reason: str) -> None:
        obj.state, obj.reason = "failed", reason
        obj.output = {**obj.line, f"{self.req['LabelAttributeName']}-metadata": metadata(self.name, now(), reason)}

    def _pre_annotate(self, obj: DataObject) -> Any:
        """taskInput for the workers; None when the object is not sent to them (failed or not required)."""
        process = self.lambdas.get("pre")
        if process is None:
            return obj.line
        result, error = process.invoke({"version": VERSION, "labelingJobArn": self.job.arn, "dataObject": obj.line})
        if error is not None:
            self._fail(obj, f"ClientError: The pre-annotation Lambda {process.arn} failed: "
                            f"{error.get('errorType')}: {error.get('errorMessage')}")
            return None
        if not isinstance(result, dict) or "taskInput" not in result:
            self._fail(obj, f"ClientError: The pre-annotation Lambda {process.arn} did not return a taskInput.")
            return None
        required = result.get("isHumanAnnotationRequired", result.get("humanAnnotationRequired", True))
        if str(required).lower() == "false":
            return None
        return result["taskInput"]

    def _consolidate(self, obj: DataObject, answers: list[dict[str, Any]], writer: OutputWriter) -> None:
        process = self.lambdas["post"]
        payload = [{"datasetObjectId": obj.object_id, "dataObject": data_object_ref(obj.line),
                    "annotations": [{"workerId": a["workerId"],
                                     "annotationData": {"content": json.dumps(a["answerContent"])}}
                                    for a in answers]}]
        at = now()
        uri = self._guard(lambda: writer.consolidation_request(payload, at), "write the consolidation request")
        event = {"version": VERSION, "labelingJobArn": self.job.arn, "labelAttributeName": self.req["LabelAttributeName"],
                 "roleArn": self.req["RoleArn"], "payload": {"s3Uri": uri},
                 "outputConfig": writer.consolidation_response_prefix()}
        result, error = process.invoke(event)
        if error is not None:
            self._fail(obj, f"ClientError: The annotation consolidation Lambda {process.arn} failed: "
                            f"{error.get('errorType')}: {error.get('errorMessage')}")
            return
        self._guard(lambda: writer.consolidation_response(result, at), "write the consolidation response")
        self._apply(obj, result, process.arn)

    def _apply(self, obj: DataObject, result: Any, arn: str) -> None:
        attribute = self.req["LabelAttributeName"]
        found = [r for r in result if isinstance(r, dict) and str(r.get("datasetObjectId")) == obj.object_id] \
            if isinstance(result, list) else []
        content = ((found[0].get("consolidatedAnnotation") or {}).get("content") if found else None)
        if not isinstance(content, dict) or attribute not in content:
            self._fail(obj, f"ClientError: The annotation consolidation Lambda {arn} returned no "
                            f"consolidatedAnnotation.content.{attribute} for datasetObjectId {obj.object_id}.")
            return
        obj.state = "labeled"
        obj.output = {**obj.line, **content, f"{attribute}-metadata": metadata(self.name, now())}


def counters(objects: list[DataObject]) -> dict[str, int]:
    """LabelCounters: every object is labeled, failed or unlabeled."""
    labeled = sum(1 for o in objects if o.state == "labeled")
    failed = sum(1 for o in objects if o.state == "failed")
    return {"TotalLabeled": labeled, "HumanLabeled": labeled, "MachineLabeled": 0,
            "FailedNonRetryableError": failed, "Unlabeled": len(objects) - labeled - failed}
