"""What the simulated workers answer: the true answer of an object, and a worker's noisy version."""

from __future__ import annotations

import hashlib
import io
from typing import Any

from localaws.image_labels import labels_for_image
from localaws.sagemaker.labeling.workforce import draw

TASKS = ("caption", "rate")
_OPENERS = ("Behold:", "Breaking news:", "Nobody asked, but", "Plot twist:", "Honestly,")
_NOISY_CAPTIONS = ("I have no idea what this is", "Looks like Monday to me", "My cat could draw this",
                   "This is fine", "Modern art, apparently")


class UnanswerableTask(Exception):
    """The workforce cannot answer this task (unknown task kind, unreadable image); the reason says why."""


def _label_words(image: bytes) -> list[str]:
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(image))
        img.load()
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds
        raise UnanswerableTask(f"the image could not be decoded: {type(exc).__name__}") from exc
    names = [lb["Name"].lower() for lb in labels_for_image(img)]
    return names[:3] or ["thing"]


def caption_for(image: bytes) -> str:
    """A caption built from the image's labels (deterministic)."""
    words = _label_words(image)
    opener = _OPENERS[int(hashlib.sha256(image).hexdigest(), 16) % len(_OPENERS)]
    return f"{opener} a {' '.join(words[:-1] + [words[-1]])} pretending to be art"


def rating_for(image: bytes, caption: str) -> dict[str, int]:
    """fit: how many of the image's label words the caption uses; humour: a hash of image and caption."""
    words = _label_words(image)
    text = caption.lower()
    fit = min(5, 1 + 2 * sum(1 for w in words if w in text))
    humour = 1 + int(hashlib.sha256(image + b"\x00" + caption.encode()).hexdigest(), 16) % 5
    return {"fit": fit, "humour": humour}


def task_kind(task_input: Any) -> str | None:
    """``taskInput.task`` when it is a task the default oracle knows."""
    kind = task_input.get("task") if isinstance(task_input, dict) else None
    return kind if kind in TASKS else None


def truth(kind: str | None, data_object: dict, task_input: Any, image: bytes | None) -> dict[str, Any]:
    """The default oracle's answer (before field renaming)."""
    if kind is None:
        raise UnanswerableTask("taskInput.task is not 'caption' or 'rate' and the workforce has no answer for "
                               "this source-ref (POST /_localaws/workforce with answers or a constant rule)")
    if image is None:
        raise UnanswerableTask("the data object has no source-ref image")
    if kind == "caption":
        return {"caption": caption_for(image)}
    caption = (task_input.get("caption") if isinstance(task_input, dict) else None) or data_object.get("caption")
    if not isinstance(caption, str):
        raise UnanswerableTask("a rate task needs taskInput.caption (or the data object's caption)")
    return rating_for(image, caption)


def perturb(answer: dict[str, Any], *key: Any) -> dict[str, Any]:
    """A worker's different answer: ratings moved by 1 or 2, captions swapped for another one."""
    out = dict(answer)
    for name, value in answer.items():
        r = draw(*key, name)
        if isinstance(value, bool):
            out[name] = not value
        elif isinstance(value, int):
            step = (1 if r < 0.5 else 2) * (1 if value <= 3 else -1)
            out[name] = max(1, min(5, value + step)) if 1 <= value <= 5 else value + step
        elif isinstance(value, str):
            out[name] = _NOISY_CAPTIONS[int(r * len(_NOISY_CAPTIONS))]
    return out
