"""Fixtures of the browser tests: one Chromium per worker, and for each test
a fresh browser context whose page screenshots every document it loads into
the test's artefact folder (see :mod:`tests.browser.harness`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.browser.harness import Shots, artefact_folder, chromium_ready
from tests.oidc.harness import oidc_provider_factory  # noqa: F401  (a fixture)


# Module scope, not session: Playwright's sync API runs an event loop in
# this thread while it is open, and a test after it on the same worker that
# calls asyncio.run() would find a loop running ("cannot be called from a
# running event loop").  Each browser test file starts its own Chromium.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=chromium_ready(), headless=True)
    yield chromium
    chromium.close()


@pytest.fixture
def artefacts(request: pytest.FixtureRequest) -> Path:
    """This test's artefact folder (emptied at its start)."""
    return artefact_folder(request.node.nodeid)


@pytest.fixture
def shots(browser: Browser, artefacts: Path) -> Iterator[Shots]:
    """A page in a fresh context (1280x800, Swedish, the page's CSP bypassed
    so axe-core can be injected) whose every load is screenshotted; a last
    screenshot when the test ends.  ``shots.page`` is the page."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="sv-SE", bypass_csp=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    recorder = Shots(page, artefacts)
    recorder.attach()
    try:
        yield recorder
    finally:
        recorder.settle()
        if not page.is_closed() and page.url != "about:blank":
            recorder.snap("end")
        context.close()


@pytest.fixture
def page(shots: Shots) -> Page:
    return shots.page
