"""The /metrics server under a flood of half-sent requests: its threads and
memory stay bounded, and it answers again once the flood is gone."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.services import free_port, wait_for_port

SERVER = """
import sys, time
from prometheus_client import CollectorRegistry, Counter
from pbxwatch.metrics_http import serve_metrics
r = CollectorRegistry()
Counter("pbxwatch_test", "a counter", registry=r).inc()
serve_metrics("127.0.0.1", int(sys.argv[1]), r)
time.sleep(120)
"""


def _status(pid: int) -> dict[str, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)  # fmt: skip
    return {"rss_kib": int(fields["VmRSS"].split()[0]), "threads": int(fields["Threads"])}


def _scrape(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return bytes(resp.read())


def test_a_thousand_half_sent_requests_are_bounded() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        wait_for_port(port, proc=proc)
        assert b"pbxwatch_test_total 1.0" in _scrape(port)
        before = _status(proc.pid)
        socks = []
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", port), 5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            socks.append(s)
        time.sleep(2.0)
        during = _status(proc.pid)
        for s in socks:
            s.close()
        time.sleep(6.0)  # the half-sent requests the workers hold time out
        assert b"pbxwatch_test_total 1.0" in _scrape(port)
        after = _status(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert during["threads"] <= before["threads"] + 4, (before, during)
    assert during["rss_kib"] - before["rss_kib"] < 20 * 1024, (before, during)
    assert after["rss_kib"] - before["rss_kib"] < 20 * 1024, (before, after)
    print(f"before {before}, during the flood {during}, after {after}")


def test_closing_cuts_the_requests_still_waiting() -> None:
    """At shutdown no worker stays blocked on a half-sent request (each
    would otherwise hold the process's exit for its 5 s)."""
    import threading

    from prometheus_client import CollectorRegistry

    from pbxwatch.metrics_http import serve_metrics

    port = free_port()
    server = serve_metrics("127.0.0.1", port, CollectorRegistry())
    socks = [socket.create_connection(("127.0.0.1", port), 5) for _ in range(4)]
    for s in socks:
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
    time.sleep(0.5)  # the workers are reading
    workers = [t for t in threading.enumerate() if t.name.startswith("metrics_")]
    assert workers
    server.shutdown()
    server.server_close()
    for t in workers:
        t.join(2.0)
    assert [t.name for t in workers if t.is_alive()] == []
    for s in socks:
        s.close()
