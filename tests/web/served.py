"""A real console for the tests: uvicorn on a free loopback port, in a
thread with its own event loop, over an engine fed the same recording
in-process (the live state) and a real SQLite store that ``pbxwatch
replay`` filled (the search)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pbxwatch.metrics.health import Health
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_file
from pbxwatch.settings import Settings, WebSettings
from pbxwatch.store.db import make_engine
from pbxwatch.web import LiveView, WebConsole
from tests.conftest import FIXTURES, LAB_CONFIG
from tests.services import free_port, pbxwatch, wait_for_port

#: the shared recordings the store holds: the timeline test's known call
#: (0702345678 -> 1002, 20 s unanswered, voicemail) and a day of mixed load
RECORDINGS = ("unanswered_to_voicemail_not_forwarded.ami", "group_number_answered.ami",
              "mixed_load.ami")  # fmt: skip
KNOWN_CALLER = "0702345678"
KNOWN_E164 = "+46702345678"


def lab_config(tmp: Path, **sections: Any) -> Path:
    config = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    config["metrics"] = {"enabled": False}
    config["storage"] = {"data_dir": str(tmp / "data")}
    config.update(sections)
    path = tmp / "pbxwatch.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return path


def replay_into(config: Path, recordings: tuple[str, ...] = RECORDINGS) -> None:
    for name in recordings:
        subprocess.run(pbxwatch("replay", str(FIXTURES / name), "--config", str(config)),
                       check=True, capture_output=True, timeout=120)  # fmt: skip


@dataclass
class Served:
    base: str
    port: int
    console: WebConsole


@contextlib.contextmanager
def serve(settings: Settings, db: Path | str, web: dict[str, Any] | None = None,
          recordings: tuple[str, ...] = RECORDINGS, port: int | None = None,
          others: list[LiveView] | None = None) -> Iterator[Served]:  # fmt: skip
    """The console on ``port`` (default a free one) over ``db`` (a SQLite
    file or a database URL), with ``web`` settings; ``others``: the live
    views of more PBXs, shown after the one fed ``recordings``."""
    port = port or free_port()
    web_settings = WebSettings.model_validate({**(web or {}), "listen": f"127.0.0.1:{port}"})
    live = settings.model_copy(update={"web": web_settings})
    engine = build_engine(live)
    health = Health(ami_up=True)
    view = LiveView(live, engine, health, clock=lambda: engine.now, others=others or [])
    view.sample()  # before the first event: "today" is the whole recording
    pipeline = Pipeline(engine)
    for name in recordings:
        replay_file(FIXTURES / name, pipeline)
    health.last_event_time = engine.last_event_time
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        store = make_engine(db if isinstance(db, str) else f"sqlite+aiosqlite:///{db}")
        console = WebConsole(live, view, store)
        holder["console"] = console
        holder["stop"] = asyncio.Event()
        await console.start()
        ready.set()
        await holder["stop"].wait()
        await console.stop()
        await store.dispose()

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except Exception as exc:  # noqa: BLE001  (raised again in the test)
            holder["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="console", daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in holder:
        raise holder["error"]
    wait_for_port(port, 10)
    try:
        yield Served(f"http://127.0.0.1:{port}", port, holder["console"])
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(15)
        loop.close()


#: header mode behind a "proxy" on loopback: the groups the tests use
ROLE_MAP = {
    "ops": ["operations"],
    "it": ["it"],
    "chief-soc": ["chief:socialtjanst"],
    "staff-soc": ["staff:socialtjanst"],
}


def header_web(trusted: list[str]) -> dict[str, Any]:
    return {"auth": {"mode": "header",
                     "header": {"trusted_proxies": trusted, "role_map": ROLE_MAP}}}  # fmt: skip


def as_group(group: str, user: str | None = None) -> dict[str, str]:
    """The headers the proxy sets for a user in ``group``."""
    return {"X-Forwarded-User": user or f"{group}-user", "X-Forwarded-Groups": group}
