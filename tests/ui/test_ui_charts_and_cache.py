"""The Ogiri pages' building blocks without a server: the SVG charts and the short-lived cache."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from ogiri.ui import svg
from ogiri.ui.data import TTLCache
from ogiri.ui.pages import _length_histogram

NS = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # well-formed XML, or this raises


def test_stacked_bars_draw_one_segment_per_nonzero_value_with_theme_colours():
    root = _parse(svg.bars("rows", ["d1", "d2"], [("accepted", [3, 0]), ("rejected", [1, 2])]))
    bars = root.findall(f"{NS}rect[@class='bar']")
    assert len(bars) == 3  # the zero segment is not drawn
    assert {b.get("fill") for b in bars} == {"var(--c1)", "var(--c2)"}
    assert all(float(b.get("height")) > 0 for b in bars)
    # d1's two segments stack: the upper one ends where the lower one starts.
    lower, upper = bars[0], bars[1]
    assert float(upper.get("y")) + float(upper.get("height")) == pytest.approx(float(lower.get("y")))


def test_labels_are_escaped_in_every_chart():
    evil = "<script>alert(1)</script>"
    for markup in (svg.bars(evil, [evil], [(evil, [1])]), svg.lines(evil, [evil], [(evil, [1.0])]),
                   svg.timeline(evil, [{"when": evil, "action": "create", "status": "succeeded", "model": evil}])):
        _parse(markup)
        assert "<script>" not in markup


def test_lines_skip_missing_values_and_the_timeline_marks_the_champion():
    root = _parse(svg.lines("m", ["a", "b", "c"], [("cider", [0.1, None, 0.3]), ("bleu", [None, None, None])]))
    assert len(root.findall(f"{NS}circle")) == 2
    assert len(root.findall(f"{NS}polyline")) == 1
    events = [{"when": "t1", "action": "create", "status": "succeeded", "model": "m1", "champion": False},
              {"when": "t2", "action": "update", "status": "failed", "model": "m2", "champion": False},
              {"when": "t3", "action": "rollback", "status": "succeeded", "model": "m1", "champion": True}]
    markup = svg.timeline("deployments", events)
    assert markup.count(">champion</text>") == 1
    assert re.search(r'fill="none" stroke="var\(--c2\)"', markup)  # the failed update is hollow


def test_caption_lengths_are_counted_in_characters():
    labels, counts = _length_histogram(["あいう", "あいうえお", "あ"], bins=16)
    assert labels == ["1", "2", "3", "4", "5"] and counts == [1, 0, 1, 0, 1]


def test_the_cache_keeps_answers_for_its_ttl_and_never_keeps_errors():
    now = [0.0]
    cache = TTLCache(30, clock=lambda: now[0])
    calls = []
    assert cache.get(("k",), lambda: calls.append(1) or "v1") == "v1"
    assert cache.get(("k",), lambda: calls.append(1) or "v2") == "v1"
    now[0] = 31
    assert cache.get(("k",), lambda: calls.append(1) or "v3") == "v3"
    assert len(calls) == 2

    def boom():
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        cache.get(("e",), boom)
    assert cache.get(("e",), lambda: "back") == "back"


def test_drift_draws_the_threshold_and_rings_the_windows_over_it():
    root = _parse(svg.drift("psi", ["a", "b", "c", "d"], [0.1, 0.4, None, 0.2], [0.25, 0.25, 0.25, 0.25],
                            [False, True, False, False]))
    threshold = root.findall(f"{NS}polyline[@class='threshold']")
    assert len(threshold) == 1 and threshold[0].get("stroke-dasharray")
    ys = {p.split(",")[1] for p in threshold[0].get("points").split()}
    assert len(ys) == 1  # a constant threshold is one flat line
    points = root.findall(f"{NS}circle[@class='point']")
    violations = root.findall(f"{NS}circle[@class='point violation']")
    assert len(points) == 2 and len(violations) == 1  # the window without a score draws nothing
    assert float(violations[0].get("cy")) < float(ys.pop())  # above the threshold line (SVG y grows down)
    assert float(violations[0].get("r")) > float(points[0].get("r"))
    evil = "<script>alert(1)</script>"
    markup = svg.drift(evil, [evil], [1.0], [None], [True])
    _parse(markup)
    assert "<script>" not in markup
