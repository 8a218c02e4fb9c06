"""The browser harness's fixtures (``tests/browser``) for the HTML report's
page test: real Chromium, screenshots as artefacts, axe-core."""

from tests.browser.conftest import artefacts, browser, page, playwright, shots  # noqa: F401
