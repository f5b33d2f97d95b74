"""The hostile-URL corpus against the SSRF-safe fetcher.

Local servers bind 127.0.0.1 and are reachable only through the allow-list entry naming their exact
``127.0.0.1:<port>``. Every refusal is checked against the servers' own connection logs: a refused
address must never see a TCP connection, not even after a redirect from an allowed host.
"""

from __future__ import annotations

import io
import socket
import ssl
import threading
import time

import boto3
import pytest
from hostile_servers import HostileServer, hostile_server_fixture, make_test_ca  # noqa: F401 - fixture
from moto import mock_aws
from PIL import Image

from ogiri.ingest.fetch import (
    Fetched,
    FetchPolicy,
    FetchRejected,
    SafeFetcher,
    fetch_many,
    parse_numeric_host,
    validate_url,
)
from ogiri.ingest.images import ImageRejected, normalise_image
from ogiri.ingest.reasons import Reason

FAST = {"connect_timeout": 1.0, "read_timeout": 1.0, "total_timeout": 5.0}


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"DNS must not be asked about {host}")


def fetcher(*allow: str, resolver=no_dns, **policy) -> SafeFetcher:
    return SafeFetcher(FetchPolicy(private_host_allowlist=allow, **{**FAST, **policy}), resolver=resolver)


def rejected(f: SafeFetcher, url: str) -> FetchRejected:
    with pytest.raises(FetchRejected) as err:
        f.fetch(url)
    return err.value


@pytest.fixture
def server(hostile_server) -> HostileServer:
    srv = hostile_server()
    srv.add("/cat.jpg", jpeg_bytes(), "image/jpeg")
    return srv


# ---------------------------------------------------------------- schemes and syntax


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "ftp://example.com/a.jpg",
        "data:image/png;base64,AA",
    ],
)
def test_disallowed_schemes(url):
    assert rejected(fetcher(), url).reason == Reason.SCHEME_NOT_ALLOWED


@pytest.mark.parametrize(
    "url", ["", "http://", "http://exa mple.com/", "http://a.com/\r\nX: y", "//a.com/x.jpg"]
)
def test_malformed_urls(url):
    assert rejected(fetcher(), url).reason == Reason.MALFORMED_URL


def test_validate_url_strips_and_keeps_good_urls():
    assert validate_url("  https://ex.com/a.jpg?x=1 ") == "https://ex.com/a.jpg?x=1"
    assert validate_url("s3://my-bucket/a/b%20c.jpg?v=1") == "s3://my-bucket/a/b%20c.jpg?v=1"
    assert validate_url("HTTPS://例え.jp/猫.jpg") == "HTTPS://例え.jp/猫.jpg"


@pytest.mark.parametrize(
    ("host", "ip"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("10.0.258", "10.0.1.2"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("images.example.com", None),
        ("1.2.3.4.5", None),
        ("08.1.1.1", None),
    ],
)
def test_numeric_host_forms_match_inet_aton(host, ip):
    parsed = parse_numeric_host(host)
    assert (str(parsed) if parsed else None) == ip
    if ip and ":" not in ip:
        assert socket.inet_ntoa(socket.inet_aton(host)) == ip  # same reading as the C library


# ---------------------------------------------------------------- refused addresses


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f000001",
        "0x7f.0.0.1",
        "127.1",
        "0.0.0.0",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
    ],
)
def test_loopback_spellings_are_refused_without_connecting(server, host):
    err = rejected(fetcher(), server.url("/cat.jpg", host=host))
    assert err.reason == Reason.HOST_REFUSED, err.detail
    assert server.connections == 0


def test_localhost_name_is_refused_without_connecting(server):
    err = rejected(SafeFetcher(FetchPolicy(**FAST)), server.url("/cat.jpg", host="localhost"))
    assert err.reason == Reason.HOST_REFUSED
    assert server.connections == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://10.0.0.1/a.jpg",
        "http://172.16.5.4/a.jpg",
        "http://192.168.1.1/a.jpg",
        "http://100.64.0.1/a.jpg",
        "http://224.0.0.1/a.jpg",
        "http://240.0.0.1/a.jpg",
        "http://255.255.255.255/a.jpg",
        "https://[fe80::1%25eth0]/a.jpg",
        "http://[fc00::1]/a.jpg",
        "http://[ff02::1]/a.jpg",
        "http://[::]/a.jpg",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[2002:a00:1::]/",  # 6to4 of 10.0.0.1
    ],
)
def test_private_and_special_addresses_are_refused(url):
    assert rejected(fetcher(), url).reason == Reason.HOST_REFUSED


def test_hostname_resolving_to_private_is_refused():
    calls = []

    def resolver(host, port):
        calls.append(host)
        return ["10.1.2.3"]

    err = rejected(fetcher(resolver=resolver), "https://images.evil.test/cat.jpg")
    assert err.reason == Reason.HOST_REFUSED and "10.1.2.3" in err.detail
    assert calls == ["images.evil.test"]


def test_any_private_address_among_several_refuses(server):
    err = rejected(
        fetcher(resolver=lambda h, p: ["93.184.216.34", "127.0.0.1"]),
        server.url("/cat.jpg", host="mixed.test"),
    )
    assert err.reason == Reason.HOST_REFUSED
    assert server.connections == 0


@pytest.mark.parametrize("failure", [socket.gaierror(-2, "Name or service not known"), []])
def test_dns_failure(failure):
    def resolver(host, port):
        if isinstance(failure, Exception):
            raise failure
        return failure

    assert rejected(fetcher(resolver=resolver), "https://nowhere.test/a.jpg").reason == Reason.DNS_FAILURE


def test_allow_list_is_exact_host_and_port(server, hostile_server):
    other = hostile_server()
    other.add("/cat.jpg", b"x")
    f = fetcher(server.host_port)
    assert f.fetch(server.url("/cat.jpg")).data == jpeg_bytes()
    # The same address spelt differently, or another port, is not allow-listed.
    assert rejected(f, server.url("/cat.jpg", host="2130706433")).reason == Reason.HOST_REFUSED
    assert rejected(f, other.url("/cat.jpg")).reason == Reason.HOST_REFUSED
    assert other.connections == 0
    assert server.connections == 1


# ---------------------------------------------------------------- redirects


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{other}/cat.jpg",
        "http://0x7f000001:{other}/cat.jpg",
        "http://[::ffff:127.0.0.1]:{other}/cat.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://internal.test:{other}/cat.jpg",
    ],
)
def test_redirect_to_private_address_is_refused(server, hostile_server, target):
    other = hostile_server()
    other.add("/cat.jpg", jpeg_bytes(), "image/jpeg")
    server.redirect("/hop", target.format(other=other.port))
    f = fetcher(server.host_port, resolver=lambda h, p: ["127.0.0.1"])
    err = rejected(f, server.url("/hop"))
    assert err.reason == Reason.HOST_REFUSED, err.detail
    assert server.paths == ["/hop"]
    assert other.connections == 0


@pytest.mark.parametrize(
    ("target", "reason"),
    [("file:///etc/passwd", Reason.SCHEME_NOT_ALLOWED), ("s3://bucket/key.jpg", Reason.SCHEME_NOT_ALLOWED)],
)
def test_redirect_to_other_schemes_is_refused(server, target, reason):
    server.redirect("/hop", target)
    assert rejected(fetcher(server.host_port), server.url("/hop")).reason == reason


def test_redirects_are_followed_relative_and_absolute(server):
    server.redirect("/a", "/b", status=301)
    server.redirect("/b", server.url("/c"), status=307)
    server.redirect("/c", "cat.jpg", status=308)
    got = fetcher(server.host_port, max_redirects=3).fetch(server.url("/a"))
    assert got.data == jpeg_bytes() and got.final_url == server.url("/cat.jpg")
    assert got.content_type == "image/jpeg"
    assert server.paths == ["/a", "/b", "/c", "/cat.jpg"]


def test_redirect_loop_is_detected(server):
    server.redirect("/a", "/b")
    server.redirect("/b", "/a")
    server.redirect("/self", "/self")
    f = fetcher(server.host_port, max_redirects=10)
    assert rejected(f, server.url("/a")).reason == Reason.REDIRECT_LOOP
    assert rejected(f, server.url("/self")).reason == Reason.REDIRECT_LOOP
    assert server.paths == ["/a", "/b", "/self"]


def test_too_many_redirects(server):
    for i in range(10):
        server.redirect(f"/r{i}", f"/r{i + 1}")
    err = rejected(fetcher(server.host_port, max_redirects=3), server.url("/r0"))
    assert err.reason == Reason.TOO_MANY_REDIRECTS
    assert server.paths == ["/r0", "/r1", "/r2", "/r3"]


# ---------------------------------------------------------------- responses


@pytest.mark.parametrize("status", [404, 500, 204])
def test_http_errors(server, status):
    server.add("/x", b"nope", "text/plain", status=status)
    err = rejected(fetcher(server.host_port), server.url("/x"))
    assert err.reason == Reason.HTTP_ERROR and f"HTTP {status}" in err.detail


@pytest.mark.parametrize("after_headers", [False, True])
def test_stalling_server_times_out(server, after_headers):
    server.stall("/stall", seconds=30, after_headers=after_headers)
    err = rejected(fetcher(server.host_port, read_timeout=0.5), server.url("/stall"))
    assert err.reason == Reason.TIMEOUT


def test_slow_drip_hits_the_total_deadline(server):
    def drip(h, owner):
        h.send_response(200)
        h.end_headers()
        while not owner.stopping.wait(0.2):
            h.wfile.write(b"x")
            h.wfile.flush()

    server.route("/drip", drip)
    err = rejected(fetcher(server.host_port, read_timeout=1.0, total_timeout=1.0), server.url("/drip"))
    assert err.reason == Reason.TIMEOUT


@pytest.mark.parametrize("declare_length", [False, True])
def test_fifty_megabyte_body_is_aborted_early(server, declare_length):
    total = 50 * 1024 * 1024
    server.stream("/big.jpg", total, declare_length=declare_length)
    err = rejected(fetcher(server.host_port, max_bytes=1024 * 1024), server.url("/big.jpg"))
    assert err.reason == Reason.TOO_LARGE
    assert server.stream_finished.wait(10), "server still streaming after the fetcher gave up"
    # Socket buffers absorb a few MB at most; the body was not read to the end.
    assert server.bytes_streamed < total // 2, server.bytes_streamed


def test_connection_refused(server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        err = rejected(fetcher(f"127.0.0.1:{port}"), f"http://127.0.0.1:{port}/x.jpg")
    assert err.reason == Reason.CONNECTION_ERROR


def test_html_page_is_fetched_but_not_an_image(server):
    server.add("/page", b"<!doctype html><title>hi</title>", "text/html; charset=utf-8")
    got = fetcher(server.host_port).fetch(server.url("/page"))
    assert got.content_type.startswith("text/html")
    with pytest.raises(ImageRejected) as err:
        normalise_image(got.data, max_pixels=1_000_000, max_side=256)
    assert err.value.reason == Reason.NOT_AN_IMAGE


def test_request_is_polite_and_identifies_itself(server):
    fetcher(server.host_port).fetch(server.url("/cat.jpg?size=large"))
    (req,) = server.requests
    assert req.path == "/cat.jpg?size=large"
    assert req.headers["Host"] == server.host_port
    assert req.headers["User-Agent"].startswith("ogiri-ingest/")
    assert req.headers["Accept-Encoding"] == "identity"


# ---------------------------------------------------------------- pinned address (no second lookup)


def test_connects_to_the_checked_address_with_the_hostname_in_host_header(server):
    calls = []

    def resolver(host, port):  # a rebinding DNS: the checked answer first, another one afterwards
        calls.append((host, port))
        return ["127.0.0.1"] if len(calls) == 1 else ["10.9.9.9"]

    # "img.test" cannot be resolved by the system either, so success proves the pinned address was used.
    got = fetcher(f"img.test:{server.port}", resolver=resolver).fetch(server.url("/cat.jpg", host="img.test"))
    assert got.data == jpeg_bytes()
    assert calls == [("img.test", server.port)]
    assert server.requests[0].headers["Host"] == f"img.test:{server.port}"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return make_test_ca(tmp_path_factory.mktemp("ca"), ["img.test"])


def test_https_verifies_certificate_for_the_hostname_over_the_pinned_ip(hostile_server, tls_files):
    ca, cert, key = tls_files
    srv = hostile_server(tls=(cert, key))
    srv.add("/cat.jpg", jpeg_bytes(), "image/jpeg")
    trusted = ssl.create_default_context(cafile=str(ca))
    policy = FetchPolicy(private_host_allowlist=(f"img.test:{srv.port}", f"evil.test:{srv.port}"), **FAST)
    f = SafeFetcher(policy, resolver=lambda h, p: ["127.0.0.1"], ssl_context=trusted)
    assert f.fetch(srv.url("/cat.jpg", host="img.test")).data == jpeg_bytes()
    # The certificate does not name evil.test: refused even though the address is the same.
    assert rejected(f, srv.url("/cat.jpg", host="evil.test")).reason == Reason.TLS_ERROR
    # An untrusted CA is refused.
    untrusting = SafeFetcher(policy, resolver=lambda h, p: ["127.0.0.1"])
    assert rejected(untrusting, srv.url("/cat.jpg", host="img.test")).reason == Reason.TLS_ERROR
    assert srv.paths == ["/cat.jpg"]


# ---------------------------------------------------------------- s3


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="ogiri-landing")
        client.put_object(
            Bucket="ogiri-landing", Key="pics/cat.jpg", Body=jpeg_bytes(), ContentType="image/jpeg"
        )
        client.put_object(Bucket="ogiri-landing", Key="pics/big.bin", Body=b"\0" * 5000)
        yield client


def test_s3_fetch(s3):
    f = SafeFetcher(FetchPolicy(max_bytes=4096, allowed_s3_sources=("ogiri-landing", "no-such-bucket")), s3_client=s3)
    got = f.fetch("s3://ogiri-landing/pics/cat.jpg")
    assert got == Fetched(jpeg_bytes(), "s3://ogiri-landing/pics/cat.jpg", "image/jpeg")
    assert rejected(f, "s3://ogiri-landing/pics/missing.jpg").reason == Reason.S3_NOT_FOUND
    assert rejected(f, "s3://no-such-bucket/pics/cat.jpg").reason == Reason.S3_NOT_FOUND
    assert rejected(f, "s3://ogiri-landing/pics/big.bin").reason == Reason.TOO_LARGE
    fenced = SafeFetcher(FetchPolicy(allowed_s3_sources=("ogiri-landing/pics/",)), s3_client=s3)
    assert fenced.fetch("s3://ogiri-landing/pics/cat.jpg").data == jpeg_bytes()
    assert rejected(fenced, "s3://other-bucket/pics/cat.jpg").reason == Reason.S3_SOURCE_NOT_ALLOWED


def test_s3_without_client_or_when_not_allowed():
    assert rejected(SafeFetcher(), "s3://ogiri-landing/a.jpg").reason == Reason.S3_SOURCE_NOT_ALLOWED
    no_client = SafeFetcher(FetchPolicy(allowed_s3_sources=("ogiri-landing",)))
    assert rejected(no_client, "s3://ogiri-landing/a.jpg").reason == Reason.SCHEME_NOT_ALLOWED
    narrow = SafeFetcher(FetchPolicy(allowed_schemes=("https",)))
    assert rejected(narrow, "s3://ogiri-landing/a.jpg").reason == Reason.SCHEME_NOT_ALLOWED
    assert rejected(narrow, "http://example.com/a.jpg").reason == Reason.SCHEME_NOT_ALLOWED


# ---------------------------------------------------------------- fetch_many


def test_fetch_many_returns_one_result_per_url_and_never_raises(server):
    server.add("/404", b"", status=404)
    urls = [
        server.url("/cat.jpg"),
        "file:///etc/passwd",
        server.url("/404"),
        "http://169.254.169.254/latest/meta-data/",
        "https://boom.test/a.jpg",
        server.url("/cat.jpg"),
    ]

    def resolver(host, port):
        raise RuntimeError("resolver bug")  # not an OSError: an unexpected failure

    results = list(fetch_many(urls, fetcher(server.host_port, resolver=resolver), max_workers=3))
    assert sorted(u for u, _ in results) == sorted(urls)
    outcome = {}
    for url, res in results:
        outcome.setdefault(url, []).append(res if isinstance(res, Fetched) else res.reason)
    assert all(isinstance(r, Fetched) for r in outcome[server.url("/cat.jpg")])
    assert len(outcome[server.url("/cat.jpg")]) == 2
    assert outcome["file:///etc/passwd"] == [Reason.SCHEME_NOT_ALLOWED]
    assert outcome[server.url("/404")] == [Reason.HTTP_ERROR]
    assert outcome["http://169.254.169.254/latest/meta-data/"] == [Reason.HOST_REFUSED]
    assert outcome["https://boom.test/a.jpg"] == [Reason.FETCH_ERROR]


def test_fetch_many_bounds_concurrency(server):
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def slow(h, owner):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.3)
        with lock:
            state["now"] -= 1
        h.send_response(200)
        h.send_header("Content-Length", "2")
        h.end_headers()
        h.wfile.write(b"ok")

    server.route("/slow", slow)
    urls = [server.url(f"/slow?n={i}") for i in range(9)]
    results = list(fetch_many(iter(urls), fetcher(server.host_port), max_workers=3))
    assert sorted(u for u, _ in results) == sorted(urls)
    assert all(isinstance(r, Fetched) and r.data == b"ok" for _, r in results)
    assert 1 < state["max"] <= 3


def test_non_ascii_paths_are_percent_encoded(server):
    server.add("/%E7%8C%AB.jpg", jpeg_bytes(), "image/jpeg")
    got = fetcher(server.host_port).fetch(server.url("/猫.jpg"))
    assert got.data == jpeg_bytes()
    assert server.paths == ["/%E7%8C%AB.jpg"]


def test_policy_from_settings(monkeypatch):
    from ogiri.config import get_settings

    monkeypatch.setenv("OGIRI_MAX_IMAGE_BYTES", "1234")
    monkeypatch.setenv("OGIRI_PRIVATE_HOST_ALLOWLIST", "127.0.0.1:9000, localhost")
    policy = FetchPolicy.from_settings(get_settings(), max_redirects=2)
    assert policy.max_bytes == 1234 and policy.max_redirects == 2
    assert policy.private_host_allowlist == ("127.0.0.1:9000", "localhost")
    assert FetchPolicy().private_host_allowlist == ()  # off by default
    with pytest.raises(ValueError, match="unsupported schemes"):
        FetchPolicy(allowed_schemes=("ftp",))


def test_bare_host_allow_entry_covers_any_port(server):
    # System DNS for localhost (may list ::1 first: the server only listens on IPv4, so this also
    # exercises falling back to the next checked address).
    f = SafeFetcher(FetchPolicy(private_host_allowlist=("localhost",), **FAST))
    assert f.fetch(server.url("/cat.jpg", host="localhost")).data == jpeg_bytes()
    assert rejected(f, server.url("/cat.jpg")).reason == Reason.HOST_REFUSED  # 127.0.0.1 is not listed
    assert server.connections == 1
