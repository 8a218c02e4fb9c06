"""Real Chromium for the browser tests: Debian's ``chromium`` driven by
Playwright (PyPI) through ``executable_path`` (never ``playwright install``),
a screenshot of every page a test visits saved as a test artefact, and
axe-core (npm, ``tests/browser/package.json``) injected into a page to list
its WCAG 2.1 A/AA violations.

Artefacts go to ``$PBXWATCH_ARTEFACTS`` (default ``test-artefacts/`` in the
checkout, git-ignored), one folder per test under ``browser/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
#: Debian's Chromium; PBXWATCH_CHROMIUM for another build
CHROMIUM = Path(os.environ.get("PBXWATCH_CHROMIUM", "/usr/bin/chromium"))
#: the axe-core tags of WCAG 2.0 and 2.1, levels A and AA
WCAG21_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
#: how long the screenshot of a page just loaded may take
SHOT_TIMEOUT_MS = 4000


def artefacts_root() -> Path:
    return Path(os.environ.get("PBXWATCH_ARTEFACTS") or ROOT / "test-artefacts")


def artefact_folder(nodeid: str) -> Path:
    """``browser/<the test's id as a file name>`` under the artefacts root,
    emptied."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.removeprefix("tests/browser/")).strip("_")
    folder = artefacts_root() / "browser" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def chromium_ready() -> str:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/debian-packages.sh installs chromium")
    if not AXE_JS.exists():
        pytest.fail("tests/browser/node_modules is missing: run scripts/npm-deps.sh")
    return str(CHROMIUM)


def _slug(url: str) -> str:
    parts = urlsplit(url)
    path = re.sub(r"[^A-Za-z0-9]+", "-", parts.path).strip("-") or "root"
    return f"{parts.port or parts.scheme}-{path}"[:80]


@dataclass
class Shots:
    """The screenshots of one page: one at every load of a document in the
    main frame (taken by the ``load`` handler), and those asked for with
    :meth:`snap`.  ``taken`` lists (url, file) in order."""

    page: Page
    folder: Path
    taken: list[tuple[str, Path]] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pending: int = 0

    def attach(self) -> None:
        self.page.on("load", self._on_load)
        self.page.on("framenavigated", self._on_navigated)
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _file(self, url: str, label: str) -> Path:
        n = len(self.taken) + self.pending
        return self.folder / f"{n:02d}-{_slug(url)}{'-' + label if label else ''}.png"

    def _on_navigated(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.visited.append(frame.url)

    def _on_load(self, page: Page) -> None:
        url = page.url
        path = self._file(url, "")
        self.pending += 1
        try:
            # short: a screenshot still taken when the next navigation comes may hang
            page.screenshot(path=path, full_page=True, timeout=SHOT_TIMEOUT_MS)
            self.taken.append((url, path))
        except Exception as exc:  # noqa: BLE001  (the page moved on meanwhile: no shot)
            self.errors.append(f"screenshot of {url}: {exc}")
        finally:
            self.pending -= 1

    def snap(self, label: str = "") -> Path:
        """A full-page screenshot now (after the document has loaded)."""
        self.page.wait_for_load_state()
        url = self.page.url
        path = self._file(url, re.sub(r"[^A-Za-z0-9_-]+", "-", label))
        self.page.screenshot(path=path, full_page=True)
        self.taken.append((url, path))
        return path

    def settle(self, timeout_ms: int = SHOT_TIMEOUT_MS + 500) -> None:
        """Until the load handlers' screenshots are written (call it before
        moving on from a page whose screenshot must be there)."""
        waited = 0
        while self.pending and waited < timeout_ms:
            self.page.wait_for_timeout(50)
            waited += 50


def axe_violations(
    page: Page, *, tags: tuple[str, ...] = WCAG21_AA, disable: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """axe-core's violations of ``tags`` (default WCAG 2.1 A and AA) on the
    page as it is now: each with ``id``, ``impact``, ``help`` and ``nodes``
    (``target`` selectors and ``html``).  axe-core is injected when the
    page does not have it yet (the browser context bypasses the page's
    Content-Security-Policy for that)."""
    page.wait_for_load_state()
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    options = {
        "runOnly": {"type": "tag", "values": list(tags)},
        "rules": {rule: {"enabled": False} for rule in disable},
        "resultTypes": ["violations"],
    }
    result: dict[str, Any] = page.evaluate(
        "async (options) => JSON.parse(JSON.stringify(await axe.run(document, options)))", options
    )
    return [
        {
            "id": v["id"],
            "impact": v.get("impact"),
            "help": v["help"],
            "helpUrl": v.get("helpUrl"),
            "nodes": [{"target": n["target"], "html": n["html"]} for n in v["nodes"]],
        }
        for v in result["violations"]
    ]


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        lines.extend(f"    {n['target']}: {n['html'][:160]}" for n in v["nodes"][:5])
    return "\n".join(lines)


def check_accessible(page: Page, folder: Path, name: str = "", **kw: Any) -> list[dict[str, Any]]:
    """The axe violations of the page, also written to ``folder`` as JSON
    (``axe-<name>.json``) beside the screenshots."""
    violations = axe_violations(page, **kw)
    label = name or _slug(page.url)
    (folder / f"axe-{label}.json").write_text(
        json.dumps({"url": page.url, "violations": violations}, indent=2, ensure_ascii=False),
        "utf-8",
    )
    return violations
