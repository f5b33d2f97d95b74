"""What a labeling job is made of: the input manifest, the worker template and the request.

The manifest has one line per data object: ``source-ref`` (the image's S3 URI) and, for ``rate``,
the caption to rate with its ids. The pre-annotation Lambda (``include/labeling/pre_annotation.py``)
turns a line into the template's ``task.input``; the consolidation Lambda
(``include/labeling/consolidation.py``) gathers the workers' answers.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ogiri.label import layout

#: The manifest attributes besides ``source-ref`` (read by the pre-annotation Lambda).
MANIFEST_FIELDS = {"id": "ogiri-id", "task": "ogiri-task", "image_key": "image-key", "caption_id": "caption-id",
                   "caption": "caption"}


def manifest_line(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest line of a data object."""
    line = {"source-ref": obj["source-ref"]}
    line.update({attr: obj[key] for key, attr in MANIFEST_FIELDS.items() if obj.get(key) is not None})
    return line


def manifest_body(objects: Iterable[Mapping[str, Any]]) -> bytes:
    """The JSON Lines input manifest."""
    return "".join(json.dumps(manifest_line(o), ensure_ascii=False) + "\n" for o in objects).encode("utf-8")


_HEAD = """<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form>
  <div style="display:flex;gap:24px;flex-wrap:wrap">
    <img src="{{ task.input.taskObject | grant_read_access }}" alt="the image" style="max-width:480px;max-height:480px">
    <div style="min-width:320px">
"""
_TAIL = """    </div>
  </div>
</crowd-form>
"""
_RATE = """      <h3>How good is this caption for this image?</h3>
      <p style="font-size:1.3em"><strong>{{ task.input.caption | escape }}</strong></p>
      <p>Fit: does it match the image? (1 = not at all, 5 = perfectly)</p>
      <crowd-slider name="fit" min="1" max="5" step="1" required pin editable></crowd-slider>
      <p>Humour: is it funny? (1 = not at all, 5 = very)</p>
      <crowd-slider name="humour" min="1" max="5" step="1" required pin editable></crowd-slider>
"""
_CAPTION = """      <h3>Write a funny caption for this image (ogiri)</h3>
      <p>One line, at most {max_chars} characters; no line breaks or control characters.</p>
      <crowd-text-area name="caption" rows="3" max-length="{max_chars}" char-counter required
        placeholder="Your caption"></crowd-text-area>
"""


def worker_template(task: str, *, max_caption_chars: int) -> str:
    """The crowd-html (Liquid) worker template of a task: the image, then the rating scales (``rate``:
    answers ``{"fit": 1-5, "humour": 1-5}``) or a text field (``caption``: answers ``{"caption": text}``)."""
    body = _RATE if task == "rate" else _CAPTION.replace("{max_chars}", html.escape(str(int(max_caption_chars))))
    return _HEAD + body + _TAIL


def labeling_request(*, job: str, task: str, bucket: str, run_key: str, workers_per_object: int,
                     task_time_limit_s: int, task_availability_s: int, settings: Any) -> dict[str, Any]:
    """The ``CreateLabelingJob`` request of a run (its name is the run's deterministic job name)."""
    title = "Rate ogiri captions for fit and humour" if task == "rate" else "Write an ogiri caption for an image"
    return {
        "LabelingJobName": job,
        "LabelAttributeName": layout.LABEL_ATTRIBUTE,
        "InputConfig": {
            "DataSource": {"S3DataSource": {"ManifestS3Uri": f"s3://{bucket}/{layout.manifest_key(job)}"}},
            "DataAttributes": {"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]},
        },
        "OutputConfig": {"S3OutputPath": f"s3://{bucket}/{layout.output_prefix(job)}"},
        "RoleArn": settings.labeling_role_arn,
        "StoppingConditions": {"MaxPercentageOfInputDatasetLabeled": 100},
        "HumanTaskConfig": {
            "WorkteamArn": settings.workteam_arn,
            "UiConfig": {"UiTemplateS3Uri": f"s3://{bucket}/{layout.template_key(job)}"},
            "PreHumanTaskLambdaArn": settings.labeling_pre_lambda_arn,
            "TaskKeywords": ["ogiri", "caption", "image"],
            "TaskTitle": title,
            "TaskDescription": f"{title}. Answers are stored with your worker id only.",
            "NumberOfHumanWorkersPerDataObject": int(workers_per_object),
            "TaskTimeLimitInSeconds": int(task_time_limit_s),
            "TaskAvailabilityLifetimeInSeconds": int(task_availability_s),
            "MaxConcurrentTaskCount": 1000,
            "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": settings.labeling_consolidation_lambda_arn,
            },
        },
        "Tags": [{"Key": "ogiri:run-key", "Value": run_key[:256]}, {"Key": "ogiri:task", "Value": task}],
    }
