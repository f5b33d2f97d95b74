"""Local HTTP(S) servers for ingestion tests and benchmarks, with their own connection/request logs.

A :class:`HostileServer` binds ``127.0.0.1`` on a free port and serves *routes* registered by the
test: static bodies, redirects, stalls, huge streamed bodies. It records every accepted TCP
connection and every request (path and headers), so a test can prove that no connection was made
to a refused address::

    with HostileServer() as srv:
        srv.add("/cat.jpg", jpeg_bytes, "image/jpeg")
        srv.redirect("/hop", "http://169.254.169.254/latest/meta-data/")
        policy = FetchPolicy(private_host_allowlist=(srv.host_port,))
        ...
        assert srv.connections == 0

``tls=(certfile, keyfile)`` serves HTTPS instead (see :func:`make_test_ca` for a throwaway CA).
Test modules get the ``hostile_server`` fixture by importing ``hostile_server_fixture``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


@dataclass
class LoggedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class _Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    handler: Callable[[BaseHTTPRequestHandler, HostileServer], None] | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: HostileServer, tls: ssl.SSLContext | None):
        self.owner = owner
        self.tls = tls
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self):
        sock, addr = super().get_request()
        with self.owner._lock:
            self.owner.connections += 1
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):  # client aborts are expected here
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server naming
        owner: HostileServer = self.server.owner
        with owner._lock:
            owner.requests.append(LoggedRequest("GET", self.path, dict(self.headers.items())))
        route = owner.routes.get(self.path.split("?", 1)[0])
        if route is None:
            route = _Route(status=404, body=b"not found", headers={"Content-Type": "text/plain"})
        if route.handler is not None:
            route.handler(self, owner)
            return
        self.send_response(route.status)
        headers = {"Content-Length": str(len(route.body)), **route.headers}
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(route.body)


class HostileServer:
    """A threaded HTTP(S) server on 127.0.0.1 with routes and connection/request logs."""

    def __init__(self, tls: tuple[Path, Path] | None = None):
        self._lock = threading.Lock()
        self.connections = 0
        self.requests: list[LoggedRequest] = []
        self.routes: dict[str, _Route] = {}
        self.stopping = threading.Event()
        #: Bytes written by :meth:`stream` routes before the client went away.
        self.bytes_streamed = 0
        #: Set when a :meth:`stream` handler has finished (body sent or client gone).
        self.stream_finished = threading.Event()
        context = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
        self._server = _Server(self, context)
        self.port = self._server.server_address[1]
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="hostile-server",
            daemon=True,
        )

    # -- lifecycle
    def start(self) -> HostileServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release stalled handlers, stop serving and close the socket."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- addressing
    @property
    def host_port(self) -> str:
        """``127.0.0.1:<port>``, the allow-list entry for this server."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        """URL of ``path`` on this server, spelled with ``host``."""
        return f"{self.scheme}://{host}:{self.port}{path}"

    @property
    def paths(self) -> list[str]:
        """Paths requested so far, in order."""
        with self._lock:
            return [r.path for r in self.requests]

    # -- routes
    def add(self, path: str, body: bytes, content_type: str = "application/octet-stream", status: int = 200):
        """Serve ``body`` at ``path``."""
        self.routes[path] = _Route(status=status, body=body, headers={"Content-Type": content_type})

    def route(self, path: str, handler: Callable[[BaseHTTPRequestHandler, HostileServer], None]) -> None:
        """Answer ``path`` with ``handler(request_handler, server)`` (write the response yourself)."""
        self.routes[path] = _Route(handler=handler)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        """Answer ``path`` with a redirect to ``location``."""
        self.routes[path] = _Route(status=status, headers={"Location": location})

    def stall(self, path: str, seconds: float = 30.0, after_headers: bool = False) -> None:
        """Accept the request, then send nothing (or only headers) for ``seconds`` or until stop."""

        def handler(h: BaseHTTPRequestHandler, owner: HostileServer) -> None:
            if after_headers:
                h.send_response(200)
                h.send_header("Content-Type", "image/jpeg")
                h.send_header("Content-Length", "1000")
                h.end_headers()
                h.wfile.write(b"\xff\xd8")
                h.wfile.flush()
            owner.stopping.wait(seconds)

        self.routes[path] = _Route(handler=handler)

    def short_body(self, path: str, declared: int = 1000, sent: int = 100) -> None:
        """Answer ``path`` with ``Content-Length: declared`` but only ``sent`` bytes, then close."""

        def handler(h: BaseHTTPRequestHandler, owner: HostileServer) -> None:
            h.send_response(200)
            h.send_header("Content-Type", "image/jpeg")
            h.send_header("Content-Length", str(declared))
            h.end_headers()
            h.wfile.write(b"\xff\xd8" + b"\0" * (sent - 2))
            h.wfile.flush()
            h.close_connection = True

        self.routes[path] = _Route(handler=handler)

    def stream(self, path: str, total_bytes: int, declare_length: bool = False, chunk: int = 64 * 1024):
        """Stream ``total_bytes`` of zeros at ``path`` (optionally with a Content-Length header)."""

        def handler(h: BaseHTTPRequestHandler, owner: HostileServer) -> None:
            h.send_response(200)
            h.send_header("Content-Type", "image/jpeg")
            if declare_length:
                h.send_header("Content-Length", str(total_bytes))
            h.end_headers()
            block = b"\0" * chunk
            sent = 0
            try:
                while sent < total_bytes and not owner.stopping.is_set():
                    n = min(chunk, total_bytes - sent)
                    h.wfile.write(block[:n])
                    sent += n
                    with owner._lock:
                        owner.bytes_streamed += n
            except OSError:
                pass  # the client hung up: exactly what the fetcher should do
            finally:
                owner.stream_finished.set()

        self.routes[path] = _Route(handler=handler)


def make_test_ca(directory: Path, hostnames: list[str]) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for ``hostnames``: ``(ca.pem, cert.pem, key.pem)``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ogiri test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@pytest.fixture(name="hostile_server")
def hostile_server_fixture():
    """Fixture ``hostile_server``: a factory ``hostile_server(tls=None)`` -> started :class:`HostileServer`,
    stopped after the test. Import ``hostile_server_fixture`` into a test module to use it."""
    started: list[HostileServer] = []

    def start(tls: tuple[Path, Path] | None = None) -> HostileServer:
        srv = HostileServer(tls=tls).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
