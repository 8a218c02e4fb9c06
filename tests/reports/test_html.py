"""The HTML report page in real Chromium, like the console: opened from the
file ``pbxwatch report --format html --out`` wrote, screenshotted (artefacts
by the browser harness), axe-core's WCAG 2.1 A/AA check clean, and the
figures a reader sees equal to the JSON report's."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page

from pbxwatch.settings import Settings
from tests.browser.harness import Shots, check_accessible, describe
from tests.conftest import LAB_CONFIG
from tests.reports.year import YEAR, fill_store, sample_days
from tests.services import pbxwatch

ARGS = ["--from", f"{YEAR}-01-01", "--to", f"{YEAR}-12-31", "--now", f"{YEAR + 1}-01-20T12:00"]


@pytest.fixture(scope="module")
def reports(lab_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The HTML reports (Swedish, English, every unit) of a sampled year,
    and the JSON one; made before Playwright's loop is open."""
    tmp = tmp_path_factory.mktemp("html")
    days = sample_days(YEAR - 1, 1) + sample_days(YEAR, 1)
    settings = asyncio.run(fill_store(lab_settings, tmp, days, calls_per_hour=10))
    raw = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    raw["storage"] = {"url": settings.storage.url, "data_dir": str(tmp)}
    config = tmp / "pbxwatch.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    out: dict[str, Path] = {}
    for name, extra in {
        "sv": ["--unit", "socialtjanst", "--format", "html"],
        "en": ["--unit", "socialtjanst", "--format", "html", "--lang", "en"],
        "all": ["--unit", "all", "--format", "html"],
        "json": ["--unit", "socialtjanst", "--format", "json"],
    }.items():
        out[name] = tmp / f"report-{name}.{'json' if name == 'json' else 'html'}"
        done = subprocess.run(
            pbxwatch("report", "--config", str(config), *extra, *ARGS, "--out", str(out[name])),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("which", ["sv", "en", "all"])
def test_report_page_in_chromium(
    reports: dict[str, Path], which: str, shots: Shots, page: Page, artefacts: Path
) -> None:
    page.goto(reports[which].as_uri())
    shots.snap(which)
    page.screenshot(path=artefacts / f"report-{which}-full.png", full_page=True)
    violations = check_accessible(page, artefacts, f"report-{which}")
    assert violations == [], describe(violations)
    assert shots.errors == []
    assert page.locator("svg[role=img]").count() >= 4
    assert page.evaluate("() => document.scripts.length") <= 1  # axe-core's own, nothing else
    if which == "all":
        assert page.locator("section.unit").count() == 4
        assert page.locator("table.compare thead th").count() == 5


def test_figures_seen_equal_the_json(reports: dict[str, Path], page: Page) -> None:
    doc = json.loads(reports["json"].read_text(encoding="utf-8"))
    page.goto(reports["sv"].as_uri())
    rows = page.locator("table.figures tbody tr")
    cells = {
        rows.nth(i).locator("td").nth(0).inner_text().strip(): [
            rows.nth(i).locator("td").nth(k).inner_text() for k in (1, 2)
        ]
        for i in range(rows.count())
    }
    f, p = doc["figures"], doc["previous"]["figures"]
    assert cells["Inkommande samtal"] == [str(f["offered"]), str(p["offered"])]
    assert cells["Röstmeddelanden"] == [str(f["voicemail_messages"]), str(p["voicemail_messages"])]
    pct = [f"{100 * v['availability']:.1f} %".replace(".", ",") for v in (f, p)]
    assert cells["Tillgänglighet"] == pct
    assert page.locator("h1").inner_text() == "Uppföljning av telefonservice"
    assert page.locator("html").get_attribute("lang") == "sv"
