"""Who sees what: ``it`` never a caller number (pages, API, SSE);
``chief:socialtjanst`` and ``staff:socialtjanst`` only Socialtjänst, with
numbers masked (the lab unit has no ``show_caller_numbers``);
``operations`` everything, each sight of numbers in clear in the audit log."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pbxwatch.core.numbers import mask
from pbxwatch.settings import Settings
from tests.web.served import KNOWN_E164, Served, as_group, header_web, serve

PAGES = ("/", "/calls", "/calls/1795413316.64", "/incidents", "/audit", "/?lang=en")
API = ("/api/v1/queues", "/api/v1/health", "/api/v1/calls", "/api/v1/calls?limit=200",
       "/api/v1/calls/1795413316.64", "/api/v1/incidents?limit=200", "/api/v1/audit",
       "/api/v1/openapi.json")  # fmt: skip


@pytest.fixture(scope="module")
def console(replayed: tuple[Settings, Path]) -> Iterator[Served]:
    with serve(*replayed, web=header_web(["127.0.0.1"])) as s:
        yield s


@pytest.fixture(scope="module")
def numbers(replayed: tuple[Settings, Path]) -> set[str]:
    """Every caller number in the store, as dialled and in E.164."""
    with sqlite3.connect(replayed[1]) as db:
        rows = db.execute("SELECT caller, caller_e164 FROM calls WHERE direction = 'inbound'")
        found = {n for row in rows for n in row if n and len(n) > 5}
    assert len(found) > 100
    return found


def fetch(s: Served, path: str, group: str, **params: str) -> httpx.Response:
    return httpx.get(
        s.base + path, headers=as_group(group), params=params or None, follow_redirects=False
    )


def first_event(s: Served, group: str) -> str:
    with httpx.stream("GET", s.base + "/events", headers=as_group(group), timeout=10) as r:
        assert r.status_code == 200
        text = ""
        for chunk in r.iter_text():
            text += chunk
            if "event: wallboard" in text and text.endswith("\n\n"):
                return text
    raise AssertionError("no wallboard event")


def no_numbers(text: str, numbers: set[str]) -> None:
    for n in numbers:
        assert n not in text
        assert mask(n) not in text  # not even masked
    digits = re.findall(r"\+?\d[\d*]{8,}", text)
    assert not [d for d in digits if "*" in d or d.startswith(("+46", "07"))], digits


def test_it_never_sees_a_caller_number(console: Served, numbers: set[str]) -> None:
    assert fetch(console, "/", "it").status_code == 200
    assert fetch(console, "/api/v1/health", "it").status_code == 200
    for path in (*PAGES, *API):
        r = fetch(console, path, "it")
        assert r.status_code in (200, 403), (path, r.status_code)
        no_numbers(r.text, numbers)
    for path in ("/calls", "/incidents", "/audit", "/api/v1/calls", "/api/v1/calls/x",
                 "/api/v1/incidents", "/api/v1/audit"):  # fmt: skip
        assert fetch(console, path, "it").status_code == 403, path
    no_numbers(first_event(console, "it"), numbers)


@pytest.mark.parametrize("group", ["chief-soc", "staff-soc"])
def test_socialtjanst_sees_only_socialtjanst(
    console: Served, replayed: tuple[Settings, Path], numbers: set[str], group: str
) -> None:
    with sqlite3.connect(replayed[1]) as db:
        expected = db.execute("SELECT count(*) FROM calls WHERE unit = 'socialtjanst'").fetchone()
        other = db.execute("SELECT call_id FROM calls WHERE unit = 'bygglov' LIMIT 1").fetchone()
    calls = fetch(console, "/api/v1/calls?limit=200", group).json()
    assert calls["total"] == expected[0]
    assert {c["unit"] for c in calls["calls"]} == {"socialtjanst"}
    assert {c["numbers"] for c in calls["calls"]} == {"masked"}
    incidents = fetch(console, "/api/v1/incidents?limit=200", group).json()["incidents"]
    assert incidents
    assert {i["unit"] for i in incidents} == {"socialtjanst"}
    # the lab's queues are kontaktcenter's and bygglov's: none is Socialtjänst's
    assert fetch(console, "/api/v1/queues", group).json() == []
    assert fetch(console, "/api/v1/health", group).status_code == 403
    assert fetch(console, f"/api/v1/calls/{other[0]}", group).status_code == 404
    assert fetch(console, f"/calls/{other[0]}", group).status_code == 404
    assert fetch(console, "/api/v1/calls?unit=bygglov", group).json()["total"] == 0
    for path in ("/", "/calls", "/incidents", "/api/v1/calls?limit=200",
                 "/api/v1/calls/1795413316.64"):  # fmt: skip
        r = fetch(console, path, group)
        assert r.status_code == 200, path
        for other_unit in (
            "Bygglov",
            "IT-support",
            '"unit":"bygglov"',
            '"unit":"it-support"',
            '"unit":null',
        ):
            assert other_unit not in r.text, (path, other_unit)
        for n in numbers:
            assert n not in r.text, path  # masked, never in clear
    wallboard = fetch(console, "/", group).text
    assert "data-queue=" not in wallboard
    # the masked form is searchable, the clear number is not (no oracle)
    masked = mask(KNOWN_E164)
    found = fetch(console, "/api/v1/calls", group, caller=masked).json()
    assert any(c["caller_e164"] == masked for c in found["calls"])
    assert fetch(console, "/api/v1/calls", group, caller=KNOWN_E164).status_code == 400
    assert fetch(console, "/api/v1/calls", group, caller="702345678").status_code == 400
    assert fetch(console, "/api/v1/audit", group).status_code == 403


def test_operations_sees_numbers_and_the_audit_log_says_so(console: Served) -> None:
    before = fetch(console, "/api/v1/audit?limit=200", "ops").json()["total"]
    detail = fetch(console, "/api/v1/calls/1795413316.64", "ops").json()
    assert detail["call"]["caller_e164"] == KNOWN_E164
    assert detail["call"]["numbers"] == "clear"
    page = fetch(console, "/calls?extension=1002", "ops")
    assert KNOWN_E164 in page.text
    audit = fetch(console, "/api/v1/audit?limit=200", "ops").json()
    assert audit["total"] >= before + 2
    mine = [e for e in audit["entries"] if e["user"] == "ops-user"]
    assert {"call 1795413316.64", "calls"} <= {e["what"] for e in mine}
    assert {e["unit"] for e in mine if e["what"] == "call 1795413316.64"} == {"socialtjanst"}
    html = fetch(console, "/audit", "ops").text
    assert "ops-user" in html
    assert "call 1795413316.64" in html


def test_the_live_incidents_feed_follows_the_roles(console: Served) -> None:
    """``/events/incidents``: not for ``it``; a unit's chief gets the unit's
    incidents only (those without a unit aside), as the API gives them."""
    assert fetch(console, "/events/incidents", "it").status_code == 403
    with httpx.stream("GET", console.base + "/events/incidents", headers=as_group("chief-soc"),
                      timeout=10) as r:  # fmt: skip
        assert r.status_code == 200
        data = next(line for line in r.iter_lines() if line.startswith("data: ["))
    feed = json.loads(data.removeprefix("data: "))
    api = fetch(console, "/api/v1/incidents", "chief-soc", limit="100").json()["incidents"]
    assert [i["incident_id"] for i in feed] == [i["incident_id"] for i in api]
    assert {i["unit"] for i in feed} <= {"socialtjanst", None}
