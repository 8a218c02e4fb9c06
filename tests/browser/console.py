"""A live console for the browser tests: a real ``pbxwatch run`` with its
web console (OIDC login against the tests' real OpenID provider) and its
metrics, reading the project's PBX simulator over AMI, on a store that
already holds the calls of one shared lab recording.

The simulator runs in this process, on an event loop of its own thread,
so that a test can pause it and send its own AMI events (a group's last
member leaving) while Playwright drives the browser from the test's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pbxwatch.ami.codec import encode_frame
from pbxwatch.settings import Settings
from pbxwatch.sim.live import SimPlan, SimulatedPbx
from tests.conftest import FIXTURES
from tests.live import RUN_ENV, run_config
from tests.oidc.harness import Provider, start_provider
from tests.services import free_port, pbxwatch, wait_for_port

T = TypeVar("T")

#: the shared lab recording whose one call the timeline test looks up:
#: 0702345678 calls 1002 (Erik Öberg, Socialtjänst, no hänvisning), it rings
#: 20 s unanswered and the caller leaves a voicemail message
RECORDING = FIXTURES / "unanswered_to_voicemail_not_forwarded.ami"
RECORDED_CALLER = "0702345678"
RECORDED_EXTENSION = "1002"


class SimThread:
    """``SimulatedPbx`` on its own thread's event loop."""

    def __init__(self, settings: Settings, plan: SimPlan) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sim", daemon=True)
        self.thread.start()
        self.sim: SimulatedPbx = self.call(lambda: SimulatedPbx(settings, plan, "u", "s"))
        self.playing: Future[None] | None = None

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """``fn()`` on the simulator's loop, its result here."""

        async def wrapper() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def start(self, port: int) -> int:
        return asyncio.run_coroutine_threadsafe(
            self.sim.start("127.0.0.1", port), self.loop
        ).result(10)

    def play(self) -> None:
        self.playing = asyncio.run_coroutine_threadsafe(self.sim.run(), self.loop)

    def pause(self) -> None:
        self.call(self.sim.pause)

    def resume(self) -> None:
        self.call(self.sim.resume)

    def inject(self, frames: list[Mapping[str, str]]) -> float:
        """Send ``frames`` (AMI events) to every client now, stamped with the
        simulated clock, as the simulator sends its own; returns the host's
        ``time.monotonic()`` when the last one was handed to the sockets."""

        def go() -> float:
            now = self.sim.now if self.sim.now is not None else time.time()
            for frame in frames:
                fields = {"Privilege": "agent,all", "Timestamp": f"{now:.6f}", **frame}
                self.sim.state.apply(fields)
                self.sim.server.publish(encode_frame(fields).rstrip(b"\r\n"))
            return time.monotonic()

        return self.call(go)

    def members(self, queue: str) -> dict[str, dict[str, str]]:
        """The queue's members as the simulator's state has them:
        interface -> the fields of their last member event."""
        return self.call(
            lambda: {
                iface: dict(fields)
                for (q, iface), fields in self.sim.state.members.items()
                if q == queue
            }
        )

    def close_server(self) -> None:
        """The PBX goes away: the AMI server closes every session."""
        asyncio.run_coroutine_threadsafe(self.sim.close(), self.loop).result(10)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.resume()
        if self.playing is not None:
            self.playing.cancel()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.sim.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def member_event(event: str, fields: Mapping[str, str], **changes: str) -> dict[str, str]:
    """``QueueMemberRemoved`` / ``QueueMemberPause`` / ``...Added`` for a
    member whose last event had ``fields`` (app_queue's member fields)."""
    keep = (
        "Queue",
        "MemberName",
        "Interface",
        "StateInterface",
        "Membership",
        "Penalty",
        "CallsTaken",
        "LastCall",
        "LastPause",
        "LoginTime",
        "InCall",
        "Status",
        "Paused",
        "PausedReason",
        "Ringinuse",
        "Wrapuptime",
    )
    return {"Event": event, **{k: fields[k] for k in keep if k in fields}, **changes}


def metrics_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series of a Prometheus text exposition (``None``
    when absent); every given label must match."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        series, _, rest = head.partition("{")
        if series != name:
            continue
        found = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if "=" in part)
        if all(found.get(k, "").strip('"') == v for k, v in labels.items()):
            return float(value)
    return None


def total(text: str, name: str) -> float:
    """The sum of every series of ``name``."""
    out = 0.0
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if not line.startswith("#") and head.partition("{")[0] == name:
            out += float(value)
    return out


@dataclass
class Console:
    base: str
    metrics_url: str
    provider: Provider
    sim: SimThread
    proc: subprocess.Popen[bytes]
    log: Path
    config: Path
    settings: Settings

    def url(self, path: str) -> str:
        return self.base + path

    def metrics(self) -> str:
        return metrics_text(self.metrics_url)


def callback_path() -> str:
    """The console's OIDC callback path, from its own routes."""
    from pbxwatch.web import app as web_app  # the console's module (may not exist yet)

    path = getattr(web_app, "CALLBACK_PATH", None)
    if isinstance(path, str):
        return path
    return "/auth/callback"


@contextlib.contextmanager
def live_console(
    tmp: Path, settings: Settings, plan: SimPlan, *, web: dict[str, Any] | None = None
) -> Iterator[Console]:
    """The whole set: OpenID provider, the recording replayed into the store,
    the simulator, and ``pbxwatch run`` with console and metrics."""
    ami_port, web_port, metrics_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    provider = start_provider(
        tmp / "oidc", [base + callback_path()], post_logout_redirect_uris=[base + "/logged-out"]
    )
    session_secret = secrets.token_urlsafe(32)
    config = run_config(
        tmp,
        ami_port,
        metrics={"listen": f"127.0.0.1:{metrics_port}"},
        web={
            "enabled": True,
            "listen": f"127.0.0.1:{web_port}",
            "auth": provider.web_auth(),
            **(web or {}),
        },
    )
    env = {
        **os.environ,
        **RUN_ENV,
        "PBXWATCH_OIDC_CLIENT_SECRET": provider.client_secret,
        "PBXWATCH_WEB_SESSION_SECRET": session_secret,
    }
    log = tmp / "run.log"
    sim: SimThread | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            pbxwatch("replay", str(RECORDING), "--config", str(config)),
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        sim = SimThread(settings, plan)
        sim.start(ami_port)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                pbxwatch("run", "--config", str(config), "--pbx-speed", str(plan.speed)),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 30
        running = sim
        while running.call(lambda: running.sim.server.listeners) == 0:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(0.5)  # the state read after login
        wait_for_port(web_port, 30, proc)
        wait_for_port(metrics_port, 30, proc)
        sim.play()
        yield Console(
            base,
            f"http://127.0.0.1:{metrics_port}/metrics",
            provider,
            sim,
            proc,
            log,
            config,
            settings,
        )
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if sim is not None:
            sim.stop()
        provider.stop()
