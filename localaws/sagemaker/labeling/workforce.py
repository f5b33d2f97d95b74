"""The simulated private workforce that answers labeling tasks (admin API ``/_localaws/workforce``).

Configuration (JSON, every key optional; ``POST`` one object, ``GET`` shows them, ``DELETE`` clears):

* ``labeling_job``: the job name this config is for; without it, the default for every job;
* ``answers``: ``{source-ref: answer}`` (the true answer, perturbed by ``noise``) or
  ``{source-ref: [answer, ...]}`` (exactly what worker 1, 2, ... submit, no noise); an object
  without an entry gets the ``rule``'s answer;
* ``answers_by`` (default ``"source-ref"``): the manifest line attribute that keys ``answers``, e.g.
  the line's own id attribute when one image appears in several lines (say, with different captions
  to rate), since their ``source-ref`` is the same;
* ``rule``: ``"image"`` (default: answers from the image's pixels, see below) or ``"constant"``
  with ``"answer": {...}``;
* ``noise`` (0..1, default 0): the chance that a worker answers differently from the truth;
* ``abandonment`` (0..1, default 0): the chance that a worker does not submit within
  ``TaskTimeLimitInSeconds``; an object with fewer than ``min_answers`` (default 1) answers expires;
* ``workers`` (default 5): the team's size (≥ ``NumberOfHumanWorkersPerDataObject``); ids look like
  ``private.<region>.<16 hex>``, derived from the work team ARN (no personal data);
* ``fields``: renames the answer's form fields, e.g. ``{"fit": "fitness"}`` (default names below);
* ``seconds_per_task``: ``[low, high]`` (default ``[5, 60]``, capped at the task time limit);
* ``seed``: mixed into every draw (default 0). Draws are deterministic per job, object and worker;
* ``pace_seconds`` (default 0): real seconds the job waits after each object (to watch or stop it).

The kind of task comes from the pre-annotation Lambda's ``taskInput.task``: ``"caption"`` answers
``{"caption": str}`` (words from the image's labels, as DetectLabels sees them), ``"rate"`` answers
``{"fit": 1-5, "humour": 1-5}`` for ``taskInput.caption`` (or the data object's ``caption``),
computed from the image and the caption. Any other task needs ``answers`` or the ``constant`` rule.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from typing import Any

_KEYS = {"labeling_job", "answers", "answers_by", "rule", "answer", "noise", "abandonment", "min_answers", "workers", "fields",
         "seconds_per_task", "seed", "pace_seconds"}
DEFAULT: dict[str, Any] = {"rule": "image", "noise": 0.0, "abandonment": 0.0, "min_answers": 1, "workers": 5,
                           "fields": {}, "seconds_per_task": [5, 60], "seed": 0, "answers": {},
                           "answers_by": "source-ref"}


class WorkforceConfigError(ValueError):
    """The admin request's body is not a valid workforce configuration."""


def _check(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise WorkforceConfigError("body must be a JSON object")
    unknown = sorted(set(config) - _KEYS)
    if unknown:
        raise WorkforceConfigError(f"unknown keys {unknown}; allowed: {sorted(_KEYS)}")
    for key in ("noise", "abandonment"):
        value = config.get(key, 0)
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise WorkforceConfigError(f"{key} must be a number between 0 and 1")
    if config.get("rule", "image") not in ("image", "constant"):
        raise WorkforceConfigError('rule must be "image" or "constant"')
    if config.get("rule") == "constant" and not isinstance(config.get("answer"), dict):
        raise WorkforceConfigError('rule "constant" needs "answer": {...}')
    for key, low in (("workers", 1), ("min_answers", 1)):
        if not isinstance(config.get(key, low), int) or config.get(key, low) < low:
            raise WorkforceConfigError(f"{key} must be an integer >= {low}")
    if not isinstance(config.get("answers_by", "source-ref"), str) or not config.get("answers_by", "source-ref"):
        raise WorkforceConfigError("answers_by must be the name of a manifest line attribute")
    if not isinstance(config.get("answers", {}), dict) or not isinstance(config.get("fields", {}), dict):
        raise WorkforceConfigError("answers and fields must be JSON objects")
    if not isinstance(config.get("pace_seconds", 0), int | float) or not 0 <= config.get("pace_seconds", 0) <= 60:
        raise WorkforceConfigError("pace_seconds must be a number between 0 and 60")
    span = config.get("seconds_per_task", [5, 60])
    if not (isinstance(span, list) and len(span) == 2 and all(isinstance(s, int | float) and s >= 0 for s in span)
            and span[0] <= span[1]):
        raise WorkforceConfigError("seconds_per_task must be [low, high] with 0 <= low <= high")
    return copy.deepcopy(config)


class WorkforceStore:
    """Configurations set through the admin API: one default and one per labeling job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._configs: dict[str, dict[str, Any]] = {}

    def set(self, config: Any) -> dict[str, Any]:
        """Validate and store one configuration; returns it with the defaults filled in."""
        checked = _check(config)
        with self._lock:
            self._configs[checked.get("labeling_job") or ""] = checked
        return {**DEFAULT, **checked}

    def snapshot(self) -> dict[str, Any]:
        """Every configuration, by job name ("" = the default)."""
        with self._lock:
            return copy.deepcopy(self._configs)

    def clear(self) -> int:
        """Forget every configuration; returns how many there were."""
        with self._lock:
            count, self._configs = len(self._configs), {}
        return count

    def for_job(self, name: str) -> dict[str, Any]:
        """The configuration a job uses: the defaults, the default config, then the job's own."""
        with self._lock:
            base, own = self._configs.get("", {}), self._configs.get(name, {})
        return copy.deepcopy({**DEFAULT, **base, **own})


STORE = WorkforceStore()


def draw(*parts: Any) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.sha256("\x00".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def worker_ids(workteam_arn: str, region: str, count: int) -> list[str]:
    """The team's worker ids, ``private.<region>.<16 hex>`` (Ground Truth's form for private teams)."""
    return [f"private.{region}.{hashlib.sha256(f'{workteam_arn}#{i}'.encode()).hexdigest()[:16]}"
            for i in range(count)]


def worker_sub(worker_id: str) -> str:
    """A stable Cognito-style ``sub`` (a UUID) for a worker id."""
    h = hashlib.sha256(worker_id.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
