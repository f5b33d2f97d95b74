"""One AWS connection lookup per task: every client of a ``Run`` shares it (emulator wire)."""

from __future__ import annotations

from botocore.config import Config


def test_a_task_logs_its_aws_connection_once_and_keeps_each_clients_config(aws, capfd):
    from ogiri.aws import client_config
    from ogiri.runs import Run

    capfd.readouterr()
    run = Run.for_key("ogiri_ingest:test")
    s3 = run.client("s3")
    ddb = run.client("dynamodb")
    labels = run.client("rekognition", config=client_config(pool=24, attempts=2))
    s3.list_buckets()
    ddb.list_tables()
    out, err = capfd.readouterr()
    lines = [ln for ln in (out + err).splitlines() if "credentials retrieved" in ln]
    assert len(lines) == 1, lines  # was one per client (3 here)
    # The shared lookup must not lose a client's own settings, nor the connection's endpoint.
    assert labels.meta.config.max_pool_connections == 24
    assert labels.meta.config.retries["total_max_attempts"] == 2
    assert s3.meta.endpoint_url == ddb.meta.endpoint_url == labels.meta.endpoint_url == aws.url
    assert isinstance(s3.meta.config, Config) and run.client("s3") is s3
