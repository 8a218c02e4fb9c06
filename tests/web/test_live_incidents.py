"""The incidents feed, live: ``/events/incidents`` sends the newest
incidents of the viewer's units as the API has them, and again within a
few seconds of a new one reaching the store."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pbxwatch.settings import Settings
from tests.web.served import Served, serve


@pytest.fixture
def console(replayed: tuple[Settings, Path], tmp_path: Path) -> Iterator[tuple[Served, Path]]:
    settings, db = replayed
    mine = tmp_path / "pbxwatch.db"  # this test writes into its store
    shutil.copy(db, mine)
    with serve(settings, mine) as s:
        yield s, mine


def _events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: "))


def test_the_feed_is_the_api_s_and_a_new_incident_shows_within_seconds(
    console: tuple[Served, Path],
) -> None:
    s, db = console
    api = httpx.get(s.base + "/api/v1/incidents?limit=100").json()["incidents"]
    with httpx.stream("GET", s.base + "/events/incidents", timeout=15) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = _events(r.iter_lines())
        name, first = next(events)
        assert name == "incidents"
        assert [i["incident_id"] for i in first] == [i["incident_id"] for i in api]
        newest = max((i["started_at"] for i in first), default=None)
        with sqlite3.connect(db) as conn:  # as the store writer would write one
            at = conn.execute("SELECT max(started_at) FROM incidents").fetchone()[0] or 0.0
            conn.execute(
                "INSERT INTO incidents (incident_id, kind, state, started_at, unit, extension,"
                " details) VALUES (?, ?, ?, ?, ?, ?, ?)",
                ("test:live", "unanswered_ring", "open", at + 60, "socialtjanst", "1002", "{}"),
            )
        written = time.monotonic()
        name, again = next(events)
        assert name == "incidents"
        assert time.monotonic() - written < 5.0
        assert again[0]["incident_id"] == "test:live"
        assert newest is None or again[0]["started_at"] > newest
