"""Issue 13: ``make up`` lands hostile rows next to the good ones, so the quarantine path is visible;
each is refused by the real parser or fetcher with its own reason."""

from __future__ import annotations

import csv
import io

from hostile_servers import hostile_server_fixture  # noqa: F401 - fixture

from ogiri.ingest.csv_rows import iter_rows
from ogiri.ingest.fetch import FetchPolicy, FetchRejected, SafeFetcher
from ogiri.ingest.reasons import Reason
from ogiri.ingest.rows import Reject, Row
from ogiri_local.up import hostile_rows


def test_make_up_hostile_rows_are_each_rejected(hostile_server):
    srv = hostile_server()
    buf = io.StringIO()
    csv.writer(buf).writerows(hostile_rows(srv.url("").rstrip("/")))
    items = list(iter_rows([buf.getvalue().encode()], max_caption_chars=280))
    fetcher = SafeFetcher(FetchPolicy(private_host_allowlist=(srv.host_port,), total_timeout=5))
    reasons = []
    for item in items:
        if isinstance(item, Reject):
            reasons.append(item.reason)
            continue
        assert isinstance(item, Row)
        try:
            fetcher.fetch(item.url)
        except FetchRejected as exc:
            reasons.append(exc.reason)
    assert reasons == [
        Reason.SCHEME_NOT_ALLOWED,
        Reason.HOST_REFUSED,
        Reason.HTTP_ERROR,
        Reason.EMPTY_CAPTION,
        Reason.CAPTION_CONTROL_CHARACTER,
    ]
