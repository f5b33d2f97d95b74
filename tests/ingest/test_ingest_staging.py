"""Staged chunks round-trip any Unicode caption (issue 12: U+2028/U+0085 crashed a chunk)."""

import json
import sys

LINE_BREAKS = [chr(c) for c in range(sys.maxunicode + 1) if len(("a" + chr(c) + "b").splitlines()) > 1]


def test_read_chunk_round_trips_every_line_breaking_code_point(account):
    from ogiri.ingest.plan import read_chunk
    from ogiri.ingest.rows import Row, to_staged

    assert "\u2028" in LINE_BREAKS and "\x85" in LINE_BREAKS
    rows = [Row("landing/x.csv", i, f"https://e.test/{i}.jpg", f"a{ch}b") for i, ch in enumerate(LINE_BREAKS)]
    body = b"".join(json.dumps(to_staged(r), ensure_ascii=False).encode("utf-8") + b"\n" for r in rows)
    account.clients.s3.put_object(Bucket=account.bucket, Key="staging/t/chunk.jsonl", Body=body)
    assert read_chunk(account.clients.s3, account.bucket, "staging/t/chunk.jsonl") == rows
