"""SSRF-safe fetching of image URLs (``https``, ``http``, ``s3``) from untrusted CSV rows.

For ``http(s)`` the host is resolved **once**; if any resolved address is loopback, private,
link-local (e.g. ``169.254.169.254``), multicast, reserved, unspecified or otherwise not global, the
URL is refused before any connection. The connection is then made to the checked address itself
(no second DNS lookup, so DNS rebinding cannot swap it), while the ``Host`` header, TLS SNI and
certificate verification still use the hostname. Numeric host spellings that ``inet_aton`` accepts
(``2130706433``, ``0177.0.0.1``, ``0x7f000001``, ``127.1``) are decoded here, never handed to DNS.
Redirects are followed by hand (each hop re-validated and re-resolved, capped, loops detected),
bodies are streamed under a byte cap.

**One deadline per fetch** (``total_timeout``, all redirect hops together) covers every phase: DNS,
connect, TLS, status line, headers and body. A watchdog shuts the socket down when it runs out, so
a server that drips one header byte per second cannot hold a fetch thread; the reject detail names
the phase that ran out. ``connect_timeout`` and ``read_timeout`` (per socket read) apply within it.

``s3://`` rows may read only the ``allowed_s3_sources`` (``bucket`` or ``bucket/prefix/``); in the
product that is ``OGIRI_ALLOWED_S3_SOURCES``, by default the product bucket's ``landing/`` and
``images/`` (anything else is ``s3_source_not_allowed``).

A private-host allow-list (``host:port`` exactly as written in the URL, or a bare ``host`` for any
port) lets local mode reach test servers; it is empty, i.e. off, by default.

URL *syntax* checks live in :func:`validate_url`; :mod:`ogiri.ingest.csv_rows` applies it while
parsing so malformed or disallowed URLs are rejected before any fetch, and the fetcher applies it
again to every URL and redirect target.

Usage::

    fetcher = SafeFetcher(FetchPolicy(max_bytes=settings.max_image_bytes), s3_client=s3)
    for url, result in fetch_many(urls, fetcher, max_workers=settings.fetch_concurrency):
        if isinstance(result, FetchRejected): ...   # result.reason, result.detail
        else: ...                                   # result.data, result.final_url, result.content_type
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

from ogiri.aws import s3_split
from ogiri.ingest.reasons import Reason, Rejected

log = logging.getLogger(__name__)

#: ``resolver(host, port) -> [ip, ...]``; raise ``OSError`` (e.g. ``socket.gaierror``) when it fails.
Resolver = Callable[[str, int], list[str]]

DEFAULT_SCHEMES = ("https", "http", "s3")
MAX_URL_CHARS = 2048
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024
#: Characters left as they are when the request target is percent-encoded (non-ASCII gets encoded).
_URL_SAFE = "/?&=%:@!$'()*+,;-._~[]"
_S3_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_IPV4_PART_RE = re.compile(r"^(0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$")


class FetchRejected(Rejected):
    """The URL was refused or could not be fetched; ``reason`` is a :class:`Reason`."""


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for :class:`SafeFetcher`. Defaults suit production; tests shorten the timeouts."""

    allowed_schemes: tuple[str, ...] = DEFAULT_SCHEMES
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    #: Wall-clock cap for one URL including redirects (stops slow-drip servers).
    total_timeout: float = 60.0
    #: ``host:port`` (or bare ``host``) entries allowed to be private/loopback. Local mode only.
    private_host_allowlist: tuple[str, ...] = ()
    user_agent: str = "ogiri-ingest/1.0"
    #: ``bucket`` (any key) or ``bucket/prefix/`` entries ``s3://`` rows may read; empty = none.
    allowed_s3_sources: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings, **overrides) -> FetchPolicy:
        """Policy from :class:`ogiri.config.Settings` (image bytes cap, private-host allow-list, the
        three fetch timeouts and the allowed ``s3://`` sources)."""
        values = {
            "max_bytes": settings.max_image_bytes,
            "private_host_allowlist": tuple(settings.private_host_allowlist),
            "connect_timeout": settings.fetch_connect_timeout_s,
            "read_timeout": settings.fetch_read_timeout_s,
            "total_timeout": settings.fetch_total_timeout_s,
            "allowed_s3_sources": tuple(settings.s3_sources()),
        }
        return cls(**{**values, **overrides})

    def __post_init__(self) -> None:
        bad = [s for s in self.allowed_schemes if s not in DEFAULT_SCHEMES]
        if bad:
            raise ValueError(f"unsupported schemes {bad}; choose from {list(DEFAULT_SCHEMES)}")
        if self.max_bytes <= 0 or self.max_redirects < 0:
            raise ValueError("max_bytes must be > 0 and max_redirects >= 0")
        if min(self.connect_timeout, self.read_timeout, self.total_timeout) <= 0:
            raise ValueError("timeouts must be > 0 seconds")
        sources = []
        for entry in self.allowed_s3_sources:
            bucket, sep, prefix = entry.strip().removeprefix("s3://").partition("/")
            if not _S3_BUCKET_RE.match(bucket):
                raise ValueError(f"allowed S3 source {entry!r} must be bucket or bucket/prefix/")
            prefix = prefix.lstrip("/")
            sources.append(f"{bucket}/{prefix if not prefix or prefix.endswith('/') else prefix + '/'}")
        object.__setattr__(self, "allowed_s3_sources", tuple(sources))  # "b/landing" -> "b/landing/"

    def s3_source_allowed(self, bucket: str, key: str) -> bool:
        """Whether ``s3://bucket/key`` lies in one of :attr:`allowed_s3_sources` (no ``..`` segments)."""
        if ".." in key.split("/"):
            return False
        for entry in self.allowed_s3_sources:
            allowed_bucket, _, prefix = entry.partition("/")
            if bucket == allowed_bucket and key.startswith(prefix):
                return True
        return False


@dataclass(frozen=True)
class Fetched:
    """A fetched body. ``final_url`` is the URL after redirects; ``content_type`` may be empty."""

    data: bytes
    final_url: str
    content_type: str


# --------------------------------------------------------------------------------------- URL syntax


def validate_url(url: str, allowed_schemes: Iterable[str] = DEFAULT_SCHEMES) -> str:
    """Check URL syntax and scheme; return the URL stripped of surrounding whitespace.

    Raises :class:`FetchRejected` with ``scheme_not_allowed`` or ``malformed_url``. No DNS, no I/O.
    """
    url = url.strip()
    if not url:
        raise FetchRejected(Reason.MALFORMED_URL, "empty URL")
    if len(url) > MAX_URL_CHARS:
        raise FetchRejected(Reason.MALFORMED_URL, f"URL longer than {MAX_URL_CHARS} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise FetchRejected(Reason.MALFORMED_URL, "URL contains whitespace or control characters")
    scheme, sep, _ = url.partition(":")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        raise FetchRejected(Reason.MALFORMED_URL, "URL has no scheme")
    scheme = scheme.lower()
    if scheme not in set(allowed_schemes):
        raise FetchRejected(Reason.SCHEME_NOT_ALLOWED, f"scheme {scheme!r} is not allowed")
    if scheme == "s3":
        split_s3(url)
        return url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchRejected(Reason.MALFORMED_URL, f"unparsable URL: {exc}") from None
    if not url[len(scheme) + 1 :].startswith("//") or not parts.hostname:
        raise FetchRejected(Reason.MALFORMED_URL, "URL has no host")
    if parts.username is not None or parts.password is not None:
        raise FetchRejected(Reason.MALFORMED_URL, "credentials in URLs are not allowed")
    if port == 0:
        raise FetchRejected(Reason.MALFORMED_URL, "port 0 is not allowed")
    _ascii_host(parts.hostname)
    return url


def split_s3(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)`` (key taken verbatim, ``?``/``#`` included)."""
    try:
        bucket, key = s3_split(url)
    except ValueError:
        bucket, key = "", ""
    if not _S3_BUCKET_RE.match(bucket) or ".." in bucket:
        raise FetchRejected(Reason.MALFORMED_URL, f"invalid S3 bucket name {bucket!r}")
    if not key:
        raise FetchRejected(Reason.MALFORMED_URL, "S3 URL has no object key")
    return bucket, key


def _ascii_host(hostname: str) -> str:
    """IDNA-encode a host name (lowercase ASCII); IP literals pass through."""
    try:
        ipaddress.ip_address(hostname.split("%", 1)[0])
        return hostname
    except ValueError:
        pass
    try:
        ascii_host = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise FetchRejected(Reason.MALFORMED_URL, f"invalid host name {hostname!r}") from None
    if not re.fullmatch(r"[a-z0-9_.\-]+", ascii_host) or ".." in ascii_host:
        raise FetchRejected(Reason.MALFORMED_URL, f"invalid host name {hostname!r}")
    return ascii_host


# ------------------------------------------------------------------------------------ address rules


def parse_numeric_host(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a numeric host denotes, including the legacy ``inet_aton`` forms, else ``None``.

    ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1`` all give ``127.0.0.1``.
    """
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    parts = host.rstrip(".").split(".") if host else []
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART_RE.match(p) for p in parts):
        return None
    values = []
    for p in parts:
        if p[:2].lower() == "0x":
            values.append(int(p[2:] or "0", 16))
        elif len(p) > 1 and p[0] == "0":
            values.append(int(p, 8))
        else:
            values.append(int(p))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        return None  # inet_aton refuses these too; treat as a (bogus) name that DNS will fail
    number = 0
    for v in head:
        number = number * 256 + v
    number = number * 256 ** (5 - len(values)) + last
    return ipaddress.IPv4Address(number)


def refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why connecting to ``ip`` is refused (e.g. ``"loopback"``), or ``None`` when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in ipaddress.IPv6Network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            why = refusal(embedded)
            return f"{why} (embedded in {ip})" if why else None
        if ip.teredo:
            return "teredo"
    for name in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{name}"):
            return name.replace("_", "-")
    if not ip.is_global:
        return "not globally routable"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with ``getaddrinfo`` (A and AAAA); unique addresses in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


# ------------------------------------------------------------------------------- one deadline


class _Deadline:
    """The one wall-clock budget of a fetch (every hop and phase); knows the current phase.

    A timer thread shuts the attached socket down when the budget runs out, which wakes any read
    blocked in the status line, headers, TLS handshake or body; the fetcher then reports the phase.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.phase = "dns"
        self.expired = False
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sock = self._sock
        if sock is not None:
            _cut(sock)

    def attach(self, sock: socket.socket | None) -> None:
        """Watch ``sock`` (the one the current phase blocks on); cut it now if already expired."""
        with self._lock:
            self._sock = sock
            expired = self.expired
        if expired and sock is not None:
            _cut(sock)

    def remaining(self) -> float:
        """Seconds left, or raise the phase's timeout rejection."""
        left = self.at - time.monotonic()
        if left <= 0 or self.expired:
            raise self.rejection()
        return left

    def ran_out(self) -> bool:
        """Whether the budget is spent (the timer fired, or is about to)."""
        return self.expired or time.monotonic() >= self.at

    def rejection(self) -> FetchRejected:
        """The timeout reject naming the phase that ran out (no measured timings in it)."""
        return FetchRejected(Reason.TIMEOUT, f"fetch deadline of {self.seconds:g} s ran out during {self.phase}")

    def cancel(self) -> None:
        """Stop the timer (the fetch is over)."""
        self._timer.cancel()
        self.attach(None)


def _cut(sock: socket.socket) -> None:
    """Shut ``sock`` down at the TCP level (an ``SSLSocket`` too, without a TLS goodbye)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # not connected yet, or already closed


_DNS_POOL_SIZE = 32
_dns_pool: ThreadPoolExecutor | None = None
_dns_lock = threading.Lock()


def _resolve_within(resolver: Resolver, host: str, port: int, deadline: _Deadline) -> list[str]:
    """``resolver(host, port)`` bounded by the deadline (``getaddrinfo`` cannot be interrupted, so it
    runs on a small shared pool and is abandoned when the deadline runs out)."""
    global _dns_pool
    with _dns_lock:
        if _dns_pool is None:
            _dns_pool = ThreadPoolExecutor(_DNS_POOL_SIZE, thread_name_prefix="ogiri-dns")
    future = _dns_pool.submit(resolver, host, port)
    try:
        return future.result(timeout=deadline.remaining())
    except FutureTimeout:
        future.cancel()
        raise deadline.rejection() from None


# ---------------------------------------------------------------------------- pinned connections


class _PhasedResponse(http.client.HTTPResponse):
    """An ``HTTPResponse`` that moves the deadline's phase from "status line" to "headers"."""

    def __init__(self, sock, *args, deadline: _Deadline, **kwargs):
        super().__init__(sock, *args, **kwargs)
        self._deadline = deadline

    def _read_status(self):
        status = super()._read_status()
        self._deadline.phase = "headers"
        return status


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a pre-checked IP; ``host`` (for the Host header) stays the URL's host name."""

    def __init__(self, host: str, port: int, ip: str, connect_timeout: float, read_timeout: float,
                 deadline: _Deadline):
        super().__init__(host, port, timeout=connect_timeout)
        self._ip = ip
        self._read_timeout = read_timeout
        self.deadline = deadline

    def response_class(self, sock, *args, **kwargs) -> _PhasedResponse:  # noqa: D102 - http.client hook
        self.deadline.phase = "status line"
        return _PhasedResponse(sock, *args, deadline=self.deadline, **kwargs)

    def _open_socket(self) -> socket.socket:
        self.deadline.phase = "connect"
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.deadline.attach(sock)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self._read_timeout)
        return sock

    def connect(self) -> None:
        self.sock = self._open_socket()
        self.deadline.phase = "request"


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """HTTPS to a pre-checked IP with SNI and certificate verification for the host name."""

    default_port = http.client.HTTPS_PORT

    def __init__(self, *args, ssl_context: ssl.SSLContext, **kwargs):
        super().__init__(*args, **kwargs)
        self._ssl_context = ssl_context

    def connect(self) -> None:
        sock = self._open_socket()
        self.deadline.phase = "tls"
        try:  # wrap first, handshake after: the deadline must watch the socket the handshake reads
            tls = self._ssl_context.wrap_socket(sock, server_hostname=self.host, do_handshake_on_connect=False)
        except BaseException:
            sock.close()
            raise
        self.sock = tls
        self.deadline.attach(tls)
        tls.do_handshake()
        self.deadline.phase = "request"


# ----------------------------------------------------------------------------------------- fetcher


class SafeFetcher:
    """Fetch one URL at a time under a :class:`FetchPolicy`; thread-safe (no shared mutable state).

    ``resolver`` replaces DNS (tests map names to chosen addresses); ``ssl_context`` replaces the
    default verifying context (tests trust a local CA); ``s3_client`` is a boto3 S3 client, needed
    only for ``s3://`` URLs.
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        s3_client=None,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.policy = policy or FetchPolicy()
        self.s3_client = s3_client
        self.resolver = resolver or system_resolver
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._allow = {entry.strip().lower() for entry in self.policy.private_host_allowlist if entry.strip()}

    def fetch(self, url: str) -> Fetched:
        """Fetch ``url`` or raise :class:`FetchRejected` (never another exception for bad input)."""
        url = validate_url(url, self.policy.allowed_schemes)
        if url[:3].lower() == "s3:":
            return self._fetch_s3(url)
        started = time.monotonic()
        deadline = _Deadline(self.policy.total_timeout)
        try:
            return self._follow(url, deadline)
        except FetchRejected as exc:
            if exc.reason == Reason.TIMEOUT:  # the timing belongs in the log, not in the reject
                log.info("fetch of %s: %s (after %.2f s)", url, exc.detail, time.monotonic() - started)
            raise
        finally:
            deadline.cancel()

    def _follow(self, url: str, deadline: _Deadline) -> Fetched:
        """Fetch ``url``, following redirects by hand (each target re-validated), within ``deadline``."""
        seen = {url}
        for hop in range(self.policy.max_redirects + 1):
            status, location, fetched = self._fetch_http_once(url, deadline)
            if fetched is not None:
                return fetched
            if location is None:
                raise FetchRejected(Reason.HTTP_ERROR, f"HTTP {status} from {url}")
            if hop == self.policy.max_redirects:
                break
            target = urljoin(url, location)
            try:
                target = validate_url(target, [s for s in self.policy.allowed_schemes if s != "s3"])
            except FetchRejected as exc:
                raise FetchRejected(exc.reason, f"redirect from {url}: {exc.detail}") from None
            if target in seen:
                raise FetchRejected(Reason.REDIRECT_LOOP, f"{url} redirects back to {target}")
            seen.add(target)
            url = target
        raise FetchRejected(Reason.TOO_MANY_REDIRECTS, f"more than {self.policy.max_redirects} redirects")

    # -- http(s)

    def _check_host(self, url: str, deadline: _Deadline) -> tuple[str, int, list[str]]:
        """(ascii host, port, addresses to try) for an http(s) URL, or refuse it."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        host = _ascii_host(parts.hostname or "")
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        numeric = parse_numeric_host(host)
        candidates = [numeric] if numeric is not None else self._resolve(host, port, deadline)
        if host in self._allow or netloc in self._allow:
            return host, port, [str(ip) for ip in candidates]
        for ip in candidates:
            why = refusal(ip)
            if why:
                raise FetchRejected(Reason.HOST_REFUSED, f"{netloc} -> {ip} is {why}{self._port_note(host, port)}")
        return host, port, [str(ip) for ip in candidates]

    def _resolve(self, host: str, port: int, deadline: _Deadline) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        """The addresses ``host`` resolves to (within the deadline), or a ``dns_failure`` reject."""
        deadline.phase = "dns"
        try:
            resolved = _resolve_within(self.resolver, host, port, deadline)
        except (OSError, UnicodeError) as exc:
            raise FetchRejected(Reason.DNS_FAILURE, f"cannot resolve {host}: {exc}") from None
        try:
            candidates = [ipaddress.ip_address(str(a).split("%", 1)[0]) for a in resolved]
        except ValueError as exc:
            raise FetchRejected(Reason.DNS_FAILURE, f"resolver gave a bad address: {exc}") from None
        if not candidates:
            raise FetchRejected(Reason.DNS_FAILURE, f"{host} has no addresses")
        return candidates

    def _port_note(self, host: str, port: int) -> str:
        """When ``host`` is allow-listed on other ports only, say so (else the reason reads as if
        the host itself were unknown)."""
        wanted = {host, f"[{host}]"}
        ports = sorted(e.rsplit(":", 1)[1] for e in self._allow if ":" in e and e.rsplit(":", 1)[0] in wanted)
        if not ports:
            return ""
        return f"; port {port} is not allow-listed for {host} (allow-listed: {', '.join(ports)})"

    def _connection(self, scheme: str, host: str, port: int, ip: str, deadline: _Deadline):
        p = self.policy
        left = deadline.remaining()
        read_timeout, connect_timeout = min(p.read_timeout, left), min(p.connect_timeout, left)
        if scheme == "https":
            return _PinnedHTTPSConnection(
                host, port, ip, connect_timeout, read_timeout, deadline, ssl_context=self.ssl_context
            )
        return _PinnedHTTPConnection(host, port, ip, connect_timeout, read_timeout, deadline)

    def _connect_any(self, scheme: str, host: str, port: int, ips: list[str], deadline: _Deadline):
        """A connected connection to the first of ``ips`` that answers (each already checked)."""
        for i, ip in enumerate(ips):
            conn = self._connection(scheme, host, port, ip, deadline)
            try:
                conn.connect()
                return conn
            except (ConnectionError, TimeoutError, OSError):
                conn.close()
                if i == len(ips) - 1 or deadline.ran_out():
                    raise
        raise AssertionError("unreachable: ips is never empty")

    def _fetch_http_once(self, url: str, deadline: _Deadline) -> tuple[int, str | None, Fetched | None]:
        """One request: ``(status, redirect location, None)`` or ``(200, None, Fetched)``."""
        host, port, ips = self._check_host(url, deadline)
        parts = urlsplit(url)
        target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_URL_SAFE)
        headers = {
            "User-Agent": self.policy.user_agent,
            "Accept": "image/*, */*;q=0.5",
            "Accept-Encoding": "identity",
            "Connection": "close",
        }
        conn = resp = None
        try:
            conn = self._connect_any(parts.scheme.lower(), host, port, ips, deadline)
            conn.request("GET", target, headers=headers)
            resp = conn.getresponse()
            if deadline.ran_out():  # a cut mid-headers reads as their end: the response is not whole
                raise deadline.rejection()
            deadline.phase = "body"
            if resp.status in _REDIRECT_STATUSES:
                return resp.status, resp.getheader("Location") or None, None
            if resp.status != 200:
                return resp.status, None, None
            data = self._read_capped(resp, deadline)
            return 200, None, Fetched(data, url, resp.getheader("Content-Type", "") or "")
        except FetchRejected:
            raise
        except Exception as exc:
            raise self._http_failure(exc, url, host, deadline) from None
        finally:  # the response owns the socket once the server said "close": close both
            if resp is not None:
                resp.close()
            if conn is not None:
                conn.close()

    def _http_failure(self, exc: Exception, url: str, host: str, deadline: _Deadline) -> Exception:
        """The reject for an exception of one request (the deadline first: it may have caused it)."""
        if deadline.ran_out():
            return deadline.rejection()
        if isinstance(exc, ssl.SSLError):  # before OSError: SSLError is an OSError
            return FetchRejected(Reason.TLS_ERROR, f"{host}: {exc}")
        if isinstance(exc, TimeoutError):
            limit = self.policy.connect_timeout if deadline.phase == "connect" else self.policy.read_timeout
            return FetchRejected(Reason.TIMEOUT, f"{url}: no progress for {limit:g} s during {deadline.phase}")
        if isinstance(exc, http.client.IncompleteRead):
            return FetchRejected(Reason.SHORT_READ, f"{url}: body ended early, {len(exc.partial or b'')} bytes into a chunk")
        if isinstance(exc, OSError | http.client.HTTPException):
            return FetchRejected(Reason.CONNECTION_ERROR, f"{url}: {type(exc).__name__}: {exc}")
        return exc

    def _read_capped(self, resp: http.client.HTTPResponse, deadline: _Deadline) -> bytes:
        cap = self.policy.max_bytes
        raw_length = (resp.getheader("Content-Length") or "").strip()
        length = int(raw_length) if raw_length.isdigit() else None
        if length is not None and length > cap:
            raise FetchRejected(Reason.TOO_LARGE, f"Content-Length {length} > {cap} bytes")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = resp.read1(min(_CHUNK, cap + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                raise FetchRejected(Reason.TOO_LARGE, f"body larger than {cap} bytes")
            chunks.append(chunk)
        if deadline.ran_out():  # the watchdog cut the socket: the body is not complete
            raise deadline.rejection()
        if length is not None and total < length:
            raise FetchRejected(Reason.SHORT_READ, f"body ended after {total} of {length} bytes (Content-Length)")
        return b"".join(chunks)

    # -- s3

    def _fetch_s3(self, url: str) -> Fetched:
        bucket, key = split_s3(url)
        if not self.policy.s3_source_allowed(bucket, key):
            allowed = ", ".join(self.policy.allowed_s3_sources) or "none"
            raise FetchRejected(
                Reason.S3_SOURCE_NOT_ALLOWED, f"s3://{bucket}/{key} is outside the allowed S3 sources ({allowed})"
            )
        if self.s3_client is None:
            raise FetchRejected(Reason.SCHEME_NOT_ALLOWED, "s3:// URLs need an S3 client (none configured)")
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            IncompleteReadError,
            ReadTimeoutError,
        )

        try:
            obj = self.s3_client.get_object(Bucket=bucket, Key=key)
            return Fetched(self._read_s3_body(obj), url, str(obj.get("ContentType") or ""))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}:
                raise FetchRejected(Reason.S3_NOT_FOUND, f"{url}: {code}") from None
            raise FetchRejected(Reason.S3_ERROR, f"{url}: {code or exc}") from None
        except (ConnectTimeoutError, ReadTimeoutError):
            raise FetchRejected(Reason.TIMEOUT, f"{url} timed out") from None
        except IncompleteReadError as exc:
            raise FetchRejected(Reason.SHORT_READ, f"{url}: {exc}") from None
        except BotoCoreError as exc:
            raise FetchRejected(Reason.CONNECTION_ERROR, f"{url}: {exc}") from None

    def _read_s3_body(self, obj: dict) -> bytes:
        """The object's body under the byte cap (checked against ContentLength first)."""
        cap = self.policy.max_bytes
        body = obj["Body"]
        try:
            if int(obj.get("ContentLength") or 0) > cap:
                raise FetchRejected(Reason.TOO_LARGE, f"object is {obj['ContentLength']} bytes > {cap}")
            chunks, total = [], 0
            for chunk in body.iter_chunks(_CHUNK):
                total += len(chunk)
                if total > cap:
                    raise FetchRejected(Reason.TOO_LARGE, f"object larger than {cap} bytes")
                chunks.append(chunk)
        finally:
            body.close()
        return b"".join(chunks)


# ------------------------------------------------------------------------------------- concurrency


def fetch_many(
    urls: Iterable[str], fetcher: SafeFetcher, max_workers: int = 16
) -> Iterator[tuple[str, Fetched | FetchRejected]]:
    """Fetch ``urls`` on up to ``max_workers`` threads; yield ``(url, Fetched | FetchRejected)``.

    Results come in completion order, one per input URL (duplicates included). At most
    ``2 * max_workers`` fetches are pending at once, so memory stays bounded for long inputs. Never
    raises for a bad URL: an unexpected exception becomes ``FetchRejected(fetch_error)``.
    """
    if max_workers < 1:
        raise ValueError("max_workers must be >= 1")

    def one(url: str) -> Fetched | FetchRejected:
        try:
            return fetcher.fetch(url)
        except FetchRejected as exc:
            return exc
        except Exception as exc:  # a bug: keep the run going, but make it visible
            log.exception("unexpected error fetching %s", url)
            return FetchRejected(Reason.FETCH_ERROR, f"{type(exc).__name__}: {exc}")

    window = 2 * max_workers
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ogiri-fetch") as pool:
        pending: dict[Future, str] = {}
        for url in urls:
            pending[pool.submit(one, url)] = url
            if len(pending) >= window:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield pending.pop(fut), fut.result()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield pending.pop(fut), fut.result()
