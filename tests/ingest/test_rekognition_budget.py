"""``rekognition_tps`` is the run's DetectLabels budget, shared by the chunk tasks that run at once.

On Celery the chunk tasks of a run run side by side on several workers, each with its own
client-side limit; if every chunk took the whole budget, 4 chunks at once would call Rekognition at
4× the setting.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from ingest_dag_env import load_dag

RUN_TPS = 40.0


def _chunk_rates(account, site, caplog, rows: int, chunk_rows: int) -> list[float]:
    from ogiri.ingest.tasks import SETTING_DEFAULTS, ingest_chunk, plan_run, resolve_run
    from ogiri.runs import Run

    run = Run.for_key(f"ogiri_ingest:manual__budget{rows}", {"rekognition_tps": RUN_TPS, "chunk_rows": chunk_rows},
                      defaults=SETTING_DEFAULTS)
    run.logical_date = datetime(2026, 2, rows, 2, tzinfo=UTC)
    info = resolve_run(run)
    body = "".join(f"{site.url(i)},budget {i}\n" for i in range(rows))
    account.put_csv(f"landing/dt={info['partition_date']}/a.csv", "image_url,caption\n" + body)
    chunks = plan_run(run, info)
    # rows are placed by a hash of their URL (the site's port is in it), so a slot may stay empty
    assert 1 <= len(chunks) <= -(-rows // chunk_rows)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ogiri.ingest.tasks"):
        for chunk in chunks:
            counts = ingest_chunk(run, info, chunk)
            assert counts["accepted"] + counts["duplicates"] == chunk["rows"]
    found = [re.search(r"DetectLabels at most ([\d.]+)/s", r.getMessage()) for r in caplog.records]
    return [float(m.group(1)) for m in found if m]


def test_chunks_that_run_at_once_share_the_runs_budget(account, site, caplog):
    from ogiri.ingest.labels import MAX_CHUNKS_AT_ONCE

    # 24 rows in 12 slots: far more chunks than MAX_CHUNKS_AT_ONCE, whatever the URL hashes
    rates = _chunk_rates(account, site, caplog, rows=24, chunk_rows=2)
    assert MAX_CHUNKS_AT_ONCE < len(rates) <= 12
    # any MAX_CHUNKS_AT_ONCE of them together stay within the run's budget
    assert sum(sorted(rates)[-MAX_CHUNKS_AT_ONCE:]) <= RUN_TPS
    assert rates == [RUN_TPS / MAX_CHUNKS_AT_ONCE] * len(rates)


def test_a_run_of_fewer_chunks_gives_each_a_larger_share(account, site, caplog):
    rates = _chunk_rates(account, site, caplog, rows=4, chunk_rows=2)  # 1 or 2 chunks, by the URL hashes
    assert len(rates) in (1, 2) and rates == [RUN_TPS / len(rates)] * len(rates)
    assert _chunk_rates(account, site, caplog, rows=3, chunk_rows=5) == [RUN_TPS]


def test_the_dag_runs_at_most_as_many_chunks_at_once_as_the_budget_is_split_over():
    from ogiri.ingest.labels import MAX_CHUNKS_AT_ONCE

    assert load_dag().get_task("ingest_chunk").max_active_tis_per_dagrun == MAX_CHUNKS_AT_ONCE
