"""The unit's page and its report page in real Chromium: a console (uvicorn,
header login as a unit's chief) over the simulated day of
``tests/web/test_units.py`` (cut at 17:30, Sara Ek on vacation); every page
screenshotted (artefacts under ``test-artefacts/browser/``), axe-core's
WCAG 2.1 A/AA check clean, in Swedish and English; the deferred message and
the overdue ones seen; the report page's charts and its linked sheet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.harness import Shots, check_accessible, describe
from tests.web.served import Served, as_group, serve
from tests.web.test_units import WEB, fill_day


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings, db, recording = fill_day(tmp_path_factory.mktemp("units-browser"))
    with serve(settings, db, web=WEB, recordings=(str(recording),)) as s:
        yield s


def _clean(page: Page, artefacts: Path, name: str) -> None:
    violations = check_accessible(page, artefacts, name)
    assert violations == [], describe(violations)


def test_unit_page_and_report_page(
    console: Served, shots: Shots, page: Page, artefacts: Path
) -> None:
    page.set_extra_http_headers(as_group("chief-it"))
    page.goto(f"{console.base}/units/it-support")
    shots.snap("unit-sv")
    _clean(page, artefacts, "unit-sv")
    assert page.locator("h1").inner_text() == "IT-support"
    deferred = page.locator("#deferred tbody tr")
    assert deferred.count() > 0
    assert "Semester till 1 december" in deferred.first.inner_text()
    assert "förfaller efter återkomsten" in deferred.first.inner_text()
    assert page.locator("nav a[aria-current=page]").inner_text() == "Enheter"
    shots.settle()  # the load's screenshot written before the next page
    page.goto(f"{console.base}/units/it-support?lang=en")
    shots.snap("unit-en")
    _clean(page, artefacts, "unit-en")
    assert "due after the return" in page.locator("#deferred").inner_text()
    shots.settle()
    page.goto(f"{console.base}/units/it-support?lang=sv")
    shots.settle()
    page.locator("#report-link").click()
    page.wait_for_url("**/units/it-support/report?**")
    shots.snap("report-sv")
    _clean(page, artefacts, "report-sv")
    assert page.locator("svg[role=img]").count() >= 4
    # the linked sheet is applied: the report's headings in its blue
    color = page.evaluate("() => getComputedStyle(document.querySelector('h2')).color")
    assert color == "rgb(31, 95, 153)"
    shots.settle()
    assert shots.errors == []


def test_socialtjanst_page_overdue_and_masked(
    console: Served, shots: Shots, page: Page, artefacts: Path
) -> None:
    page.set_extra_http_headers(as_group("chief-soc"))
    page.clock.install()
    page.goto(f"{console.base}/units/socialtjanst")
    shots.snap("socialtjanst")
    _clean(page, artefacts, "socialtjanst")
    overdue = page.locator("#overdue tbody tr")
    assert overdue.count() > 0
    assert "*" in overdue.first.locator("td").first.inner_text()  # masked
    countdown = overdue.first.locator("td.countdown")
    before = int(countdown.inner_text().split()[0])
    page.clock.fast_forward("30:00")  # the countdown ticks on: 30 min later
    assert countdown.inner_text() in (f"{before + 30} min sen", f"{before + 29} min sen")
    assert page.locator("#figures tbody tr").count() >= 8
    shots.settle()
    page.goto(f"{console.base}/units/bygglov")
    assert page.locator("h1").inner_text() == "Du har inte behörighet till den här sidan."
    shots.settle()
    assert shots.errors == []


def test_operations_list_of_units(
    console: Served, shots: Shots, page: Page, artefacts: Path
) -> None:
    page.set_extra_http_headers(as_group("ops"))
    page.goto(f"{console.base}/units?lang=en")
    shots.snap("units-en")
    _clean(page, artefacts, "units-en")
    assert page.locator("#units li").count() == 5  # four units and the municipality's report
    shots.settle()
    page.get_by_role("link", name="Bygglov", exact=True).click()
    page.wait_for_url("**/units/bygglov")
    assert page.locator("h1").inner_text() == "Bygglov"
    _clean(page, artefacts, "bygglov-en")
    shots.settle()
    assert shots.errors == []
