"""The wallboard of a run that follows two PBXs, in a real Chromium: the
live render (SSE) keeps each PBX's queues apart, says which PBX each is
on, keeps to the PBX chosen (``?pbx=``), shows each PBX's AMI, and passes
axe-core.  No login (loopback), as the demo runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from pbxwatch.metrics.health import Health
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_file
from pbxwatch.settings import load_settings
from pbxwatch.web import LiveView
from tests.browser.harness import Shots, check_accessible, describe
from tests.conftest import FIXTURES
from tests.web.served import Served, lab_config, replay_into, serve


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("many-pbx-console")
    config = lab_config(tmp)
    replay_into(config, ("group_number_answered.ami",))
    settings = load_settings(config)
    engine = build_engine(settings)
    north = LiveView(settings, engine, Health(ami_up=False), clock=lambda: engine.now,
                     pbx="north")  # fmt: skip
    north.sample()
    replay_file(FIXTURES / "mixed_load.ami", Pipeline(engine))
    with serve(settings, tmp / "data" / "pbxwatch.db", recordings=("group_number_answered.ami",),
               others=[north]) as s:  # fmt: skip
        yield s


def _after_a_change(console: Served, page: Page, north_up: bool) -> list[str]:
    """North's AMI up or down: the live stream renders the table again
    (its health cell shows it); the rows it rendered."""
    console.console.view.others[0].health.ami_up = north_up
    expect(page.locator('[data-hp="north"]')).to_have_class("good" if north_up else "bad")
    rows: list[str] = page.eval_on_selector_all(
        "#queues tbody tr", "trs => trs.map(tr => tr.dataset.queue)"
    )
    return rows


def test_the_live_wallboard_keeps_pbxs_apart(
    console: Served, shots: Shots, page: Page, artefacts: Path
) -> None:
    page.goto(console.base + "/")
    expect(page.locator('[data-hp="north"]')).to_have_class("bad")  # north's AMI is down
    expect(page.locator("#ami-status")).to_be_visible()  # not every PBX is logged in
    rows = _after_a_change(console, page, north_up=True)
    expect(page.locator("#ami-status")).to_be_hidden()
    assert "kontaktcenter" in rows
    assert "north:kontaktcenter" in rows
    row = page.locator('#queues tr[data-queue="north:kontaktcenter"]')
    expect(row.locator(".pbx")).to_have_text("Växel north")
    expect(page.locator('[data-hp="main"]')).to_have_class("good")
    shots.snap("both")

    page.get_by_role("link", name="north", exact=True).click()
    page.wait_for_url("**/?pbx=north")
    rows = _after_a_change(console, page, north_up=False)  # rendered by the stream
    assert rows
    assert all(r.startswith("north:") for r in rows), rows
    expect(page.get_by_role("link", name="north", exact=True)).to_have_attribute(
        "aria-current", "page")  # fmt: skip
    shots.snap("north")
    found = check_accessible(page, artefacts, "wallboard-north")
    assert not found, describe(found)
