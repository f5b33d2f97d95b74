"""Ground Truth pre-annotation Lambda of ogiri_label: one manifest line -> the worker task's input.

Event: ``{"version": "2018-10-16", "labelingJobArn": ..., "dataObject": {"source-ref": "s3://...",
"ogiri-task": "rate"|"caption", "caption": ..., "ogiri-id": ..., "image-key": ..., "caption-id": ...}}``.
Returns ``{"taskInput": {"task", "taskObject", "caption", "id"}, "isHumanAnnotationRequired": "true"}``;
a line without an image (or a ``rate`` line without a caption) needs no human: ``"false"``.
"""

TASKS = ("caption", "rate")


def task_input(data_object):
    """The template's ``task.input`` for a manifest line, or None when no worker should see it."""
    source = data_object.get("source-ref")
    task = data_object.get("ogiri-task") or ("rate" if data_object.get("caption") else "caption")
    if not isinstance(source, str) or not source.startswith("s3://") or task not in TASKS:
        return None
    caption = data_object.get("caption")
    if task == "rate" and not (isinstance(caption, str) and caption.strip()):
        return None
    out = {"task": task, "taskObject": source, "id": data_object.get("ogiri-id")}
    if task == "rate":
        out.update(caption=caption, imageKey=data_object.get("image-key"), captionId=data_object.get("caption-id"))
    return out


def handler(event, context=None):
    """Lambda entry point."""
    data_object = event.get("dataObject") or {}
    task = task_input(data_object)
    if task is None:
        return {"taskInput": {}, "isHumanAnnotationRequired": "false"}
    return {"taskInput": task, "isHumanAnnotationRequired": "true"}
