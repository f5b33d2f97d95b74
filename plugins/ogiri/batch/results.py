"""Transform outputs → one result per requested image, the run's ``captions.jsonl`` and its summary.

Every image a request file asked for gets exactly one :class:`ItemResult`: its caption and score,
or an ``error`` saying why not — the model's per-item error (``{"id", "error"}``), an output line
that is missing or unreadable, a missing ``.out`` file, or a transform job that did not complete.
Nothing is dropped silently.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ogiri.batch.planning import InputSet, read_request_ids

#: Failures listed one by one in the summary (all of them are in captions.jsonl and the ledger).
SUMMARY_FAILURES = 100


@dataclass(frozen=True)
class ItemResult:
    """What one image of a run came out as (a line of ``captions.jsonl``)."""

    image_key: str
    set: str
    model_name: str
    job_name: str
    caption: str | None = None
    score: float | None = None
    error: str | None = None
    #: False when the transform never processed the item (job failed / not run): reported, but not
    #: written to the ledger, so an infrastructure failure never overwrites an earlier caption.
    processed: bool = True

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> ItemResult:
        return cls(**json.loads(line))


def _item_from_output(obj: Any, base: dict[str, str]) -> ItemResult:
    if not isinstance(obj, dict):
        return ItemResult(**base, error=f"output line is not a JSON object: {str(obj)[:200]}")
    if obj.get("error"):
        return ItemResult(**base, error=str(obj["error"]))
    caption = obj.get("caption")
    if not isinstance(caption, str):
        return ItemResult(**base, error="output line has no caption")
    score = obj.get("score")
    try:
        score = None if score is None else float(score)
    except (TypeError, ValueError):
        return ItemResult(**base, error=f"output score {score!r} is not a number")
    if score is not None and not math.isfinite(score):
        score = None
    return ItemResult(**base, caption=caption, score=score)


def parse_output(
    request_ids: Sequence[str],
    output: bytes | str | None,
    *,
    set_name: str,
    model_name: str,
    job_name: str,
    source: str = "request file",
) -> list[ItemResult]:
    """Match a ``.out`` body to the ids of its request file, one result per requested id, in order.

    Output lines are matched by their ``id``; lines without ids are matched by position when the
    line counts agree. ``output=None`` (no ``.out`` file) makes every item a failure.
    """

    def base(image_key: str) -> dict[str, str]:
        return {"image_key": image_key, "set": set_name, "model_name": model_name, "job_name": job_name}

    if output is None:
        return [ItemResult(**base(i), error=f"transform wrote no output for {source}") for i in request_ids]
    text = output.decode("utf-8", errors="replace") if isinstance(output, bytes) else output
    lines = [line for line in text.splitlines() if line.strip()]
    parsed: list[Any] = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            parsed.append(_Unreadable(line))
    by_id = {str(p["id"]): p for p in parsed if isinstance(p, dict) and p.get("id") is not None}
    positional = not by_id and len(parsed) == len(request_ids)
    results = []
    for index, image_key in enumerate(request_ids):
        if image_key in by_id:
            obj = by_id[image_key]
        elif positional:
            obj = parsed[index]
        else:
            results.append(ItemResult(**base(image_key), error=f"no output line for this item in {source}"))
            continue
        if isinstance(obj, _Unreadable):
            results.append(ItemResult(**base(image_key), error=f"unreadable output line: {obj.line[:200]}"))
        else:
            results.append(_item_from_output(obj, base(image_key)))
    return results


@dataclass(frozen=True)
class _Unreadable:
    line: str


def not_processed(
    request_ids: Sequence[str], *, set_name: str, model_name: str, job_name: str, reason: str
) -> list[ItemResult]:
    """Results for items whose transform job did not complete."""
    return [
        ItemResult(
            image_key=i, set=set_name, model_name=model_name, job_name=job_name, error=reason, processed=False
        )
        for i in request_ids
    ]


def _list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(keys)


def _read(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None


def collect_set(
    s3: Any, input_set: InputSet, *, model_name: str, job_status: str, failure_reason: str | None = None
) -> list[ItemResult]:
    """Results of one input set: parsed outputs when its job ``Completed``, else failures naming
    the job's status and reason."""
    results = []
    for key in _list_keys(s3, input_set.bucket, input_set.input_prefix):
        ids = read_request_ids(_read(s3, input_set.bucket, key) or b"")
        if job_status != "Completed":
            reason = f"transform job {input_set.job_name} {job_status}"
            if failure_reason:
                reason += f": {failure_reason}"
            results += not_processed(
                ids,
                set_name=input_set.name,
                model_name=model_name,
                job_name=input_set.job_name,
                reason=reason,
            )
            continue
        out_key = input_set.output_prefix + key[len(input_set.input_prefix) :] + ".out"
        results += parse_output(
            ids,
            _read(s3, input_set.bucket, out_key),
            set_name=input_set.name,
            model_name=model_name,
            job_name=input_set.job_name,
            source=f"s3://{input_set.bucket}/{key}",
        )
    return results


def to_jsonl(results: Iterable[ItemResult]) -> bytes:
    """``captions.jsonl`` body: one JSON object per item."""
    return "".join(r.to_json() + "\n" for r in results).encode("utf-8")


def from_jsonl(body: bytes | str) -> list[ItemResult]:
    """Parse a ``captions.jsonl`` body back into results."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return [ItemResult.from_json(line) for line in text.splitlines() if line.strip()]


def summarize(results: Sequence[ItemResult], job_states: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Counts for the run and per set, failure reasons, and the first :data:`SUMMARY_FAILURES`
    failed items. ``job_states`` maps set name → ``{"job_name", "status", "failure_reason"}``."""
    per_set: dict[str, Counter] = {name: Counter() for name in job_states}
    for r in results:
        c = per_set.setdefault(r.set, Counter())
        c["items"] += 1
        c["captioned" if r.ok else "failed"] += 1
    failures = [r for r in results if not r.ok]
    return {
        "items": len(results),
        "captioned": len(results) - len(failures),
        "failed": len(failures),
        "sets": [
            {
                "set": name,
                **job_states.get(name, {}),
                "items": per_set[name]["items"],
                "captioned": per_set[name]["captioned"],
                "failed": per_set[name]["failed"],
            }
            for name in sorted(per_set)
        ],
        "failed_jobs": sorted(n for n, s in job_states.items() if s.get("status") != "Completed"),
        "failure_reasons": dict(Counter(_reason_class(r.error or "") for r in failures).most_common()),
        "failures": [
            {"image_key": r.image_key, "set": r.set, "error": r.error} for r in failures[:SUMMARY_FAILURES]
        ],
    }


_LINE_PREFIX = re.compile(r"^line \d+:\s*")


def _reason_class(error: str) -> str:
    """A short grouping key for an error message: its text before the first colon, ignoring the
    model's ``line N:`` prefix (``"line 3: cannot decode image: …"`` → ``"cannot decode image"``)."""
    return _LINE_PREFIX.sub("", error).split(":", 1)[0].strip()[:80] or "unknown"
