"""Parsing transform outputs into per-item results, captions.jsonl and the summary."""

from __future__ import annotations

import json

from ogiri.batch.results import ItemResult, from_jsonl, not_processed, parse_output, summarize, to_jsonl

META = {"set_name": "set-000", "model_name": "m1", "job_name": "job-1"}


def lines(*objs) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)


def test_captions_and_per_item_errors_matched_by_id():
    out = lines(
        {"id": "b", "error": "cannot identify image file"},
        {"id": "a", "caption": "猫が空を飛ぶ", "score": -1.5, "alternatives": []},
    )
    a, b = parse_output(["a", "b"], out, **META)
    assert a == ItemResult("a", "set-000", "m1", "job-1", caption="猫が空を飛ぶ", score=-1.5)
    assert b.error == "cannot identify image file" and b.caption is None and not b.ok and b.processed


def test_lines_without_ids_match_by_position_when_counts_agree():
    out = lines({"caption": "one", "score": 1}, {"caption": "two", "score": 2})
    assert [r.caption for r in parse_output(["x", "y"], out, **META)] == ["one", "two"]


def test_missing_and_unreadable_lines_become_failures():
    out = lines({"id": "a", "caption": "ok", "score": 0.1}) + "{garbage\n"
    a, b = parse_output(["a", "b"], out, source="part-0", **META)
    assert a.ok
    assert b.error == "no output line for this item in part-0"
    # Positional matching: an unreadable line is that item's failure.
    x, y = parse_output(["x", "y"], '{"caption": "fine"}\nnot json\n', **META)
    assert x.caption == "fine" and y.error.startswith("unreadable output line: not json")


def test_bad_output_values_are_failures_not_crashes():
    out = lines(
        {"id": "a", "score": 1}, {"id": "b", "caption": "c", "score": "high"}, {"id": "c", "caption": "c"}
    )
    a, b, c = parse_output(["a", "b", "c"], out, **META)
    assert a.error == "output line has no caption"
    assert "not a number" in b.error
    assert c.ok and c.score is None


def test_no_output_file_fails_every_item():
    results = parse_output(["a", "b"], None, source="s3://b/in/part-0.jsonl", **META)
    assert [r.error for r in results] == ["transform wrote no output for s3://b/in/part-0.jsonl"] * 2


def test_not_processed_items_are_marked_so_the_ledger_skips_them():
    (r,) = not_processed(["a"], reason="transform job j Failed: boom", **META)
    assert not r.ok and not r.processed and r.error == "transform job j Failed: boom"


def test_jsonl_round_trip_keeps_unicode():
    results = parse_output(["a"], lines({"id": "a", "caption": "布団が吹っ飛んだ", "score": 0.5}), **META)
    body = to_jsonl(results)
    assert "布団が吹っ飛んだ".encode() in body
    assert from_jsonl(body) == results


def test_summary_counts_per_set_and_lists_failures():
    results = parse_output(
        ["a", "b"], lines({"id": "a", "caption": "x"}, {"id": "b", "error": "line 2: bad image: x"}), **META
    )
    results += not_processed(
        ["c"], set_name="set-001", model_name="m1", job_name="j2", reason="transform job j2 Failed"
    )
    states = {
        "set-000": {"job_name": "job-1", "status": "Completed", "failure_reason": None},
        "set-001": {"job_name": "j2", "status": "Failed", "failure_reason": "boom"},
        "set-002": {"job_name": "j3", "status": "Completed", "failure_reason": None},
    }
    s = summarize(results, states)
    assert (s["items"], s["captioned"], s["failed"]) == (3, 1, 2)
    assert [(x["set"], x["items"], x["captioned"], x["failed"], x["status"]) for x in s["sets"]] == [
        ("set-000", 2, 1, 1, "Completed"),
        ("set-001", 1, 0, 1, "Failed"),
        ("set-002", 0, 0, 0, "Completed"),
    ]
    assert s["failed_jobs"] == ["set-001"]
    assert s["failure_reasons"] == {"bad image": 1, "transform job j2 Failed": 1}
    assert {"image_key": "b", "set": "set-000", "error": "line 2: bad image: x"} in s["failures"]
