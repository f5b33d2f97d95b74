"""Ground Truth's output → one outcome per data object, and rejects with reasons.

Every selected object ends exactly one way (``objects in = labeled + rejected + expired``):

* ``expired``: no label in the output manifest (no worker answered before the task expired, or the
  job was stopped before the object); an object Ground Truth failed for another reason (a Lambda
  error) is rejected as ``labeling_failed``;
* ``rejected``: answered, but no answer passed the rules (reasons in ``rejects.jsonl``);
* ``labeled``: at least one valid answer. Invalid answers of a labeled object are rejected one by one.

Caption rules (those of ``ogiri_ingest``): NFC, stripped, not empty, at most ``max_caption_chars``,
and :mod:`ogiri.caption_policy` (no control characters but tab, no bidi controls, something visible).
Ratings: integers 1-5.
"""

from __future__ import annotations

import json
import statistics
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from ogiri.caption_policy import caption_problem as policy_problem
from ogiri.label.layout import LABEL_ATTRIBUTE

OUTCOMES = ("labeled", "rejected", "expired")


@dataclass
class Outcome:
    """How one data object ended, and what people said about it."""

    obj: dict[str, Any]
    status: str = "expired"
    #: caption: ``[(caption, [worker ids])]`` of the valid captions, first writer first.
    captions: list[tuple[str, list[str]]] = field(default_factory=list)
    #: rate: ``[{"workerId", "fit", "humour"}]`` of the valid ratings.
    ratings: list[dict[str, Any]] = field(default_factory=list)
    agreement: float | None = None
    workers: list[str] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fit(self) -> float | None:
        return statistics.median(r["fit"] for r in self.ratings) if self.ratings else None

    @property
    def humour(self) -> float | None:
        return statistics.median(r["humour"] for r in self.ratings) if self.ratings else None

    @property
    def rating(self) -> float | None:
        return None if not self.ratings else (self.fit + self.humour) / 2

    def to_dict(self) -> dict[str, Any]:
        """A line of ``labels.jsonl`` (worker ids only; no worker personal data)."""
        return {"id": self.obj["id"], "task": self.obj["task"], "status": self.status,
                "image_key": self.obj["image_key"], "caption_id": self.obj.get("caption_id"),
                "caption": self.obj.get("caption"), "origin": self.obj.get("origin"),
                "captions": [{"caption": c, "workers": w} for c, w in self.captions],
                "ratings": self.ratings, "fit": self.fit, "humour": self.humour, "rating": self.rating,
                "agreement": self.agreement, "workers": self.workers}


def outcome_from_dict(line: Mapping[str, Any], rejects: Sequence[dict[str, Any]] = ()) -> Outcome:
    """An outcome back from its ``labels.jsonl`` line (and its ``rejects.jsonl`` lines)."""
    obj = {k: line.get(k) for k in ("id", "task", "image_key", "caption_id", "caption", "origin")}
    return Outcome(obj=obj, status=line["status"], captions=[(c["caption"], list(c["workers"]))
                                                             for c in line.get("captions") or []],
                   ratings=list(line.get("ratings") or []), agreement=line.get("agreement"),
                   workers=list(line.get("workers") or []), rejects=list(rejects))


def caption_problem(text: Any, max_chars: int) -> str | None:
    """Why a written caption breaks the rules (a reason code), or None when it is fine."""
    if not isinstance(text, str):
        return "malformed_answer"
    text = unicodedata.normalize("NFC", text).strip()
    if not text:
        return "empty_answer"
    if len(text) > max_chars:
        return "caption_too_long"
    problem = policy_problem(text)
    return problem[0] if problem else None


def _reject(obj: Mapping[str, Any], reason: str, worker: str | None = None, level: str = "answer",
            answer: Any = None) -> dict[str, Any]:
    line = {"id": obj["id"], "image_key": obj["image_key"], "level": level, "reason": reason, "worker_id": worker}
    if answer is not None:
        line["answer"] = str(answer)[:200]
    return line


def rating_agreement(ratings: Sequence[Mapping[str, Any]]) -> float | None:
    """1 − mean distance of each rating from the medians, on both 1-5 scales (1 = all the same)."""
    if not ratings:
        return None
    fit = statistics.median(r["fit"] for r in ratings)
    humour = statistics.median(r["humour"] for r in ratings)
    spread = statistics.fmean(abs(r["fit"] - fit) + abs(r["humour"] - humour) for r in ratings)
    return round(1 - spread / 8, 4)


def caption_agreement(captions: Sequence[str]) -> float | None:
    """Mean pairwise word-set Jaccard similarity of the captions (1 = all the same; one caption: 1)."""
    if not captions:
        return None
    sets = [set(c.casefold().split()) for c in captions]
    pairs = list(combinations(sets, 2))
    if not pairs:
        return 1.0
    return round(statistics.fmean(len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs), 4)


def _judge_caption(out: Outcome, label: Mapping[str, Any], max_chars: int) -> None:
    by_text: dict[str, list[str]] = {}
    for entry in label.get("captions") or []:
        worker, text = str(entry.get("workerId")), entry.get("caption")
        problem = caption_problem(text, max_chars)
        if problem:
            out.rejects.append(_reject(out.obj, problem, worker, answer=text))
            continue
        by_text.setdefault(unicodedata.normalize("NFC", text).strip(), []).append(worker)
    for entry in label.get("ratings") or []:
        out.rejects.append(_reject(out.obj, "wrong_task_answer", str(entry.get("workerId"))))
    out.captions = list(by_text.items())
    out.agreement = caption_agreement([c for c, ws in by_text.items() for _ in ws])


def _judge_rating(out: Outcome, label: Mapping[str, Any]) -> None:
    for entry in label.get("ratings") or []:
        fit, humour = entry.get("fit"), entry.get("humour")
        if all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5 for v in (fit, humour)):
            out.ratings.append({"workerId": str(entry.get("workerId")), "fit": fit, "humour": humour})
        else:
            out.rejects.append(_reject(out.obj, "malformed_answer", str(entry.get("workerId")), answer=entry))
    for entry in label.get("captions") or []:
        out.rejects.append(_reject(out.obj, "wrong_task_answer", str(entry.get("workerId"))))
    out.agreement = rating_agreement(out.ratings)


def judge(obj: Mapping[str, Any], line: Mapping[str, Any] | None, *, max_caption_chars: int) -> Outcome:
    """The outcome of one object given its output manifest line (None: no line)."""
    out = Outcome(obj=dict(obj))
    label = (line or {}).get(LABEL_ATTRIBUTE)
    if not isinstance(label, Mapping):
        failure = str(((line or {}).get(f"{LABEL_ATTRIBUTE}-metadata") or {}).get("failure-reason") or "")
        if failure and "expired" not in failure.lower():  # a Lambda or the service failed the object
            out.status = "rejected"
            out.rejects.append(_reject(out.obj, "labeling_failed", level="object", answer=failure))
        return out  # else expired: nobody answered in time, or the job stopped before it
    for entry in label.get("invalid") or []:
        reason = "empty_answer" if "empty" in str(entry.get("reason", "")) else "malformed_answer"
        out.rejects.append(_reject(out.obj, reason, str(entry.get("workerId"))))
    if obj["task"] == "caption":
        _judge_caption(out, label, max_caption_chars)
    else:
        _judge_rating(out, label)
    out.workers = sorted({str(e.get("workerId")) for key in ("captions", "ratings", "invalid")
                          for e in label.get(key) or []})
    out.status = "labeled" if out.captions or out.ratings else "rejected"
    if out.status == "rejected":
        out.rejects.append(_reject(out.obj, "no_valid_answer", level="object"))
    return out


def parse_output_manifest(body: bytes | str | None) -> dict[str, dict[str, Any]]:
    """Output manifest lines by ``ogiri-id`` (unreadable lines are skipped: their objects count as expired)."""
    if not body:
        return {}
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    lines: dict[str, dict[str, Any]] = {}
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("ogiri-id") is not None:
            lines[str(line["ogiri-id"])] = line
    return lines


def judge_all(objects: Iterable[Mapping[str, Any]], lines: Mapping[str, Mapping[str, Any]], *,
              max_caption_chars: int) -> list[Outcome]:
    """One outcome per object, in order."""
    return [judge(o, lines.get(str(o["id"])), max_caption_chars=max_caption_chars) for o in objects]


def counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    """``{"in", "labeled", "rejected", "expired"}``; raises when the accounting does not hold."""
    tally = {k: sum(o.status == k for o in outcomes) for k in OUTCOMES}
    result = {"in": len(outcomes), **tally}
    if result["in"] != sum(tally.values()):
        raise AssertionError(f"labeling accounting broken: {result}")
    return result
