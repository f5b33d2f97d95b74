"""Partition/run naming, chunk staging and row accounting."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ogiri.ingest.accounting import (
    AccountingError,
    ChunkResult,
    rejects_jsonl,
    rejects_key,
    summarize,
)
from ogiri.ingest.plan import (
    chunk_of,
    landing_glob,
    list_landing_csvs,
    partition_date_for,
    read_chunk,
    run_name,
    stage_chunks,
    staging_prefix,
)
from ogiri.ingest.reasons import Reason
from ogiri.ingest.rows import Reject, Row


def test_partition_is_the_utc_day_before_the_logical_date():
    assert partition_date_for(datetime(2026, 1, 2, 2, 0, tzinfo=UTC)) == "2026-01-01"
    assert partition_date_for(datetime(2026, 3, 1, 0, 30, tzinfo=UTC)) == "2026-02-28"
    tokyo = timezone(timedelta(hours=9))
    assert (
        partition_date_for(datetime(2026, 1, 2, 8, 0, tzinfo=tokyo)) == "2025-12-31"
    )  # 23:00 UTC on the 1st
    assert partition_date_for(None, datetime(2026, 5, 5, tzinfo=UTC)) == "2026-05-04"
    assert partition_date_for(datetime(2026, 1, 2, tzinfo=UTC), override=" 2025-12-24 ") == "2025-12-24"
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        partition_date_for(None, override="24/12/2025")
    with pytest.raises(ValueError):
        partition_date_for(None, override="2026-02-30")
    with pytest.raises(ValueError, match="logical date"):
        partition_date_for(None, None)


def test_names_and_keys():
    assert run_name("ogiri_ingest:2026-01-01") == "ogiri_ingest_2026-01-01"
    assert run_name("a b/../c") == "a_b_.._c"
    assert landing_glob("bkt", "2026-01-01") == "s3://bkt/landing/dt=2026-01-01/*.csv"
    assert rejects_key("2026-01-01", "r") == "rejects/dt=2026-01-01/r.jsonl"
    assert staging_prefix("2026-01-01", "r") == "staging/ingest/dt=2026-01-01/r/"


def _result(chunk, rows_in, accepted, duplicates, reasons=()):
    r = ChunkResult(chunk=chunk, rows_in=rows_in, accepted=accepted, duplicates=duplicates)
    r.rejects = [Reject(f"s{chunk}.csv", 10 - n, Reason(reason)).as_dict() for n, reason in enumerate(reasons)]
    return r


def test_summarize_adds_up_and_counts_reasons():
    results = [
        _result(0, 5, 3, 1, ["http_error"]),
        _result(1, 4, 1, 0, ["timeout", "http_error", "too_large"]),
    ]
    s = summarize("2026-01-01", results, elapsed_s=1.23456)
    assert (s.rows_in, s.accepted, s.duplicates, s.rejected, s.chunks) == (9, 4, 1, 4, 2)
    assert s.rejected_by_reason == {"http_error": 2, "timeout": 1, "too_large": 1}
    assert s.elapsed_s == 1.235
    assert any("rows in" in line for line in s.log_lines())


def test_a_lost_row_fails_accounting():
    with pytest.raises(AccountingError, match="rows_in=5 but accepted=3"):
        summarize("2026-01-01", [_result(0, 5, 3, 1)])
    with pytest.raises(AccountingError):
        _result(0, 1, 1, 1).check()


def test_rejects_file_is_sorted_clipped_and_stable():
    huge = "あ" * 1_000_000
    a = _result(1, 2, 0, 0, ["empty_caption", "caption_too_long"])
    a.rejects[1] = Reject(
        "s1.csv", 3, Reason.CAPTION_TOO_LONG, "x", caption=huge, image_url="http://h/" + "p" * 5000
    ).as_dict()
    b = _result(0, 1, 0, 0, ["http_error"])
    body = rejects_jsonl([a, b])
    assert body == rejects_jsonl([b, a])
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert [(r["source"], r["line"]) for r in lines] == [("s0.csv", 10), ("s1.csv", 3), ("s1.csv", 10)]
    long = lines[1]
    assert len(long["caption"]) < 400 and long["caption"].endswith("more chars]")
    assert len(long["image_url"]) < 2200
    assert len(body) < 10_000


def test_chunk_result_round_trips():
    r = _result(3, 2, 1, 0, ["timeout"])
    r.labels, r.bytes_fetched = 4, 99
    assert ChunkResult.from_json(r.to_json()) == r
    counts = r.counts()
    assert (
        counts["rejected"] == 1 and counts["rejected_by_reason"] == {"timeout": 1} and "rejects" not in counts
    )


def test_stage_chunks_groups_rows_by_url_and_is_deterministic(account):
    rows = [f"http://img.example/{i % 7}.jpg,キャプション{i}" for i in range(40)]
    text = (
        "\ufeffimage_url,caption\n"
        + "\n".join(rows)
        + '\n"http://x/y.jpg","改行\nと,カンマ"\nonly-one-column\n'
    )
    account.put_csv("landing/dt=2026-01-01/a.csv", text)
    account.put_csv("landing/dt=2026-01-01/sub/b.CSV", "http://img.example/0.jpg,another\n")
    account.put_csv("landing/dt=2026-01-01/notes.txt", "ignored")
    account.put_csv("landing/dt=2026-01-02/c.csv", "http://other/1.jpg,other day\n")
    assert list_landing_csvs(account.clients.s3, account.bucket, "2026-01-01") == [
        "landing/dt=2026-01-01/a.csv",
        "landing/dt=2026-01-01/sub/b.CSV",
    ]
    refs = stage_chunks(
        account.clients.s3, account.bucket, "2026-01-01", "r1", chunk_rows=10, max_caption_chars=280
    )
    assert sum(r.rows for r in refs) == 43 and 1 < len(refs) <= 5
    assert [r.index for r in refs] == list(range(len(refs)))
    entries = {r.index: read_chunk(account.clients.s3, account.bucket, r.key) for r in refs}
    by_url: dict[str, set[int]] = {}
    for idx, chunk in entries.items():
        for e in chunk:
            if isinstance(e, Row):
                by_url.setdefault(e.url, set()).add(idx)
        lines = [(e.source, e.line) for e in chunk]
        assert lines == sorted(lines)  # source order kept inside a chunk
    assert all(len(chunks) == 1 for chunks in by_url.values())  # one URL, one chunk
    all_entries = [e for c in entries.values() for e in c]
    # The quoted newline kept the record whole; the caption policy then refuses the line break.
    assert sorted(e.reason for e in all_entries if isinstance(e, Reject)) == ["caption_control_character", "column_count"]

    before = account.objects("staging/")
    again = stage_chunks(
        account.clients.s3, account.bucket, "2026-01-01", "r1", chunk_rows=10, max_caption_chars=280
    )
    assert again == refs and account.objects("staging/") == before  # byte-identical, not rewritten


def test_stage_chunks_open_files_do_not_grow_with_the_number_of_chunks(account):
    """A partition of more chunks than the process may open files: staging still succeeds (it used
    to hold every chunk's part file open at once and failed with EMFILE)."""
    import os
    import resource

    n = 300
    account.put_csv("landing/dt=2026-03-01/many.csv",
                    "".join(f"http://img.example/{i}.jpg,答え{i}\n" for i in range(n)))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    open_fds = {int(fd) for fd in os.listdir("/proc/self/fd")}
    limit = 290  # the lowest limit leaving 290 free descriptors: < n chunks, > MAX_OPEN_PARTS
    while limit - sum(fd < limit for fd in open_fds) < 290:
        limit += 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        refs = stage_chunks(
            account.clients.s3, account.bucket, "2026-03-01", "many", chunk_rows=1, max_caption_chars=280
        )
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert len(refs) < n and sum(r.rows for r in refs) == n  # hashing leaves some of n chunks empty
    staged = [e for r in refs for e in read_chunk(account.clients.s3, account.bucket, r.key)]
    assert sorted(e.line for e in staged) == list(range(1, n + 1))
    assert all(chunk_of({"url": e.url}, n) == chunk_of({"url": staged[0].url}, n)
               for e in read_chunk(account.clients.s3, account.bucket, refs[0].key))


def test_stage_chunks_of_an_empty_partition_gives_one_empty_chunk(account):
    account.put_csv("landing/dt=2026-02-01/empty.csv", "image_url,caption\n")
    refs = stage_chunks(
        account.clients.s3, account.bucket, "2026-02-01", "r", chunk_rows=5, max_caption_chars=10
    )
    assert [(r.index, r.rows) for r in refs] == [(0, 0)]
    assert read_chunk(account.clients.s3, account.bucket, refs[0].key) == []


def test_chunk_of_is_stable_and_in_range():
    e = {"url": "http://a/b.jpg", "source": "s", "line": 1}
    assert chunk_of(e, 7) == chunk_of(dict(e, line=99), 7)
    assert all(0 <= chunk_of({"source": "s", "line": n}, 3) < 3 for n in range(50))
