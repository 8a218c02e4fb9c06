"""The browser harness on a static site (Python's http.server), so it is
tested without the console: Debian's Chromium starts through Playwright,
every page visited is screenshotted, and axe-core finds WCAG 2.1 A/AA
violations where there are some and none where there are none."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.harness import CHROMIUM, Shots, axe_violations, check_accessible

GOOD = """<!doctype html>
<html lang="sv"><head><meta charset="utf-8"><title>Väggtavla</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self'">
</head><body><main><h1>Väggtavla</h1>
<form><label for="q">Sök</label><input id="q" name="q"></form>
<p><a href="bad.html">Nästa sida</a></p></main></body></html>
"""

BAD = """<!doctype html>
<html><head><meta charset="utf-8"><title>Bad</title></head><body>
<img src="x.png">
<input name="unlabelled">
<p style="color:#bbbbbb;background:#ffffff">low contrast text</p>
</body></html>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text(GOOD, "utf-8")
    (root / "bad.html").write_text(BAD, "utf-8")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_debian_chromium(browser: Browser) -> None:
    assert CHROMIUM.exists()
    assert browser.browser_type.name == "chromium"
    assert int(browser.version.split(".")[0]) >= 100


def test_screenshot_of_every_page(site: str, shots: Shots, page: Page, artefacts: Path) -> None:
    page.goto(f"{site}/index.html")
    assert page.get_by_role("heading", name="Väggtavla").is_visible()
    shots.settle()  # its screenshot written before the page moves on (else there is none)
    page.get_by_role("link", name="Nästa sida").click()
    page.wait_for_url("**/bad.html")
    page.wait_for_load_state()
    shots.settle()
    urls = [url for url, _ in shots.taken]
    assert urls == [f"{site}/index.html", f"{site}/bad.html"], shots.errors
    for _, path in shots.taken:
        assert path.parent == artefacts
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 1000
    assert shots.visited == urls
    explicit = shots.snap("after")
    assert explicit.name.endswith("-after.png")
    assert explicit.exists()


def test_axe_finds_violations(site: str, page: Page, artefacts: Path) -> None:
    page.goto(f"{site}/bad.html")
    found = {v["id"]: v for v in check_accessible(page, artefacts, "bad")}
    assert {"image-alt", "label", "color-contrast", "html-has-lang"} <= set(found), found
    assert found["image-alt"]["nodes"][0]["target"] == ["img"]
    written = json.loads((artefacts / "axe-bad.json").read_text("utf-8"))
    assert written["url"] == f"{site}/bad.html"
    assert {v["id"] for v in written["violations"]} == set(found)
    # rules can be switched off one by one
    rest = {v["id"] for v in axe_violations(page, disable=("color-contrast",))}
    assert "color-contrast" not in rest
    assert "image-alt" in rest


def test_axe_clean_page_despite_csp(site: str, page: Page) -> None:
    """The good page forbids inline scripts; axe-core is injected anyway
    (the context bypasses CSP) and finds nothing."""
    page.goto(f"{site}/index.html")
    assert axe_violations(page) == []
    # injected once, run again
    assert axe_violations(page) == []
