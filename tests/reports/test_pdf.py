"""The annual report of a simulated year as PDF (WeasyPrint), checked on the
PDF itself: rendered to PNG pages with pdftoppm (kept as artefacts), the
page count within bounds, no word outside its page (pdftotext -bbox), and
every figure in the PDF's text equal to the JSON report's (both made by the
real ``pbxwatch report`` command on a SQLite store filled through the
pipeline)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pbxwatch.reports.render import label
from pbxwatch.settings import Settings
from tests.conftest import LAB_CONFIG, ROOT
from tests.reports.year import YEAR, fill_store, sample_days
from tests.services import pbxwatch

NOW = dt.datetime(YEAR + 1, 1, 20, 12, 0).isoformat()
ARGS = ["--from", f"{YEAR}-01-01", "--to", f"{YEAR}-12-31", "--now", NOW]
TOKEN = re.compile(r"–|\d+(?:,\d+)?")


@dataclass
class Made:
    config: Path
    doc: dict[str, Any]
    pdf: Path
    artefacts: Path


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(pbxwatch("report", "--config", str(config), *args),
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def made(lab_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Made:
    tmp = tmp_path_factory.mktemp("year")
    days = sample_days(YEAR - 1, 2) + sample_days(YEAR, 2)
    outage = sample_days(YEAR, 2)[5]
    settings = asyncio.run(fill_store(lab_settings, tmp, days, calls_per_hour=12,
                                      outages={outage: (10.0, 10.75)}))  # fmt: skip
    raw = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    raw["storage"] = {"url": settings.storage.url, "data_dir": str(tmp)}
    config = tmp / "pbxwatch.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    js = _cli(config, "--unit", "all", "--format", "json", *ARGS)
    assert js.returncode == 0, js.stderr
    artefacts = Path(os.environ.get("PBXWATCH_ARTEFACTS") or ROOT / "test-artefacts") / "reports"
    artefacts.mkdir(parents=True, exist_ok=True)
    pdf = artefacts / f"report-{YEAR}-all.pdf"
    done = _cli(config, "--unit", "all", "--format", "pdf", "--out", str(pdf), *ARGS)
    assert done.returncode == 0, done.stderr
    return Made(config, json.loads(js.stdout), pdf, artefacts)


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))  # type: ignore[union-attr]


def test_pages_rendered_to_png_within_bounds(made: Made) -> None:
    for old in made.artefacts.glob("report-page-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(made.pdf),
                    str(made.artefacts / "report-page")], check=True, timeout=120)  # fmt: skip
    pngs = sorted(made.artefacts.glob("report-page-*.png"))
    n = _pages(made.pdf)
    assert len(pngs) == n
    units = len(made.doc["units"])
    # cover + comparison (1-4) + per unit 2-5 pages + definitions (1-2)
    assert 1 + 1 + 2 * units + 1 <= n <= 1 + 4 + 5 * units + 2, n
    assert all(p.stat().st_size > 2000 for p in pngs)


def test_no_text_runs_off_a_page(made: Made) -> None:
    bbox = subprocess.run(["pdftotext", "-bbox", str(made.pdf), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    pages = re.findall(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', bbox, re.S)
    assert len(pages) == _pages(made.pdf)
    word = re.compile(r'<word xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" '
                      r'yMax="([\d.-]+)">(.*?)</word>')  # fmt: skip
    off = []
    words = 0
    for i, (w, h, body) in enumerate(pages, 1):
        for x0, y0, x1, y1, text in word.findall(body):
            words += 1
            if float(x0) < 0 or float(y0) < 0 or float(x1) > float(w) or float(y1) > float(h):
                off.append((i, text, x0, y0, x1, y1))
    assert words > 500
    assert off == []


def _sections(pdf: Path, doc: dict[str, Any]) -> dict[str, list[str]]:
    """The PDF's text lines by section: "compare", each unit slug, "defs"."""
    names = {f"Enhet: {u['unit_name']} ({u['unit']})": u["unit"] for u in doc["units"]}
    out: dict[str, list[str]] = {}
    current = "cover"
    for page in range(1, _pages(pdf) + 1):
        text = subprocess.run(["pdftotext", "-layout", "-f", str(page), "-l", str(page),
                               str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout  # fmt: skip
        for line in text.splitlines():
            s = line.strip()
            if s.startswith("Jämförelse mellan enheter"):
                current = "compare"
            elif s in names:
                current = names[s]
            elif s == "Definitioner":
                current = "defs"
            out.setdefault(current, []).append(s)
    return out


def _expected(unit: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """(kind, value) per row label key, read from the JSON report."""
    f, d = unit["figures"], unit["details"]
    out: dict[str, tuple[str, Any]] = {}
    for key in ("offered", "answered", "abandoned", "short_abandoned", "unanswered_rings",
                "calls_to_person_not_reached", "diverted", "missing_forwards",
                "voicemail_messages", "listened", "contact_centre_answered"):  # fmt: skip
        out[key] = ("int", f[key])
    for key in ("availability", "abandoned_share", "missing_forward_share",
                "callbacks_on_time_share", "direct_resolution"):  # fmt: skip
        out[key] = ("pct", f[key])
    for key in ("answer_seconds_median", "answer_seconds_p90", "rings_before_answer_median",
                "rings_before_answer_p90"):  # fmt: skip
        out[key] = ("num", f[key])
    for key in ("callback_seconds_median", "listen_seconds_median"):
        out[key] = ("num", None if f[key] is None else f[key] / 60.0)
    for state, n in f["callbacks"].items():
        out[f"callbacks_{state}"] = ("int", n)
    out["unstaffed_minutes"] = ("num", f["unstaffed_seconds"] / 60.0)
    out["answered_within_rings"] = ("int", d["answered_within_rings"])
    out["answered_within_rings_share"] = ("pct", d["answered_within_rings_share"])
    out["blind_gaps"] = ("int", len(unit["gaps"]))
    out["blind_minutes"] = ("num", sum(g["seconds"] for g in unit["gaps"]) / 60.0)
    return out


def _token(kind: str, value: Any) -> str:
    """The JSON value as the report's text must read (Swedish, one decimal)."""
    if value is None:
        return "–"
    if kind == "int":
        return str(value)
    number = 100.0 * value if kind == "pct" else float(value)
    return f"{number:.1f}".replace(".", ",")


def _row(lines: list[str], text: str, *, first: bool = True) -> list[list[str]]:
    """The number tokens after ``text`` on the lines that begin with it."""
    found = [TOKEN.findall(line[len(text):]) for line in lines
             if line.startswith(text) and (line == text or line[len(text)] == " ")]  # fmt: skip
    return found[:1] if first else found


TARGETS = {"availability": "pct", "answer_seconds_p90": "num",
           "answered_within_rings_share": "pct", "abandoned_share": "pct",
           "missing_forward_share": "pct", "callbacks_on_time_share": "pct",
           "direct_resolution": "pct"}  # fmt: skip


def test_every_figure_in_the_pdf_equals_the_json(made: Made) -> None:
    doc = made.doc
    sections = _sections(made.pdf, doc)
    checked = 0
    for unit in doc["units"]:
        lines = sections[unit["unit"]]
        cur, prev = _expected(unit), _expected(unit["previous"])
        for key, (kind, value) in cur.items():
            want = [_token(kind, value), _token(kind, prev[key][1])]
            if key in TARGETS:
                want.append(_token(TARGETS[key], doc["targets"][key]))
            text = label(key, "sv", unit).strip()
            assert _row(lines, text) == [want], (unit["unit"], key)
            checked += 1
        pd = unit["previous"]["details"]
        for which in ("answer_time_distribution", "rings_distribution"):
            for b, p in zip(unit["details"][which], pd[which], strict=True):
                assert [str(b["calls"]), str(p["calls"])] in _row(lines, b["label"], first=False)
                checked += 1
        for m in unit["details"]["missing_forward_by_month"]:
            want = [str(m["calls_to_person_not_reached"]), str(m["missing_forwards"]),
                    _token("pct", m["missing_forward_share"])]  # fmt: skip
            assert _row(lines, m["month"]) == [want], m["month"]
            checked += 1
        assert len(unit["gaps"]) == 1  # the outage: every unit's report shows it
        g = unit["gaps"][0]
        start = g["from"][:16].replace("T", " ")
        assert g["seconds"] == 2700.0
        end = g["to"][:16].replace("T", " ")
        row = [ln.split() for ln in lines if ln.startswith(start)]
        assert row == [[*start.split(), *end.split(), "45,0", "connection", "lost"]]
    compare = sections["compare"]
    for key in _expected(doc["units"][0]):
        text = label(key, "sv").strip()
        want = [_token(*_expected(u)[key]) for u in doc["units"]]
        assert _row(compare, text) == [want], key
        checked += 1
    assert checked > 150
    # the year has calls, callbacks and a busy group number in it
    assert all(u["figures"]["offered"] > 100 for u in doc["units"])
    assert any(u["figures"]["unstaffed_seconds"] > 0 for u in doc["units"])


def test_cover_and_definitions_and_no_caller_numbers(made: Made) -> None:
    text = subprocess.run(["pdftotext", "-layout", str(made.pdf), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    cover = text.split("\f")[0]
    assert "exempelkommun" in cover
    assert "Alla enheter" in cover
    assert f"{YEAR}-01-01 – {YEAR}-12-31" in cover
    assert f"{YEAR - 1}-01-01 – {YEAR - 1}-12-31" in cover
    for term in ("Tillgänglighet", "Ej hänvisad telefon", "Återuppringning", "Lösta direkt"):
        assert term in text.split("Definitioner")[-1]
    # aggregate only: no caller's number of the stored year anywhere
    url = yaml.safe_load(made.config.read_text(encoding="utf-8"))["storage"]["url"]
    with sqlite3.connect(url.split(":///", 1)[1]) as db:
        callers = {r[0] for r in db.execute("SELECT caller FROM calls WHERE caller IS NOT NULL")}
    numbers = {c for c in callers if sum(ch.isdigit() for ch in c) >= 7}
    assert len(numbers) > 50
    assert [c for c in numbers if c in text or c.lstrip("+0") in text] == []
