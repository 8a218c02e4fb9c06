"""A known call of a shared recording, found by the search and its
timeline told right, against the recording's truth (made by the lab's
driver and phone simulator, not from the AMI stream)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pbxwatch.settings import Settings
from tests.conftest import ROOT
from tests.web.served import Served, as_group, header_web, serve

NAME = "unanswered_to_voicemail_not_forwarded.truth.json"
TRUTH = ROOT.parent / "shared" / "ami-recordings" / NAME
if not TRUTH.exists():  # the copy kept with the fixtures
    TRUTH = ROOT / "tests" / "fixtures" / "ami" / NAME


@pytest.fixture(scope="module")
def console(replayed: tuple[Settings, Path]) -> Iterator[Served]:
    with serve(*replayed, web=header_web(["127.0.0.1"])) as s:
        yield s


@pytest.fixture(scope="module")
def truth() -> dict[str, Any]:
    call: dict[str, Any] = json.loads(TRUTH.read_text(encoding="utf-8"))["calls"][0]
    return call


def ops(s: Served, path: str, **params: str) -> httpx.Response:
    return httpx.get(s.base + path, params=params, headers=as_group("ops"))


def test_the_known_call_is_found_and_its_timeline_is_right(
    console: Served, truth: dict[str, Any]
) -> None:
    seen = truth["observed_by_simulator"]
    expected = truth["expected"]
    leg = seen["legs"][0]
    origin = dt.datetime.fromtimestamp(seen["originated_t"], dt.UTC)
    window = {"start": (origin - dt.timedelta(minutes=1)).isoformat(),
              "end": (origin + dt.timedelta(minutes=1)).isoformat()}  # fmt: skip
    by_caller = ops(console, "/api/v1/calls", caller=truth["caller_number"], **window).json()
    by_ext = ops(console, "/api/v1/calls", extension=expected["extension"],
                 outcome="voicemail", **window).json()  # fmt: skip
    by_unit = ops(console, "/api/v1/calls", unit="socialtjanst", target="1002", **window).json()
    assert by_caller["total"] == by_ext["total"] == by_unit["total"] == 1
    call = by_caller["calls"][0]
    assert call == by_ext["calls"][0] == by_unit["calls"][0]
    assert call["caller"] == truth["caller_number"]
    assert call["dialled"] == truth["dialled_number"]
    assert call["target"] == expected["extension"]
    assert call["outcome"] == "voicemail"
    assert call["voicemail_mailbox"] == expected["voicemail"]["mailbox"]
    assert call["answered_by"] is None

    detail = ops(console, f"/api/v1/calls/{call['call_id']}").json()
    rings = detail["rings"]
    assert [r["extension"] for r in rings] == expected["phones_expected_to_ring"]
    assert rings[0]["result"] == "no_answer"
    assert abs(rings[0]["seconds"] - (leg["ended_t"] - leg["rang_t"])) < 1.0
    kinds = [s["kind"] for s in detail["timeline"]]
    assert kinds == ["entry", "ring", "voicemail", "hangup"]
    assert detail["classification"] == "missing_forward"
    assert detail["why"] == ("saknad hänvisning: ringde 1002 i 20 s, ingen hänvisning satt, "
                             "hamnade i röstbrevlådan")  # fmt: skip
    assert {i["kind"] for i in detail["incidents"]} == {"missing_forward", "unanswered_ring"}
    ring_text = detail["timeline"][1]["text"]
    assert ring_text.startswith("Ringde 1002 (Erik Öberg) i 20 s")
    end = dt.datetime.fromisoformat(detail["timeline"][-1]["at"]).timestamp()
    assert abs(end - seen["caller_ended_t"]) < 1.0

    english = ops(console, f"/api/v1/calls/{call['call_id']}", lang="en").json()
    assert english["why"] == ("missing forward: rang 1002 for 20 s, no diversion set, "
                              "landed in voicemail")  # fmt: skip
    page = httpx.get(console.base + f"/calls/{call['call_id']}?lang=en",
                     headers=as_group("ops")).text  # fmt: skip
    assert "missing forward: rang 1002 for 20 s, no diversion set, landed in voicemail" in page
    assert "Rang 1002 (Erik Öberg) for 20 s" in page
    assert '<html lang="en">' in page


def test_the_search_page_finds_it_by_the_masked_digits(console: Served) -> None:
    r = httpx.get(console.base + "/calls", params={"caller": "+4670*****78", "extension": "1002"},
                  headers=as_group("ops"))  # fmt: skip
    assert r.status_code == 200
    assert "/calls/1795413316.64" in r.text
    assert re.search(r'<p role="status">\d+ samtal</p>', r.text)  # the mask fits a few
    for label in ("f-start", "f-end", "f-unit", "f-target", "f-outcome", "f-ext", "f-caller"):
        assert f'<label for="{label}">' in r.text  # every field has its label


def test_calls_are_paginated(console: Served) -> None:
    first = ops(console, "/api/v1/calls", limit="10").json()
    second = ops(console, "/api/v1/calls", limit="10", offset="10").json()
    assert first["total"] == second["total"] > 20
    assert first["next_offset"] == 10
    assert not {c["call_id"] for c in first["calls"]} & {c["call_id"] for c in second["calls"]}
    starts = [c["started_at"] for c in first["calls"] + second["calls"]]
    assert starts == sorted(starts, reverse=True)
