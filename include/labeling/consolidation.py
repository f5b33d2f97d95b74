"""Ground Truth annotation consolidation Lambda of ogiri_label.

Event: ``{"version": "2018-10-16", "labelingJobArn", "labelAttributeName", "roleArn",
"payload": {"s3Uri": "s3://..."}, "outputConfig"}``. The payload (read with this function's role) is a
list of ``{"datasetObjectId", "dataObject", "annotations": [{"workerId", "annotationData":
{"content": "<JSON of the form's answers>"}}]}``.

Returns, per data object, ``{"datasetObjectId", "consolidatedAnnotation": {"content":
{<labelAttributeName>: label}}}`` with ``label`` = ``{"ratings": [{"workerId", "fit", "humour"}],
"fit": median, "humour": median, "count": n, "captions": [{"workerId", "caption"}], "invalid":
[{"workerId", "reason"}]}``: the medians of the valid 1-5 ratings (``rate``; absent without any) and
every written caption as written (``caption``; the DAG applies the caption rules when it ingests them).
"""

import json
import statistics


def _answer(annotation):
    """The form's answers of one annotation as a dict, or a string saying why not."""
    content = (annotation.get("annotationData") or {}).get("content")
    try:
        answer = json.loads(content) if isinstance(content, str) else content
    except ValueError:
        return "answer is not JSON"
    if not isinstance(answer, dict):
        return "answer is not a JSON object"
    return answer or "empty answer"


def _scale(value):
    """An integer 1-5 from a slider answer (number or numeric text), else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and 1 <= number <= 5 else None


def consolidate_object(obj):
    """The consolidated label of one data object (see the module docstring)."""
    ratings, captions, invalid = [], [], []
    for annotation in obj.get("annotations") or []:
        worker = str(annotation.get("workerId") or "unknown")
        answer = _answer(annotation)
        if isinstance(answer, str):
            invalid.append({"workerId": worker, "reason": answer})
        elif "caption" in answer:
            text = answer["caption"]
            if isinstance(text, str):
                captions.append({"workerId": worker, "caption": text})
            else:
                invalid.append({"workerId": worker, "reason": "caption is not text"})
        else:
            fit, humour = _scale(answer.get("fit")), _scale(answer.get("humour"))
            if fit is None or humour is None:
                invalid.append({"workerId": worker, "reason": "fit and humour must be integers 1-5"})
            else:
                ratings.append({"workerId": worker, "fit": fit, "humour": humour})
    label = {"captions": captions, "ratings": ratings, "invalid": invalid, "count": len(ratings)}
    if ratings:
        label["fit"] = statistics.median(r["fit"] for r in ratings)
        label["humour"] = statistics.median(r["humour"] for r in ratings)
    return label


def read_payload(uri, s3=None):
    """The payload list at ``uri`` (``s3://bucket/key``)."""
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def handler(event, context=None, s3=None):
    """Lambda entry point."""
    attribute = event["labelAttributeName"]
    payload = event.get("payload") or {}
    objects = read_payload(payload["s3Uri"], s3) if "s3Uri" in payload else payload.get("content") or []
    return [
        {"datasetObjectId": obj.get("datasetObjectId"),
         "consolidatedAnnotation": {"content": {attribute: consolidate_object(obj)}}}
        for obj in objects
    ]
