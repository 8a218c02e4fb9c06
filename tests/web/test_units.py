"""The unit's page and its report, on a real console (uvicorn, httpx) over a
real SQLite store that ``pbxwatch replay`` filled with a simulated working
day cut at 17:30, after closing: Socialtjänst's same-day messages not called
back are overdue, and Sara Ek (IT-support) is on vacation ("Semester till 1
december", until 19:00), so her messages are deferred.

- the chief of Socialtjänst sees Socialtjänst's page and report only
  (another unit's is 403, an unknown one 404); ``it`` is refused;
- every open callback of the store is on the page, with its state and its
  countdown to the deadline as the store's rows give them at the PBX's now;
- the deferred messages show their reason, "due after the return", and
  that a colleague may act (IT-support has ``fulfilled_by: unit`` here);
- caller numbers only to the owning unit: masked for Socialtjänst, in clear
  for IT-support (``show_caller_numbers`` here) and operations, every clear
  view in the audit log;
- the coaching list and the figures equal the store's; the report is the
  CLI's document (HTML, strict CSP kept, and PDF).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from pbxwatch.core.numbers import mask
from pbxwatch.settings import Settings, load_settings
from pbxwatch.sim.day import recording_bytes, simulate_day
from pbxwatch.web.units import linked_styles
from tests.conftest import LAB_CONFIG
from tests.services import pbxwatch
from tests.web.served import Served, as_group, serve

DAY = dt.date(2026, 11, 24)
TZ = ZoneInfo("Europe/Stockholm")
CUT = dt.datetime.combine(DAY, dt.time(17, 30), TZ).timestamp()
ROLES = {"ops": ["operations"], "it": ["it"], "chief-soc": ["chief:socialtjanst"],
         "staff-soc": ["staff:socialtjanst"], "chief-it": ["chief:it-support"]}  # fmt: skip
WEB = {"auth": {"mode": "header",
                "header": {"trusted_proxies": ["127.0.0.1"], "role_map": ROLES}}}  # fmt: skip


def fill_day(tmp: Path, cut: float = CUT) -> tuple[Settings, Path, Path]:
    """The config, the store and the recording of the day up to ``cut``
    (IT-support with ``fulfilled_by: unit`` and ``show_caller_numbers``)."""
    raw = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    raw["metrics"] = {"enabled": False}
    raw["storage"] = {"data_dir": str(tmp / "data")}
    it = raw["directory"]["units"]["it-support"]
    it["callback_policy"] = {"deadline": "same_working_day", "fulfilled_by": "unit"}
    it["show_caller_numbers"] = True
    config = tmp / "pbxwatch.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    settings = load_settings(config)
    sim = simulate_day(settings, DAY, calls_per_hour=40, seed=7)
    recording = tmp / "day.ami"
    recording.write_bytes(recording_bytes([f for f in sim.frames if f[0] < cut]))
    subprocess.run(pbxwatch("replay", str(recording), "--config", str(config)),
                   check=True, capture_output=True, timeout=180)  # fmt: skip
    return settings, tmp / "data" / "pbxwatch.db", recording


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path, Path]:
    return fill_day(tmp_path_factory.mktemp("units"))


@pytest.fixture(scope="module")
def console(day: tuple[Settings, Path, Path]) -> Iterator[Served]:
    settings, db, recording = day
    with serve(settings, db, web=WEB, recordings=(str(recording),)) as s:
        yield s


def get(s: Served, path: str, group: str, **params: str) -> httpx.Response:
    return httpx.get(s.base + path, headers=as_group(group), params=params or None, timeout=60)


def rows(db: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return list(conn.execute(sql, args))


def numbers_of(db: Path, unit: str) -> set[str]:
    found = rows(db, "SELECT number, caller FROM callbacks WHERE unit = ?", unit)
    return {n for r in found for n in (r["number"], r["caller"]) if n and len(n) > 5}


def test_the_chief_sees_only_their_unit_and_it_is_refused(console: Served) -> None:
    for group in ("chief-soc", "staff-soc"):
        page = get(console, "/units/socialtjanst", group)
        assert page.status_code == 200
        assert "<h1>Socialtjänst</h1>" in page.text
        assert get(console, "/api/v1/units/socialtjanst", group).json()["unit"] == "socialtjanst"
        for other in ("/units/bygglov", "/api/v1/units/it-support",
                      "/units/bygglov/report", "/units/all/report"):  # fmt: skip
            assert get(console, other, group).status_code == 403, other
        assert get(console, "/units/nowhere", group).status_code == 404
        units = httpx.get(console.base + "/units", headers=as_group(group), timeout=10)
        assert units.status_code == 303
        assert units.headers["location"] == "/units/socialtjanst"
    for path in ("/units", "/units/socialtjanst", "/api/v1/units/socialtjanst",
                 "/units/socialtjanst/report", "/units/all/report"):  # fmt: skip
        assert get(console, path, "it").status_code == 403, path
    ops = get(console, "/units", "ops")
    assert all(f'href="/units/{u}"' in ops.text for u in ("socialtjanst", "bygglov", "it-support"))


def _expected(db: Path, unit: str, now: float) -> dict[str, tuple[str, float | None]]:
    """Each open callback of ``unit`` in the store: its state and seconds to
    the deadline at ``now``, from the rows alone."""
    out: dict[str, tuple[str, float | None]] = {}
    for r in rows(db, "SELECT * FROM callbacks WHERE unit = ? AND resolved_at IS NULL "
                      "AND has_number AND NOT purged", unit):  # fmt: skip
        if r["deferred_reason"] is not None and r["returned_at"] is None:
            out[r["callback_id"]] = ("deferred", None)
        else:
            state = "overdue" if now > r["deadline"] else "pending"
            out[r["callback_id"]] = (state, round(r["deadline"] - now, 1))
    return out


def test_callbacks_state_and_countdown_as_the_store_says(
    console: Served, day: tuple[Settings, Path, Path]
) -> None:
    db = day[1]
    for unit, group in (("socialtjanst", "chief-soc"), ("it-support", "chief-it")):
        data = get(console, f"/api/v1/units/{unit}", group).json()
        now = dt.datetime.fromisoformat(data["now"]).timestamp()
        assert CUT - 600 < now < CUT
        want = _expected(db, unit, now)
        assert want, unit
        got = {c["callback_id"]: (c["state"], c["due_in_seconds"]) for c in data["callbacks"]}
        assert got.keys() == want.keys()
        for cb_id, (state, due) in want.items():
            assert got[cb_id][0] == state, cb_id
            assert (got[cb_id][1] is None) == (due is None), cb_id
            if due is not None:
                assert abs(got[cb_id][1] - due) < 0.2, cb_id
        page = get(console, f"/units/{unit}", group).text
        for cb_id, (state, _) in want.items():
            assert f'data-callback="{cb_id}" data-state="{state}"' in page
    soc = {c["state"] for c in get(console, "/api/v1/units/socialtjanst", "chief-soc").json()[
        "callbacks"]}  # fmt: skip
    assert "overdue" in soc  # same-day messages after closing
    page = get(console, "/units/socialtjanst", "chief-soc").text
    assert re.search(r"\d+ (h \d\d )?min sen", page)  # an overdue one's countdown
    assert "Försenade" in page
    assert "försenad" in page


def test_the_deferred_message_shows_its_reason_and_who_may_act(
    console: Served, day: tuple[Settings, Path, Path]
) -> None:
    db = day[1]
    deferred = rows(db, "SELECT * FROM callbacks WHERE owner = '1005' AND resolved_at IS NULL "
                        "AND deferred_reason IS NOT NULL")  # fmt: skip
    assert deferred, "Sara Ek's messages in her vacation"
    data = get(console, "/api/v1/units/it-support", "chief-it").json()
    by_id = {c["callback_id"]: c for c in data["callbacks"]}
    for r in deferred:
        c = by_id[r["callback_id"]]
        assert c["state"] == "deferred"
        assert c["deadline"] is None
        assert c["due_in_seconds"] is None
        assert c["deferred_reason"] == r["deferred_reason"]
        assert "Semester till 1 december" in c["deferred_reason"]
        assert c["owner"] == "1005"
        assert c["owner_name"] == "Sara Ek"
        assert c["fulfilled_by"] == "unit"
    page = get(console, "/units/it-support", "chief-it").text
    section = page.split('id="deferred"', 1)[1].split("</table>", 1)[0]
    assert section.count("<tr data-callback=") == len(deferred)
    assert "Semester till 1 december" in section
    assert "förfaller efter återkomsten" in section
    assert "en kollega i enheten kan ringa nu" in section
    en = get(console, "/units/it-support", "chief-it", lang="en").text
    assert "due after the return" in en
    assert "a colleague in the unit may call now" in en
    assert '<html lang="en">' in en


def test_caller_numbers_only_for_the_owning_unit(
    console: Served, day: tuple[Settings, Path, Path]
) -> None:
    db = day[1]
    soc, it = numbers_of(db, "socialtjanst"), numbers_of(db, "it-support")
    others = numbers_of(db, "bygglov") | it
    assert soc
    assert it
    soc_api = get(console, "/api/v1/units/socialtjanst", "chief-soc").json()
    assert {c["numbers"] for c in soc_api["callbacks"]} == {"masked"}
    for group in ("chief-soc", "staff-soc"):
        for path in ("/units/socialtjanst", "/api/v1/units/socialtjanst"):
            text = get(console, path, group).text
            assert not [n for n in soc if n in text], path  # masked, never in clear
            assert [n for n in soc if mask(n) in text], path
            assert not [n for n in others if n in text or mask(n) in text], path
    before = rows(db, "SELECT count(*) AS n FROM audit_log")[0]["n"]
    it_page = get(console, "/units/it-support", "chief-it").text
    assert [n for n in it if n in it_page]  # show_caller_numbers: in clear
    assert not [n for n in soc if n in it_page or mask(n) in it_page]
    ops = get(console, "/api/v1/units/socialtjanst", "ops").json()
    assert {c["numbers"] for c in ops["callbacks"]} == {"clear"}
    audit = rows(db, "SELECT * FROM audit_log ORDER BY entry_id")[before:]
    assert {(a["user"], a["unit"], a["what"]) for a in audit} >= {
        ("chief-it-user", "it-support", "unit it-support"),
        ("ops-user", "socialtjanst", "unit socialtjanst"),
    }
    shown = sum(1 for c in ops["callbacks"] if c["caller"])
    assert [a["records"] for a in audit if a["user"] == "ops-user"] == [shown]
    assert not [a for a in audit if a["user"] in ("chief-soc-user", "staff-soc-user")]


def test_coaching_list_absences_and_figures(
    console: Served, day: tuple[Settings, Path, Path]
) -> None:
    db = day[1]
    data = get(console, "/api/v1/units/socialtjanst", "chief-soc").json()
    assert data["week_from"] == "2026-11-23"
    assert data["month_from"] == "2026-11-01"
    misses = rows(db, "SELECT extension, count(*) AS n FROM incidents WHERE kind = "
                      "'missing_forward' AND unit = 'socialtjanst' GROUP BY extension")  # fmt: skip
    assert misses
    want = {r["extension"]: (r["n"], r["n"]) for r in misses}
    assert {m["extension"]: (m["week"], m["month"]) for m in data["missed_forwards"]} == want
    open_absences = rows(db, "SELECT incident_id FROM incidents WHERE kind = 'unforwarded_"
                             "absence' AND unit = 'socialtjanst' AND state = 'open'")  # fmt: skip
    assert {a["incident_id"] for a in data["absences"]} == {r["incident_id"] for r in open_absences}
    figures = {f["key"]: f for f in data["figures"]}
    offered = rows(db, "SELECT count(*) AS n FROM calls WHERE unit = 'socialtjanst' "
                       "AND direction = 'inbound'")[0]["n"]  # fmt: skip
    assert figures["offered"]["value"] == offered
    avail = figures["availability"]
    assert avail["target"] == 0.8
    assert avail["met"] == (avail["value"] >= 0.8)
    page = get(console, "/units/socialtjanst", "chief-soc").text
    assert 'data-figure="availability"' in page
    assert "Tillgänglighet" in page
    assert 'href="/units/socialtjanst/report?from=2026-01-01&amp;to=2026-11-24"' in page


def test_the_report_is_the_cli_document(console: Served, day: tuple[Settings, Path, Path]) -> None:
    settings, db, _ = day
    config = db.parent.parent / "pbxwatch.yaml"
    r = get(console, "/units/socialtjanst/report", "chief-soc", **{"from": "2026-11-01",
            "to": "2026-11-30"})  # fmt: skip
    assert r.status_code == 200
    assert "<style" not in r.text  # the strict CSP holds: styles in a linked sheet
    assert "style-src 'self'" in r.headers["content-security-policy"]
    sheet = re.search(r'href="(/reports/report-\w+\.css)"', r.text)
    assert sheet
    css = get(console, sheet.group(1), "chief-soc")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    now = dt.datetime.fromtimestamp(console_now(console), TZ).isoformat()
    made: dict[str, str] = {}
    for fmt in ("json", "html"):
        made[fmt] = subprocess.run(
            pbxwatch("report", "--config", str(config), "--unit", "socialtjanst", "--from",
                     "2026-11-01", "--to", "2026-11-30", "--format", fmt, "--now", now),
            check=True, capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
    doc = json.loads(made["json"])
    assert f">{doc['figures']['offered']}<" in r.text
    assert r.text == linked_styles(made["html"])  # the CLI's document, its styles linked
    assert "Uppföljning av telefonservice" in r.text
    assert "Socialtjänst" in r.text
    en = get(console, "/units/socialtjanst/report", "chief-soc", lang="en")
    assert "Telephone service follow-up" in en.text
    pdf = get(console, "/units/socialtjanst/report", "chief-soc", format="pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf.content,
                          capture_output=True, check=True, timeout=60).stdout.decode()  # fmt: skip
    assert "Uppföljning av telefonservice" in text
    assert "Socialtjänst" in text
    assert pdf.headers["content-disposition"].startswith("attachment;")
    assert get(console, "/units/all/report", "ops", **{"from": "2026-11-24",
               "to": "2026-11-24"}).status_code == 200  # fmt: skip
    bad = get(console, "/units/socialtjanst/report", "chief-soc", **{"from": "2026-12-01",
              "to": "2026-11-01"})  # fmt: skip
    assert bad.status_code == 400
    assert settings.site in r.text


def console_now(s: Served) -> float:
    data = get(s, "/api/v1/units/socialtjanst", "ops").json()
    return dt.datetime.fromisoformat(data["now"]).timestamp()


def test_after_the_return_the_deadline_counts_from_it(tmp_path: Path) -> None:
    """The whole day, to 19:00, when Sara Ek's vacation ends: her messages
    are no longer deferred; their deadline is the next working day's close
    (counted from the return), the countdown runs to it."""
    settings, db, recording = fill_day(tmp_path, cut=CUT + 4 * 3600)
    returned = dt.datetime.combine(DAY, dt.time(19), TZ).timestamp()
    due = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(17), TZ).timestamp()
    mine = rows(db, "SELECT * FROM callbacks WHERE owner = '1005' AND resolved_at IS NULL "
                    "AND deferred_reason IS NOT NULL")  # fmt: skip
    assert mine
    assert {(r["returned_at"], r["deadline"]) for r in mine} == {(returned, due)}
    with serve(settings, db, web=WEB, recordings=(str(recording),)) as s:
        data = get(s, "/api/v1/units/it-support", "chief-it").json()
        page = get(s, "/units/it-support", "chief-it").text
    now = dt.datetime.fromisoformat(data["now"]).timestamp()
    by_id = {c["callback_id"]: c for c in data["callbacks"]}
    for r in mine:
        c = by_id[r["callback_id"]]
        assert c["state"] == "pending"
        assert dt.datetime.fromisoformat(c["deadline"]).timestamp() == due
        assert abs(c["due_in_seconds"] - (due - now)) < 0.2
        assert dt.datetime.fromisoformat(c["returned_at"]).timestamp() == returned
    assert "Inga uppskjutna meddelanden." in page
    assert "om 22 h" in page  # 19:00 to 17:00 the next day
