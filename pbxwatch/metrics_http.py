"""The /metrics endpoint: a small HTTP server with bounded resources.

prometheus-client's own server starts a thread per connection and waits
for a request without a time limit: 1,000 clients that open a connection
and send half a request hold 1,000 threads and their stacks for as long as
they like.  This one serves from a fixed pool of worker threads, gives each
request a few seconds to arrive, and closes connections beyond what the
pool can queue at once.  Prometheus scrapes every 15-60 s with one
connection, so none of these limits is ever near in normal use.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

WORKERS = 4  # threads that answer requests
QUEUED = 32  # connections waiting for a worker; more are closed at once
REQUEST_SECONDS = 5.0  # to send a request (and to read the answer)


class _Handler(BaseHTTPRequestHandler):
    registry: CollectorRegistry
    timeout = REQUEST_SECONDS  # applied to the socket: a half-sent request ends here
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in ("/metrics", "/"):
            self.send_error(404, "only /metrics here")
            return
        body = generate_latest(self.registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not news; the access log stays quiet."""


class MetricsServer(socketserver.TCPServer):
    """Accepts on one thread, answers on ``WORKERS``, refuses past ``QUEUED``."""

    allow_reuse_address = True
    request_queue_size = 128  # the kernel's accept backlog: a flood is accepted and shed fast

    def __init__(self, host: str, port: int, registry: CollectorRegistry) -> None:
        handler = type("Handler", (_Handler,), {"registry": registry})
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.address_family = family
        # set up before binding: a bind that fails calls server_close()
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="metrics")
        self._slots = threading.BoundedSemaphore(WORKERS + QUEUED)
        self._open: set[socket.socket] = set()  # accepted, not answered yet
        self._lock = threading.Lock()
        self.refused = 0
        super().__init__((host, port), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            self.shutdown_request(request)
            return
        with self._lock:
            self._open.add(request)
        self._pool.submit(self._work, request, client_address)

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # a client's broken request ends its own connection only
            log.debug("metrics request from %s failed", client_address, exc_info=True)
        finally:
            with self._lock:
                self._open.discard(request)
            self.shutdown_request(request)
            self._slots.release()

    def server_close(self) -> None:
        """Stop accepting and cut the connections still open, so a worker
        waiting for a half-sent request does not hold the exit up."""
        super().server_close()
        with self._lock:
            waiting = list(self._open)
        for sock in waiting:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._pool.shutdown(wait=False, cancel_futures=True)


def serve_metrics(host: str, port: int, registry: CollectorRegistry) -> MetricsServer:
    """Start serving in a thread; ``shutdown()`` then ``server_close()`` stop it."""
    server = MetricsServer(host, port, registry)
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return server
