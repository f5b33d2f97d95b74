"""Issue 12: one deadline per fetch over every phase (DNS, connect, TLS, status line, headers, body),
a reject detail that names the phase, specific reasons (short reads, allow-listed host on another
port), ``s3://`` sources limited to the product's prefixes, and deterministic details."""

from __future__ import annotations

import socket
import time

import boto3
import pytest
from hostile_servers import hostile_server_fixture  # noqa: F401 - fixture
from moto import mock_aws

from ogiri.ingest.fetch import FetchPolicy, FetchRejected, SafeFetcher
from ogiri.ingest.images import ImageRejected, normalise_image
from ogiri.ingest.reasons import Reason

#: A generous bound for "the deadline held": far below the 30 s the hostile servers would hold a
#: fetch, far above the 1-1.5 s budgets used here (a loaded CI machine must not flake).
HELD = 6.0


def rejected(f: SafeFetcher, url: str) -> tuple[FetchRejected, float]:
    started = time.monotonic()
    with pytest.raises(FetchRejected) as err:
        f.fetch(url)
    return err.value, time.monotonic() - started


def policy(*allow: str, **kw) -> FetchPolicy:
    return FetchPolicy(private_host_allowlist=allow, **{"connect_timeout": 1.0, "read_timeout": 1.0, **kw})


def dripping(prefix: bytes, drip: bytes):
    """A route handler: write ``prefix``, then one byte of ``drip`` every 0.2 s for ``HELD + 4`` s
    (long enough to fail the bound when the deadline does not hold, short enough not to hang)."""

    def handler(h, owner):
        h.wfile.write(prefix)
        h.wfile.flush()
        i = 0
        stop_at = time.monotonic() + HELD + 4
        while not owner.stopping.wait(0.2) and time.monotonic() < stop_at:
            try:
                h.wfile.write(drip[i % len(drip) : i % len(drip) + 1])
                h.wfile.flush()
            except OSError:
                return
            i += 1

    return handler


@pytest.mark.parametrize(
    ("prefix", "drip", "phase"),
    [
        (b"", b"HTTP/1.1 200 OK", "status line"),
        (b"HTTP/1.1 200 OK\r\n", b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "headers"),
        (b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n\r\n", b"x", "body"),
    ],
)
def test_a_server_dripping_bytes_cannot_outlive_the_deadline(hostile_server, prefix, drip, phase):
    srv = hostile_server()
    srv.route("/drip", dripping(prefix, drip))
    err, took = rejected(SafeFetcher(policy(srv.host_port, total_timeout=1.5)), srv.url("/drip"))
    assert err.reason == Reason.TIMEOUT
    assert err.detail == f"fetch deadline of 1.5 s ran out during {phase}"
    assert took < HELD


def test_a_tls_handshake_that_never_answers_hits_the_deadline():
    with socket.socket() as listener:  # listens, never accepts: TCP connects, TLS never starts
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        f = SafeFetcher(policy(f"127.0.0.1:{port}", read_timeout=30.0, total_timeout=1.0))
        err, took = rejected(f, f"https://127.0.0.1:{port}/x.jpg")
    assert (err.reason, err.detail) == (Reason.TIMEOUT, "fetch deadline of 1 s ran out during tls")
    assert took < HELD


def test_slow_dns_is_bounded_by_the_same_deadline():
    def slow_resolver(host, port):
        time.sleep(5)
        return ["93.184.216.34"]

    f = SafeFetcher(policy(total_timeout=1.0), resolver=slow_resolver)
    err, took = rejected(f, "https://images.example.com/cat.jpg")
    assert (err.reason, err.detail) == (Reason.TIMEOUT, "fetch deadline of 1 s ran out during dns")
    assert took < 4.0


def test_a_silent_server_hits_the_read_timeout_and_the_detail_names_the_phase(hostile_server):
    srv = hostile_server()
    srv.stall("/stall", seconds=30)
    err, _ = rejected(SafeFetcher(policy(srv.host_port, read_timeout=0.5, total_timeout=10.0)), srv.url("/stall"))
    assert (err.reason, err.detail) == (Reason.TIMEOUT, f"{srv.url('/stall')}: no progress for 0.5 s during status line")


def test_a_body_shorter_than_its_content_length_is_a_short_read(hostile_server):
    srv = hostile_server()
    srv.short_body("/short.jpg", declared=1000, sent=100)
    err, _ = rejected(SafeFetcher(policy(srv.host_port)), srv.url("/short.jpg"))
    assert (err.reason, err.detail) == (Reason.SHORT_READ, "body ended after 100 of 1000 bytes (Content-Length)")


def test_loopback_on_a_port_not_allow_listed_names_the_port(hostile_server):
    srv = hostile_server()
    other = srv.port + 1 if srv.port < 65535 else srv.port - 1
    err, _ = rejected(SafeFetcher(policy(srv.host_port)), f"http://127.0.0.1:{other}/x.jpg")
    assert err.reason == Reason.HOST_REFUSED
    assert err.detail == (
        f"127.0.0.1:{other} -> 127.0.0.1 is loopback; port {other} is not allow-listed for 127.0.0.1 "
        f"(allow-listed: {srv.port})"
    )
    assert srv.connections == 0


def test_not_an_image_detail_is_stable_across_processes():
    with pytest.raises(ImageRejected) as err:
        normalise_image(b"<html>not an image</html>", max_pixels=10**6, max_side=64)
    assert err.value.reason == Reason.NOT_AN_IMAGE
    assert "0x" not in err.value.detail and "object" not in err.value.detail
    assert FetchRejected(Reason.FETCH_ERROR, "boom <_io.BytesIO object at 0x7f00deadbeef>").detail == (
        "boom <_io.BytesIO object>"
    )


# ------------------------------------------------------------------ s3:// sources


@pytest.fixture
def product_s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in ("ogiri-mlops", "someone-else"):
            client.create_bucket(Bucket=bucket)
        for key in ("landing/dt=2026-01-01/a.jpg", "images/ab/abc.jpg", "staging/ingest/chunk-0.jsonl",
                    "landing2/x.jpg"):
            client.put_object(Bucket="ogiri-mlops", Key=key, Body=b"bytes")
        client.put_object(Bucket="someone-else", Key="landing/a.jpg", Body=b"bytes")
        yield client


def test_default_s3_sources_are_the_product_buckets_landing_and_images(product_s3, monkeypatch):
    from ogiri.config import get_settings

    monkeypatch.setenv("OGIRI_BUCKET", "ogiri-mlops")
    monkeypatch.delenv("OGIRI_ALLOWED_S3_SOURCES", raising=False)
    f = SafeFetcher(FetchPolicy.from_settings(get_settings()), s3_client=product_s3)
    assert f.policy.allowed_s3_sources == ("ogiri-mlops/landing/", "ogiri-mlops/images/")
    assert f.fetch("s3://ogiri-mlops/landing/dt=2026-01-01/a.jpg").data == b"bytes"
    assert f.fetch("s3://ogiri-mlops/images/ab/abc.jpg").data == b"bytes"
    for url in (
        "s3://ogiri-mlops/staging/ingest/chunk-0.jsonl",
        "s3://ogiri-mlops/landing2/x.jpg",
        "s3://ogiri-mlops/landing/../staging/ingest/chunk-0.jsonl",
        "s3://someone-else/landing/a.jpg",
    ):
        err, _ = rejected(f, url)
        assert err.reason == Reason.S3_SOURCE_NOT_ALLOWED, url
        assert "ogiri-mlops/landing/, ogiri-mlops/images/" in err.detail


def test_s3_sources_come_from_the_setting(product_s3, monkeypatch):
    from ogiri.config import get_settings

    monkeypatch.setenv("OGIRI_ALLOWED_S3_SOURCES", "someone-else, ogiri-mlops/staging")
    f = SafeFetcher(FetchPolicy.from_settings(get_settings()), s3_client=product_s3)
    assert f.policy.allowed_s3_sources == ("someone-else/", "ogiri-mlops/staging/")
    assert f.fetch("s3://someone-else/landing/a.jpg").data == b"bytes"
    assert f.fetch("s3://ogiri-mlops/staging/ingest/chunk-0.jsonl").data == b"bytes"
    assert rejected(f, "s3://ogiri-mlops/landing/dt=2026-01-01/a.jpg")[0].reason == Reason.S3_SOURCE_NOT_ALLOWED


def test_fetch_timeouts_come_from_the_settings(monkeypatch):
    from ogiri.config import get_settings

    monkeypatch.setenv("OGIRI_FETCH_CONNECT_TIMEOUT_S", "2.5")
    monkeypatch.setenv("OGIRI_FETCH_READ_TIMEOUT_S", "4")
    monkeypatch.setenv("OGIRI_FETCH_TOTAL_TIMEOUT_S", "9")
    p = FetchPolicy.from_settings(get_settings())
    assert (p.connect_timeout, p.read_timeout, p.total_timeout) == (2.5, 4.0, 9.0)
    assert (FetchPolicy().connect_timeout, FetchPolicy().read_timeout, FetchPolicy().total_timeout) == (5, 15, 60)
