"""A static file server on a loopback address, for serving the synthetic image set over HTTP.

Local mode exercises the real fetch path (``http://`` URLs), so the images must come from a real
server; it binds 127.0.0.1 and a port that the ingestion allow-list names exactly, so every other
loopback or private address stays refused.
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        self.server.request_log.append(self.path)


class ImageServer:
    """Serve ``root`` at ``http://127.0.0.1:<port>/`` from a daemon thread until ``stop()``."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.request_log = []
        self.host, self.port = self._httpd.server_address[:2]
        self.base_url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="image-server", daemon=True)
        self._thread.start()

    @property
    def allowlist_entry(self) -> str:
        """The exact ``host:port`` to put in ``OGIRI_PRIVATE_HOST_ALLOWLIST``."""
        return f"{self.host}:{self.port}"

    @property
    def requests(self) -> list[str]:
        """Paths requested so far (the server's own log)."""
        return list(self._httpd.request_log)

    def __enter__(self) -> ImageServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
