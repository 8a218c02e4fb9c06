"""``web.auth.mode: none``: loopback only, every page says so in a banner,
the viewer acts as operations; Swedish first, English by ``?lang=en``
(remembered in a cookie)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pbxwatch.settings import Settings
from tests.web.served import Served, serve

PAGES = ("/", "/calls", "/calls/1795413316.64", "/incidents", "/audit")


@pytest.fixture(scope="module")
def console(replayed: tuple[Settings, Path]) -> Iterator[Served]:
    with serve(*replayed) as s:
        yield s


@pytest.mark.parametrize("path", PAGES)
def test_every_page_shows_the_no_login_banner(console: Served, path: str) -> None:
    r = httpx.get(console.base + path)
    assert r.status_code == 200
    assert "ingen inloggning — endast lokalt" in r.text
    assert '<html lang="sv">' in r.text
    assert "<script>" not in r.text  # no inline script (the CSP forbids it anyway)
    en = httpx.get(console.base + path, params={"lang": "en"})
    assert "no login — loopback only" in en.text
    assert '<html lang="en">' in en.text


def test_the_language_is_remembered(console: Served) -> None:
    with httpx.Client(base_url=console.base) as client:
        client.get("/", params={"lang": "en"})
        assert "Wallboard" in client.get("/calls").text
        client.get("/", params={"lang": "sv"})
        assert "Väggtavla" in client.get("/calls").text


def test_the_wallboard_and_the_api_agree(console: Served) -> None:
    queues = httpx.get(console.base + "/api/v1/queues").json()
    assert [q["queue"] for q in queues] == ["bygglov", "kontaktcenter"]
    page = httpx.get(console.base + "/").text
    for q in queues:
        assert f'data-queue="{q["queue"]}"' in page
        assert re.search(rf'data-k="answered"[^>]*>{q["answered_today"]}</td>', page)
    assert sum(q["answered_today"] for q in queues) > 0
    health = httpx.get(console.base + "/api/v1/health").json()
    assert health["ami_up"] is True
    assert health["last_event_at"] is not None


def test_the_wallboard_is_live_over_sse(console: Served) -> None:
    with httpx.stream("GET", console.base + "/events", timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        text = ""
        for chunk in r.iter_text():
            text += chunk
            if "event: wallboard" in text and text.endswith("\n\n"):
                break
    assert '"queues": [{"queue": "bygglov"' in text
    assert '"ami_up": true' in text
    assert httpx.get(console.base + "/static/live.js").status_code == 200


def test_no_docs_page_loads_anything_from_a_cdn(console: Served) -> None:
    assert httpx.get(console.base + "/docs").status_code == 404
    assert httpx.get(console.base + "/api/v1/openapi.json").json()["info"]["title"]
