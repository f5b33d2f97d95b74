"""Ground Truth's output layout under ``<S3OutputPath>/<job name>/`` (Developer Guide, "Output data"):

* ``annotations/worker-response/iteration-1/<datasetObjectId>/<timestamp>.json``:
  ``{"answers": [{"acceptanceTime", "answerContent", "submissionTime", "timeSpentInSeconds",
  "workerId", "workerMetadata": {"identityData": {"identityProviderType", "issuer", "sub"}}}]}``;
* ``annotations/consolidated-annotation/consolidation-request/iteration-1/<timestamp>.json``: the
  payload the post-annotation Lambda reads (``[{"datasetObjectId", "dataObject": {"s3Uri"|"content"},
  "annotations": [{"workerId", "annotationData": {"content": "<answer JSON>"}}]}]``);
* ``annotations/consolidated-annotation/consolidation-response/iteration-1/<timestamp>.json``: what
  the Lambda answered;
* ``manifests/output/output.manifest``: one line per input line, the consolidated ``content`` merged
  in, plus ``<LabelAttributeName>-metadata``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from localaws.sagemaker.common import parse_s3_uri

ITERATION = "iteration-1"


def stamp(at: dt.datetime) -> str:
    """The file-name timestamp Ground Truth uses (``2026-12-07_16:42:05``), with microseconds here."""
    return at.strftime("%Y-%m-%d_%H:%M:%S.%f")


def iso_ms(at: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ``, the worker metadata's time format."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


class OutputWriter:
    """Writes a job's output objects with the execution role's S3 client (denials raise)."""

    def __init__(self, s3: Any, output_path: str, job_name: str):
        bucket, prefix = parse_s3_uri(output_path)
        self.s3, self.bucket = s3, bucket
        self.prefix = f"{prefix.rstrip('/')}/{job_name}/" if prefix.strip("/") else f"{job_name}/"

    def uri(self, rel: str) -> str:
        """``s3://`` URI of an output object."""
        return f"s3://{self.bucket}/{self.prefix}{rel}"

    def put(self, rel: str, body: Any) -> str:
        """Write JSON (or a str) under the job's prefix; returns its URI."""
        data = body if isinstance(body, str) else json.dumps(body)
        self.s3.put_object(Bucket=self.bucket, Key=self.prefix + rel, Body=data.encode("utf-8"))
        return self.uri(rel)

    def worker_response(self, object_id: str, answers: list[dict[str, Any]], at: dt.datetime) -> str:
        return self.put(f"annotations/worker-response/{ITERATION}/{object_id}/{stamp(at)}.json", {"answers": answers})

    def consolidation_request(self, payload: list[dict[str, Any]], at: dt.datetime) -> str:
        return self.put(f"annotations/consolidated-annotation/consolidation-request/{ITERATION}/{stamp(at)}.json",
                        payload)

    def consolidation_response(self, response: Any, at: dt.datetime) -> str:
        return self.put(f"annotations/consolidated-annotation/consolidation-response/{ITERATION}/{stamp(at)}.json",
                        response)

    def consolidation_response_prefix(self) -> str:
        """The ``outputConfig`` value Ground Truth passes to the post-annotation Lambda."""
        return self.uri("annotations/consolidated-annotation/consolidation-response")

    def manifest(self, lines: list[dict[str, Any]]) -> str:
        return self.put("manifests/output/output.manifest", "".join(json.dumps(line) + "\n" for line in lines))


def data_object_ref(line: dict[str, Any]) -> dict[str, Any]:
    """The ``dataObject`` of a consolidation payload: ``s3Uri`` for ``source-ref``, ``content`` for ``source``."""
    if "source-ref" in line:
        return {"s3Uri": line["source-ref"]}
    return {"content": line.get("source")}


def metadata(job_name: str, at: dt.datetime, failure: str | None = None) -> dict[str, Any]:
    """``<LabelAttributeName>-metadata`` of an output line (a custom task's: ``groundtruth/custom``)."""
    out: dict[str, Any] = {"job-name": f"labeling-job/{job_name}", "type": "groundtruth/custom"}
    if failure is None:
        out.update({"human-annotated": "yes", "creation-date": at.strftime("%Y-%m-%dT%H:%M:%S.%f")})
    else:
        out["failure-reason"] = failure
    return out
