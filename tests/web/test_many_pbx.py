"""The console of a run that follows several PBXs: the wallboard and
``/api/v1/queues`` have every PBX's queues, each saying its PBX (``id`` is
unique over them: ``<pbx>:<queue>`` for a PBX other than ``main``), a PBX
can be chosen (``?pbx=``), and the health says each PBX's AMI, with
``ami_up`` only while every PBX is logged in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pbxwatch.metrics.health import Health
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_file
from pbxwatch.settings import Settings
from pbxwatch.web import LiveView
from tests.conftest import FIXTURES
from tests.web.served import Served, serve


@pytest.fixture(scope="module")
def console(replayed: tuple[Settings, Path]) -> Iterator[Served]:
    settings, db = replayed
    engine = build_engine(settings)
    north = LiveView(settings, engine, Health(ami_up=False), clock=lambda: engine.now,
                     pbx="north")  # fmt: skip
    north.sample()  # before the first event: "today" is the whole recording
    replay_file(FIXTURES / "mixed_load.ami", Pipeline(engine))
    with serve(settings, db, others=[north]) as s:
        yield s


def test_every_pbx_has_its_queues(console: Served, replayed: tuple[Settings, Path]) -> None:
    settings, _ = replayed
    queues = httpx.get(console.base + "/api/v1/queues").json()
    names = sorted(settings.directory.queues)
    assert [(q["pbx"], q["queue"]) for q in queues] == [
        *(("main", n) for n in names), *(("north", n) for n in names)]  # fmt: skip
    assert [q["id"] for q in queues if q["pbx"] == "north"] == [f"north:{n}" for n in names]
    # north was fed a day of calls, main only the queue test's two recordings
    north = {q["queue"]: q for q in queues if q["pbx"] == "north"}
    assert north["kontaktcenter"]["answered_today"] > 0
    only = httpx.get(console.base + "/api/v1/queues", params={"pbx": "north"}).json()
    assert only == [q for q in queues if q["pbx"] == "north"]


def test_the_wallboard_shows_and_chooses_pbxs(console: Served) -> None:
    page = httpx.get(console.base + "/").text
    rows = re.findall(r'<tr data-queue="([^"]+)"', page)
    assert "north:kontaktcenter" in rows
    assert "kontaktcenter" in rows
    assert 'href="?pbx=north"' in page
    chosen = httpx.get(console.base + "/", params={"pbx": "north"}).text
    rows = re.findall(r'<tr data-queue="([^"]+)"', chosen)
    assert rows
    assert all(r.startswith("north:") for r in rows)
    assert httpx.get(console.base + "/", params={"pbx": "south"}).status_code == 404


def test_the_health_says_each_pbx(console: Served) -> None:
    h = httpx.get(console.base + "/api/v1/health").json()
    assert [(p["pbx"], p["ami_up"]) for p in h["pbxs"]] == [("main", True), ("north", False)]
    assert h["ami_up"] is False  # north is not logged in
    page = httpx.get(console.base + "/").text
    assert 'data-hp="north" class="bad"' in page
    assert re.search(r'<div id="ami-status" class="banner down" role="alert"\s*>', page)
