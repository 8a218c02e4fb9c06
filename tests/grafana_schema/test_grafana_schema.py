"""The generated dashboards type-check against Grafana 11's dashboard schema:
``@grafana/schema`` 11 (the TypeScript types Grafana generates from its
CUE schema) with ``tsc --strict``, one ``const board: Dashboard = <json>``
per dashboard.  The npm packages are pinned in this folder's
package-lock.json and installed into .venv/grafana-schema by
scripts/grafana-schema.sh (run by scripts/test.sh); only these tests are
skipped without node.  Beside it, what issue 19 asked of the boards: a
description and a unit on every panel, thresholds from the configuration's
targets, a per-unit table."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pbxwatch.settings import Settings
from tests.grafana import generator

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "config" / "grafana" / "dashboards"
NPM = ROOT / ".venv" / "grafana-schema"
TSC = NPM / "node_modules" / ".bin" / "tsc"


def typescript(board: dict[str, object]) -> str:
    """The dashboard as a typed constant.  A TypeScript string enum takes no
    plain string, so the one enum-typed field the boards use (thresholds'
    ``mode``) is written as the enum member of the same value."""
    body = json.dumps(board, indent=2, ensure_ascii=False)
    body = body.replace('"mode": "absolute"', '"mode": ThresholdsMode.Absolute')
    return (
        'import { type Dashboard, ThresholdsMode } from "@grafana/schema";\n\n'
        f"export const board: Dashboard = {body};\n"
    )


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A folder beside node_modules, so ``@grafana/schema`` resolves."""
    if shutil.which("node") is None:
        message = "node missing: the Grafana 11 schema check needs node and npm"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them (scripts/debian-packages.sh): never skip there
        pytest.skip(message)
    if not TSC.exists():
        pytest.fail("typescript missing: run scripts/grafana-schema.sh (scripts/test.sh does)")
    path = Path(tempfile.mkdtemp(prefix="check-", dir=NPM))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def tsc(workdir: Path, boards: dict[str, dict[str, object]]) -> subprocess.CompletedProcess[str]:
    files = []
    for name, board in boards.items():
        path = workdir / (Path(name).stem.replace("-", "_") + ".ts")
        path.write_text(typescript(board), encoding="utf-8")
        files.append(str(path))
    args = [str(TSC), "--strict", "--noEmit", "--target", "es2022", "--module", "esnext",
            "--moduleResolution", "bundler", *files]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def shipped() -> dict[str, dict[str, object]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in BOARDS.glob("*.json")}


def test_every_dashboard_is_a_grafana_11_dashboard(workdir: Path) -> None:
    boards = shipped()
    assert len(boards) == 3
    done = tsc(workdir, boards)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_check_rejects_what_grafana_11_rejects(workdir: Path) -> None:
    """The faults the issue found: a datasource variable with ``current: {}``
    and a query variable with ``definition``."""
    board = shipped()["telephony-service.json"]
    variables = board["templating"]["list"]  # type: ignore[index]
    variables[0]["current"] = {}
    variables[1]["definition"] = "label_values(pbxwatch_calls_total, unit)"
    done = tsc(workdir, {"bad.json": board})
    assert done.returncode != 0
    assert "'VariableOption'" in done.stdout
    assert "does not exist in type 'VariableModel'" in done.stdout  # definition


# ------------------------------------------------- what the issue asked of the boards


def _panels() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, board in shipped().items():
        for panel in board["panels"]:  # type: ignore[attr-defined]
            yield f"{name} / {panel['title']}", panel


def test_every_panel_has_a_description_and_a_unit() -> None:
    for where, panel in _panels():
        assert panel["description"].strip(), where
        assert panel["fieldConfig"]["defaults"]["unit"], where
        if panel["type"] == "table":
            for override in panel["fieldConfig"]["overrides"]:
                assert override["properties"][0]["id"] == "unit", where


def test_no_variable_grafana_11_rejects() -> None:
    for name, board in shipped().items():
        for var in board["templating"]["list"]:  # type: ignore[index]
            assert "definition" not in var, name
            assert var.get("current", {"text": "x"}) != {}, name


def test_thresholds_come_from_the_configured_targets(lab_settings: Settings) -> None:
    targets = lab_settings.targets.model_copy(update={"availability": 0.9,
                                                      "service_level": 0.7})  # fmt: skip
    boards = generator().dashboards(lab_settings.model_copy(update={"targets": targets}))

    def steps(board: str, title: str) -> list[Any]:
        panel = next(p for p in boards[board]["panels"] if p["title"] == title)
        return [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]

    assert steps("telephony-service.json", "Availability by unit") == [None, 0.9]
    assert steps("live-queues.json", "Service level") == [None, 0.7]
    table = next(p for p in boards["telephony-service.json"]["panels"] if p["type"] == "table")
    columns = {o["matcher"]["options"]: o["properties"][1]["value"]["steps"]
               for o in table["fieldConfig"]["overrides"]}  # fmt: skip
    assert [s["value"] for s in columns["Availability"]] == [None, 0.9]
    assert len(table["targets"]) == len(columns)  # one column per figure, one row per unit
    assert all(re.search(r"by \((le, )?unit\)", t["expr"]) for t in table["targets"])
