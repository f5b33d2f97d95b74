"""One chunk through fetch → normalise → store → label → record, against the emulator."""

from __future__ import annotations

import io
import shutil

import pytest
from ingest_dag_env import BUCKET, TABLE
from PIL import Image

from ogiri.ingest.fetch import FetchPolicy, SafeFetcher
from ogiri.ingest.labels import Labeler
from ogiri.ingest.pipeline import ChunkJob, process_chunk
from ogiri.ingest.reasons import Reason
from ogiri.ingest.rows import Reject, Row

JOB = ChunkJob(BUCKET, TABLE, "2026-01-01", "ogiri_ingest:2026-01-01", 40_000_000, 256, concurrency=4)


def _entries(rows):
    return [Row("landing/dt=2026-01-01/a.csv", n + 2, u, c) for n, (u, c) in enumerate(rows)]


def _run(account, site, entries):
    fetcher = SafeFetcher(
        FetchPolicy(private_host_allowlist=(site.server.allowlist_entry,), connect_timeout=2, read_timeout=5),
        s3_client=account.clients.s3,
    )
    labeler = Labeler(account.clients.rekognition, tps=0, min_confidence=50)
    result = process_chunk(
        entries, chunk=0, job=JOB, clients=account.clients, fetcher=fetcher, labeler=labeler
    )
    return result, labeler


@pytest.fixture
def extra_files(site):
    """A byte-identical copy of image 5 under another name, and a large greyscale PNG."""
    shutil.copy(site.root / site.images[5][0], site.root / "copy-of-5.jpg")
    buf = io.BytesIO()
    Image.new("L", (1200, 600), 128).save(buf, format="PNG")
    (site.root / "grey.png").write_bytes(buf.getvalue())
    return site


def test_chunk_counts_dedupes_and_rejects(account, extra_files):
    site = extra_files
    port = site.server.port
    rows = [
        (site.url(5), "赤い丸"),
        (f"{site.base_url}/copy-of-5.jpg", "赤い丸"),  # same bytes, same caption: duplicate
        (f"{site.base_url}/copy-of-5.jpg", "別の答え"),  # same image, new caption: accepted
        (site.url(6), "青い四角"),
        (site.url(6), "青い四角"),  # same row twice: duplicate
        (f"{site.base_url}/grey.png", "灰色"),  # accepted, converted and shrunk to 256 px
        (f"http://localhost:{port}/img/0000.jpg", "localhost is not on the allow-list"),
        ("http://10.1.2.3/x.jpg", "private address"),
        ("http://169.254.169.254/latest/meta-data/", "metadata service"),
        (f"{site.base_url}/nothing-here.jpg", "404"),
    ]
    before = len(site.server.requests)
    result, labeler = _run(account, site, _entries(rows))
    assert (result.rows_in, result.accepted, result.duplicates, result.rejected) == (10, 4, 2, 4)
    assert result.rejected_by_reason() == {"host_refused": 3, "http_error": 1}
    assert {r["line"] for r in result.rejects} == {8, 9, 10, 11}
    # The refused URLs never reached the server (its own request log).
    paths = site.server.requests[before:]
    assert "/img/0000.jpg" not in paths and "/nothing-here.jpg" in paths
    # 3 distinct images: each stored once and sent to Rekognition once.
    assert result.images_stored == 3 and labeler.calls == 3 and result.labels == 3
    images = account.objects("images/")
    assert len(images) == 3
    items = account.items()
    assert len(items) == 4
    grey = next(i for i in items if i["Caption"]["S"] == "灰色")
    assert (int(grey["Width"]["N"]), int(grey["Height"]["N"])) == (256, 128)
    s3_key = grey["S3Uri"]["S"].removeprefix(f"s3://{BUCKET}/")
    assert s3_key == f"images/{grey['ImageKey']['S'][:2]}/{grey['ImageKey']['S']}.jpg" and s3_key in images

    # The same chunk again (an Airflow retry): same counts, labels reused, nothing rewritten.
    objects, items_before = account.objects(), account.items()
    again, labeler2 = _run(account, site, _entries(rows))
    assert (again.accepted, again.duplicates, again.rejected) == (4, 2, 4)
    assert labeler2.calls == 0 and again.labels_reused == 3 and again.images_stored == 0
    assert account.objects() == objects and account.items() == items_before


def test_chunk_tasks_storing_one_image_at_once_write_it_exactly_once(account, site):
    """Six chunk tasks at once, each with its own URL for the same bytes: the conditional put lets
    exactly one of them create the content-addressed object; every row is accepted once."""
    import threading

    copies = []
    for n in range(6):
        shutil.copy(site.root / site.images[9][0], site.root / f"same-{n}.jpg")
        copies.append(f"{site.base_url}/same-{n}.jpg")
    results, start = {}, threading.Barrier(len(copies))

    def chunk(n: int) -> None:
        start.wait()
        results[n], _ = _run(account, site, _entries([(copies[n], f"答え{n}")]))

    threads = [threading.Thread(target=chunk, args=(n,)) for n in range(len(copies))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == list(range(6))
    assert sum(r.images_stored for r in results.values()) == 1
    assert [(r.accepted, r.duplicates, r.rejected) for r in results.values()] == [(1, 0, 0)] * 6
    assert len(account.objects("images/")) == 1
    assert len({i["ImageKey"]["S"] for i in account.items()}) == 1 and len(account.items()) == 6


def test_empty_chunk_and_parse_rejects_only(account, site):
    entries = [Reject("s.csv", 3, Reason.INVALID_UTF8, "bad byte", raw="\\xff")]
    result, labeler = _run(account, site, entries)
    assert (result.rows_in, result.rejected, result.accepted) == (1, 1, 0)
    assert result.rejects[0]["raw"] == "\\xff" and labeler.calls == 0
    empty, _ = _run(account, site, [])
    assert empty.rows_in == 0 and empty.rejected == 0


def test_reconcile_publishes_even_when_staging_cleanup_fails(account, site):
    """Staging is scratch: a DeleteObjects failure after the rejects file and ledger row are written is
    logged, not raised (a retry would find its chunk results half deleted)."""
    from datetime import UTC, datetime

    from ogiri.ingest.plan import staging_prefix
    from ogiri.ingest.tasks import SETTING_DEFAULTS, ingest_chunk, plan_run, reconcile_run, resolve_run
    from ogiri.ledger import Ledger
    from ogiri.runs import Run

    run = Run.for_key("ogiri_ingest:manual__t", {}, defaults=SETTING_DEFAULTS)
    run.logical_date = datetime(2026, 1, 3, 2, tzinfo=UTC)
    info = resolve_run(run)
    account.put_csv(f"landing/dt={info['partition_date']}/a.csv",
                    f"image_url,caption\n{site.url(1)},赤い丸\nnot-a-url,x\n")
    chunks = plan_run(run, info)
    for chunk in chunks:
        ingest_chunk(run, info, chunk)
    account.emulator.inject(service="s3", operation="DeleteObjects", error="AccessDenied", status=403)
    summary = reconcile_run(run, info, chunks)
    assert (summary["rows_in"], summary["accepted"], summary["rejected"]) == (2, 1, 1)
    assert account.objects(staging_prefix(info["partition_date"], info["run_name"]))  # left behind
    assert account.read_jsonl(f"rejects/dt={info['partition_date']}/{info['run_name']}.jsonl")
    (row,) = Ledger.from_connection().query("select_ingest_runs", {"partition_date": info["partition_date"]})
    assert row["run_key"] == info["run_key"] and row["status"] == "success" and row["accepted"] == 1
