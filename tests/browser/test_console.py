"""The console in a real Chromium (Debian's, driven by Playwright), served
by a real ``pbxwatch run`` that reads the project's PBX simulator over AMI,
with login through the tests' real OpenID provider (npm ``oidc-provider``):

- the login itself (authorisation code with PKCE, the session cookie);
- the wallboard's figures equal the metrics of the same process;
- a group number turns red within 2 s of its last member leaving;
- an ``it`` user never sees a caller number, on any page or API answer;
- a ``chief:socialtjanst`` user sees only Socialtjänst;
- the known call of a shared recording and its timeline;
- axe-core (WCAG 2.1 A/AA) on every console page visited; a screenshot of
  every page in ``test-artefacts/browser/``.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from pbxwatch.core.numbers import mask, normalise
from pbxwatch.settings import load_settings
from pbxwatch.sim.live import SimPlan
from tests.browser.console import (
    RECORDED_CALLER,
    RECORDED_EXTENSION,
    Console,
    live_console,
    member_event,
    sample,
    total,
)
from tests.browser.harness import Shots, check_accessible, describe
from tests.conftest import LAB_CONFIG
from tests.oidc.harness import User
from tests.sim.expect import DAY

pytestmark = pytest.mark.slow

#: 120 calls an hour from 09:00 at 30x: a call every second or so, and the
#: group's team break (12:00) six minutes away
PLAN = SimPlan(
    DAY,
    days=1,
    calls_per_hour=120,
    speed=30,
    seed=7,
    open_hour=9,
    close_hour=15,
    lead_in_seconds=10,
    call_at_open=True,
)
GROUP = "bygglov"  # the lab's group number (members 1003 and 1004, dynamic)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    with live_console(tmp, load_settings(LAB_CONFIG), PLAN) as c:
        deadline = time.monotonic() + 30
        while total(c.metrics(), "pbxwatch_calls_total") == 0:
            assert c.proc.poll() is None, c.log.read_text()
            assert time.monotonic() < deadline, "no call finished in 30 s"
            time.sleep(0.2)
        yield c


def log_in(page: Page, console: Console, user: User, path: str = "/") -> None:
    """Open ``path`` without a session: off to the provider's login form,
    fill it in, and back on ``path``."""
    page.goto(console.url(path))
    expect(page.locator("#username")).to_be_visible()
    assert page.url.startswith(console.provider.issuer + "/interaction/"), page.url
    page.fill("#username", user.username)
    page.fill("#password", user.password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(console.base) + r"/.*"))
    page.wait_for_load_state()


def accessible(page: Page, artefacts: Path, problems: list[str], name: str = "") -> None:
    """axe-core on the page as it is; what it finds goes to ``problems``."""
    found = check_accessible(page, artefacts, name)
    if found:
        problems.append(f"{page.url}:\n{describe(found)}")


def numbers_of(console: Console) -> set[str]:
    """Every caller's number of the simulated day and the recording, in
    every form it could be shown (as dialled, E.164, without +, masked)."""
    days = console.sim.call(lambda: list(console.sim.sim.days))
    raw = {c.caller for d in days for c in d.calls if len(c.caller) >= 8} | {RECORDED_CALLER}
    forms: set[str] = set()
    for n in raw:
        e164 = normalise(n, "46") or n
        forms |= {n, e164, e164.lstrip("+"), mask(e164), mask(n)}
    return {f for f in forms if len(f) >= 8}


def call_ids(console: Console, unit: str | None = None, not_unit: str | None = None) -> list[str]:
    db = console.config.parent / "data" / "pbxwatch.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT call_id, unit FROM calls ORDER BY started_at").fetchall()
    return [
        cid
        for cid, u in rows
        if (unit is None or u == unit) and (not_unit is None or u != not_unit)
    ]


def first_event(page: Page) -> dict[str, Any]:
    """The first ``wallboard`` event of ``/events`` as this page's session
    gets it (a second EventSource, closed at once)."""
    data = page.evaluate(
        """() => new Promise((resolve, reject) => {
             const s = new EventSource('/events');
             s.addEventListener('wallboard', (e) => { s.close(); resolve(e.data); });
             setTimeout(() => { s.close(); reject(new Error('no event in 5 s')); }, 5000);
           })"""
    )
    result: dict[str, Any] = json.loads(data)
    return result


# --------------------------------------------------------------------- login


def test_login_through_the_oidc_provider(
    console: Console, shots: Shots, page: Page, artefacts: Path
) -> None:
    problems: list[str] = []
    # no session: nothing but the way to the login
    response = page.request.get(console.url("/api/v1/queues"))
    assert response.status == 401
    log_in(page, console, console.provider.users["ops"])
    assert page.url == console.url("/")
    expect(page.locator(".who strong")).to_have_text("ops")
    expect(page.locator("#queues tbody tr")).to_have_count(2)  # kontaktcenter and bygglov
    cookie = next(c for c in page.context.cookies(console.base) if c["name"] == "pbxwatch_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert page.request.get(console.url("/api/v1/queues")).status == 200
    accessible(page, artefacts, problems, "wallboard")
    # logout (the form's POST with the session's CSRF token) ends the session
    csrf = page.locator("form.logout input[name=csrf]").get_attribute("value")
    assert csrf
    refused = page.request.post(console.url("/logout"), form={"csrf": "wrong"}, max_redirects=0)
    assert refused.status == 403
    out = page.request.post(console.url("/logout"), form={"csrf": csrf}, max_redirects=0)
    assert out.status == 303
    assert page.request.get(console.url("/api/v1/queues")).status == 401
    shots.settle()
    assert any(url.startswith(console.provider.issuer) for url, _ in shots.taken)
    assert problems == [], "\n".join(problems)


def test_logout_button_leaves_the_browser_logged_out(
    console: Console, browser: Browser, artefacts: Path
) -> None:
    """The "Logga ut" button ends the provider's session too (RP-initiated logout): the
    browser confirms at the provider, lands on the console's logged-out page,
    and the next visit asks for the password again.  In a context that keeps
    the console's CSP (``form-action`` must allow the redirect to the
    provider)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="sv-SE")
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        log_in(page, console, console.provider.users["ops"])
        page.get_by_role("button", name=re.compile("Logga ut|Log out")).click()
        page.wait_for_url(re.compile(re.escape(console.provider.issuer) + "/session/end"))
        assert page.request.get(console.url("/api/v1/queues")).status == 401
        page.screenshot(path=str(artefacts / "provider-logout.png"), full_page=True)
        page.get_by_role("button", name=re.compile("sign me out", re.IGNORECASE)).click()
        page.wait_for_url(console.url("/logged-out"))
        expect(page.locator("h1")).to_have_text("Du är utloggad.")
        page.screenshot(path=str(artefacts / "logged-out.png"), full_page=True)
        assert page.request.get(console.url("/api/v1/queues")).status == 401
        # the way back in is a login with the password, not a silent one
        page.get_by_role("link", name=re.compile("Logga in|Log in")).click()
        expect(page.locator("#password")).to_be_visible()
        assert page.url.startswith(console.provider.issuer + "/interaction/"), page.url
        assert page.request.get(console.url("/api/v1/queues")).status == 401
    finally:
        context.close()


def test_a_user_without_a_console_role_is_refused(console: Console, page: Page) -> None:
    log_in(page, console, console.provider.users["nobody"])
    assert page.request.get(console.url("/api/v1/queues")).status == 403
    assert page.request.get(console.url("/api/v1/calls")).status == 403


# ----------------------------------------------------------------- wallboard


def _shown(page: Page) -> dict[str, dict[str, Any]]:
    """The wallboard's figures per queue, as the page shows them now."""
    rows = page.evaluate(
        """() => Array.from(document.querySelectorAll('#queues tbody tr')).map((tr) => {
             const out = {queue: tr.dataset.queue, red: tr.classList.contains('unstaffed'),
                          colour: getComputedStyle(tr.querySelector('th')).color};
             tr.querySelectorAll('td[data-k]').forEach((td) => { out[td.dataset.k] =
                 td.textContent.trim(); });
             return out; })"""
    )
    shown: dict[str, dict[str, Any]] = {}
    for r in rows:
        members = [int(n) for n in re.findall(r"\d+", r["members"])]
        sl = r["sl"]
        shown[r["queue"]] = {
            "waiting": int(r["waiting"]),
            "longest": float(r["longest"].split()[0]),
            "service_level": None if sl == "—" else int(sl.split()[0]),
            "answered": int(r["answered"]),
            "abandoned": int(r["abandoned"]),
            "members": dict(
                zip(("available", "in_call", "paused", "logged_out"), members, strict=True)
            ),
            "red": r["red"],
        }
    return shown


def _value(text: str, metric: str, queue: str, **labels: str) -> float:
    value = sample(text, metric, queue=queue, **labels)
    assert value is not None, (metric, queue)
    return value


def _from_metrics(console: Console, text: str) -> dict[str, dict[str, Any]]:
    """The same figures from ``/metrics`` of the same process."""
    out: dict[str, dict[str, Any]] = {}
    for name, queue in console.settings.directory.queues.items():
        v = functools.partial(_value, text, queue=name)
        offered = v("pbxwatch_queue_offered_total") - v("pbxwatch_queue_short_abandoned_total")
        within = v("pbxwatch_queue_answered_within_sl_total")
        members = {
            s: int(v("pbxwatch_queue_members", state=s)) for s in ("available", "in_call", "paused")
        }
        # the wallboard counts the rest as logged out (removed, unavailable or never heard of)
        members["logged_out"] = len(queue.members) - sum(members.values())
        out[name] = {
            "waiting": int(v("pbxwatch_queue_callers_waiting")),
            "longest": v("pbxwatch_queue_longest_wait_seconds"),
            "service_level": 100 * within / offered if offered else None,
            "answered": int(v("pbxwatch_queue_answered_total")),
            "abandoned": int(v("pbxwatch_queue_abandoned_total")),
            "members": members,
            "red": v("pbxwatch_queue_unstaffed") == 1,
        }
    return out


HEALTH = ("ami_up", "store_backlog", "outbox_backlog", "calls_in_progress", "gaps_today")


def _everything(page: Page) -> dict[str, Any]:
    """The queues and the health figures that the metrics have too."""
    health = {k: page.locator(f'#health [data-h="{k}"]').inner_text() for k in HEALTH}
    return {"queues": _shown(page), "health": health}


def _still(view: dict[str, Any]) -> dict[str, Any]:
    """Without the longest wait, which grows by itself (PBX time runs on)."""
    return {
        **view,
        "queues": {
            n: {k: v for k, v in q.items() if k != "longest"} for n, q in view["queues"].items()
        },
    }


def _differences(
    console: Console, shown: dict[str, Any], metrics: dict[str, dict[str, Any]], text: str
) -> list[str]:
    """What the page shows differently from the metrics."""
    wrong: list[str] = []
    queues = {name: dict(q) for name, q in shown["queues"].items()}
    if set(queues) != set(console.settings.directory.queues):
        wrong.append(f"queues shown: {sorted(queues)}")
    for name, got in queues.items():
        want = dict(metrics[name])
        # a waiting caller's wait grows between the two readings (PBX time runs 30x)
        if abs(got.pop("longest") - want.pop("longest")) > (60 if want["waiting"] else 0.5):
            wrong.append(f"{name}: longest wait")
        # rounded on the page (half up in the browser, half even on the server)
        sl_got, sl_want = got.pop("service_level"), want.pop("service_level")
        if sl_want is None and sl_got is not None:
            wrong.append(f"{name}: service level {sl_got}, none in the metrics")
        if sl_want is not None and sl_got not in (math.floor(sl_want), math.ceil(sl_want)):
            wrong.append(f"{name}: service level {sl_got}, {sl_want} in the metrics")
        if got != want:
            wrong.append(f"{name}: {got} on the page, {want} in the metrics")
    health = shown["health"]
    pairs = [
        (health["ami_up"] in ("uppe", "up"), sample(text, "pbxwatch_ami_up") == 1),
        (int(health["store_backlog"]), sample(text, "pbxwatch_store_backlog_rows")),
        (int(health["outbox_backlog"]), sample(text, "pbxwatch_alert_outbox_backlog")),
        (int(health["calls_in_progress"]), sample(text, "pbxwatch_calls_in_progress")),
        (health["gaps_today"], str(int(sample(text, "pbxwatch_ami_gaps_total") or 0))),
    ]
    wrong += [f"health: {a!r} on the page, {b!r} in the metrics" for a, b in pairs if a != b]
    return wrong


def test_wallboard_figures_equal_the_metrics(
    console: Console, shots: Shots, page: Page, artefacts: Path
) -> None:
    problems: list[str] = []
    log_in(page, console, console.provider.users["it"])
    expect(page.locator("#live-status")).to_have_class(re.compile(r"\bok\b"))
    # wait until the day has figures: calls answered in a queue
    deadline = time.monotonic() + 60
    while sum(q["answered"] for q in _shown(page).values()) < 3:
        assert time.monotonic() < deadline, _shown(page)
        page.wait_for_timeout(500)
    # nothing moves while the simulator is paused; the metrics are refreshed
    # every second, the page every 0.5 s (and the engine's own timers may
    # still finish a call): compared until the page is the same before and
    # after the metrics are read, and equal to them
    console.sim.pause()
    try:
        page.wait_for_timeout(1500)
        deadline = time.monotonic() + 15
        while True:
            before = _everything(page)
            text = console.metrics()
            after = _everything(page)
            wrong = _differences(console, after, _from_metrics(console, text), text)
            if (_still(before) == _still(after) and not wrong) or time.monotonic() > deadline:
                break
            page.wait_for_timeout(1000)
        shots.snap("paused")
    finally:
        console.sim.resume()
    assert _still(before) == _still(after), "the page kept changing with the simulator paused"
    assert wrong == [], "\n".join(wrong)
    accessible(page, artefacts, problems, "wallboard")
    assert problems == [], "\n".join(problems)


def test_group_turns_red_within_2_s_of_its_last_member_leaving(
    console: Console, shots: Shots, page: Page, artefacts: Path
) -> None:
    problems: list[str] = []
    log_in(page, console, console.provider.users["it"])
    row = page.locator(f'#queues tr[data-queue="{GROUP}"]')
    expect(row).to_be_visible()
    console.sim.pause()
    try:
        members = console.sim.members(GROUP)
        assert len(members) == 2, members
        page.wait_for_timeout(1000)  # whatever was on its way has arrived
        expect(row).not_to_have_class(re.compile("unstaffed"))
        colour = row.locator("th").evaluate("th => getComputedStyle(th).color")
        left = console.sim.inject([member_event("QueueMemberRemoved", f) for f in members.values()])
        page.wait_for_function(
            f"""() => {{ const tr = document.querySelector('#queues tr[data-queue="{GROUP}"]');
                         return tr && tr.classList.contains('unstaffed'); }}""",
            timeout=5000,
        )
        took = time.monotonic() - left
        shots.snap("unstaffed")
        red = row.locator("th").evaluate("th => getComputedStyle(th).color")
        badge = row.locator(".badge.red")
        expect(badge).to_be_visible()
        badge_bg = badge.evaluate("b => getComputedStyle(b).backgroundColor")
        accessible(page, artefacts, problems, "wallboard-unstaffed")
        # the page is pushed the change at once; the metrics are a snapshot
        # refreshed every second, so they may be one refresh behind it
        deadline = time.monotonic() + 5
        while (shown := sample(console.metrics(), "pbxwatch_queue_unstaffed", queue=GROUP)) != 1:
            assert time.monotonic() < deadline, f"pbxwatch_queue_unstaffed is {shown}"
            page.wait_for_timeout(200)
    finally:
        console.sim.inject([member_event("QueueMemberAdded", f) for f in members.values()])
        console.sim.resume()
    (artefacts / "unstaffed.json").write_text(json.dumps({"red_after_seconds": took}), "utf-8")
    assert took <= 2.0, f"red after {took:.2f} s"
    assert red != colour or _reddish(badge_bg), (colour, red, badge_bg)
    assert _reddish(badge_bg) or _reddish(red), (red, badge_bg)
    # staffed again: no longer red
    expect(row).not_to_have_class(re.compile("unstaffed"), timeout=5000)
    assert problems == [], "\n".join(problems)


def _reddish(css: str) -> bool:
    rgb = [int(x) for x in re.findall(r"\d+", css)[:3]]
    return len(rgb) == 3 and rgb[0] > 120 and rgb[0] > 2 * rgb[1] and rgb[0] > 2 * rgb[2]


# -------------------------------------------------------------- who sees what


def _pages(console: Console, call: str) -> list[str]:
    return [
        "/",
        "/?lang=en",
        "/calls",
        f"/calls?extension={RECORDED_EXTENSION}",
        f"/calls/{call}",
        "/incidents",
        "/audit",
    ]


def _api_paths(page: Page, console: Console, call: str) -> list[str]:
    spec = page.request.get(console.url("/api/v1/openapi.json"))
    assert spec.status == 200
    paths = []
    for path, ops in spec.json()["paths"].items():
        if "get" in ops:
            paths.append(path.replace("{call_id}", call))
    assert "/api/v1/calls" in paths
    return paths


def test_it_never_sees_a_caller_number(
    console: Console, shots: Shots, page: Page, artefacts: Path
) -> None:
    problems: list[str] = []
    numbers = numbers_of(console)
    assert len(numbers) > 20
    calls = call_ids(console)
    assert calls
    log_in(page, console, console.provider.users["it"])
    seen: dict[str, int] = {}
    for path in _pages(console, calls[0]):
        response = page.goto(console.url(path))
        assert response is not None
        seen[path] = response.status
        page.wait_for_load_state()
        shots.settle()
        html = page.content()
        found = sorted(n for n in numbers if n in html)
        assert found == [], (path, found)
        if response.status == 200:
            accessible(page, artefacts, problems, path.strip("/").replace("/", "-") or "root")
    # the wallboard and health, nothing with calls
    assert seen["/"] == 200
    assert seen["/calls"] == seen[f"/calls/{calls[0]}"] == seen["/incidents"] == 403
    assert seen["/audit"] == 403
    for path in _api_paths(page, console, calls[0]):
        answer = page.request.get(console.url(path))
        body = answer.text()
        assert sorted(n for n in numbers if n in body) == [], path
        assert answer.status in (200, 403), (path, answer.status)
    live = json.dumps(first_event(page), ensure_ascii=False)
    assert sorted(n for n in numbers if n in live) == []
    # every page visited was screenshotted
    shot = {url for url, _ in shots.taken}
    assert [p for p in _pages(console, calls[0]) if console.url(p) not in shot] == [], shots.errors
    assert problems == [], "\n".join(problems)


def test_chief_of_socialtjanst_sees_only_socialtjanst(
    console: Console, shots: Shots, page: Page, artefacts: Path
) -> None:
    problems: list[str] = []
    units = console.settings.directory.units
    others = [u.name for k, u in units.items() if k != "socialtjanst"]
    own = call_ids(console, unit="socialtjanst")
    foreign = call_ids(console, not_unit="socialtjanst")
    assert own
    assert foreign
    log_in(page, console, console.provider.users["chief"])
    # the wallboard: no queue of another unit (Socialtjänst has none)
    own_queues = [
        q for q, cfg in console.settings.directory.queues.items() if cfg.unit == "socialtjanst"
    ]
    shown_queues = [r.get_attribute("data-queue") for r in page.locator("#queues tbody tr").all()]
    assert shown_queues == own_queues  # none in the lab: Socialtjänst has no group number
    assert page.locator("#health").count() == 0  # health is for operations and it
    accessible(page, artefacts, problems, "wallboard")
    # the search: only the own unit to choose, only its calls found
    page.goto(console.url("/calls"))
    options = page.locator("#f-unit option").all_inner_texts()
    assert [o for o in options if o in others] == []
    assert "Socialtjänst" in options
    cells = page.locator("table.list tbody tr td:nth-child(5)").all_inner_texts()
    assert cells
    assert set(cells) == {"Socialtjänst"}
    accessible(page, artefacts, problems, "calls")
    main = page.locator("main").inner_text()
    assert [o for o in others if o in main] == []
    # API: the same
    body = page.request.get(console.url("/api/v1/calls?limit=200")).json()
    assert body["calls"]
    assert {c["unit"] for c in body["calls"]} == {"socialtjanst"}
    other_units = page.request.get(console.url("/api/v1/calls?unit=bygglov")).json()
    assert other_units.get("calls", []) == []
    queues = page.request.get(console.url("/api/v1/queues")).json()
    assert all(q["unit"] == "socialtjanst" for q in queues)
    assert page.request.get(console.url("/api/v1/health")).status == 403
    # another unit's call is not there for the chief
    assert page.request.get(console.url(f"/api/v1/calls/{foreign[0]}")).status == 404
    response = page.goto(console.url(f"/calls/{foreign[0]}"))
    assert response is not None
    assert response.status == 404
    # the own unit's call is
    response = page.goto(console.url(f"/calls/{own[0]}"))
    assert response is not None
    assert response.status == 200
    accessible(page, artefacts, problems, "call")
    # incidents: the own unit's only
    page.goto(console.url("/incidents"))
    accessible(page, artefacts, problems, "incidents")
    incidents = page.request.get(console.url("/api/v1/incidents?limit=200")).json()
    assert {i["unit"] for i in incidents["incidents"]} <= {"socialtjanst", None}
    assert problems == [], "\n".join(problems)


# ------------------------------------------------------------------ timeline


def test_known_call_of_a_shared_recording_and_its_timeline(
    console: Console, shots: Shots, page: Page, artefacts: Path
) -> None:
    """0702345678 calls 1002 (Erik Öberg, Socialtjänst), who has no
    hänvisning set: it rings 20 s unanswered and the caller leaves a
    message (shared/ami-recordings/unanswered_to_voicemail_not_forwarded)."""
    problems: list[str] = []
    log_in(page, console, console.provider.users["ops"], "/calls")
    page.fill("#f-start", "2026-11-23T06:00")
    page.fill("#f-end", "2026-11-23T08:00")
    page.fill("#f-ext", RECORDED_EXTENSION)
    page.fill("#f-caller", RECORDED_CALLER[-4:])
    page.get_by_role("button", name=re.compile("Sök|Find")).click()
    page.wait_for_load_state()
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(1)
    assert "+46702345678" in rows.inner_text()  # operations see it in clear
    accessible(page, artefacts, problems, "search")
    rows.locator("a").click()
    page.wait_for_url(re.compile(r"/calls/[^/?]+$"))
    expect(page.locator("#classification")).to_have_text("missing_forward")
    why = page.locator("#why").inner_text()
    assert re.fullmatch(
        r"saknad hänvisning: ringde 1002 i (19|20|21) s, ingen hänvisning "
        r"satt, hamnade i röstbrevlådan",
        why,
    ), why
    steps = page.locator("#timeline li")
    kinds = [c.split()[-1] for c in steps.evaluate_all("els => els.map(e => e.className)")]
    texts = steps.all_inner_texts()
    assert kinds == ["entry", "ring", "voicemail", "hangup"], (kinds, texts)
    assert "+46702345678" in texts[0]
    assert "0855001002" in texts[0]
    assert re.search(r"Ringde 1002 \(Erik Öberg\) i (19|20|21) s", texts[1]), texts[1]
    assert "1002@default" in texts[2]
    assert "meddelande lämnat" in texts[2]
    accessible(page, artefacts, problems, "timeline-sv")
    # in English too
    page.goto(page.url + "?lang=en")
    why_en = page.locator("#why").inner_text()
    assert re.fullmatch(
        r"missing forward: rang 1002 for (19|20|21) s, no diversion set, "
        r"landed in voicemail",
        why_en,
    ), why_en
    accessible(page, artefacts, problems, "timeline-en")
    # the same through the API
    call_id = page.url.rsplit("/", 1)[1].split("?")[0]
    detail = page.request.get(console.url(f"/api/v1/calls/{call_id}")).json()
    assert detail["classification"] == "missing_forward"
    assert detail["call"]["outcome"] == "voicemail"
    assert detail["call"]["unit"] == "socialtjanst"
    [ring] = detail["rings"]
    assert ring["extension"] == "1002"
    assert 19 <= ring["seconds"] <= 21
    assert ring["result"] in ("no_answer", "timeout", "unanswered")
    assert problems == [], "\n".join(problems)


def test_every_console_page_passes_axe(
    console: Console, shots: Shots, page: Page, artefacts: Path
) -> None:
    """Every page an operations user can reach from the menu, in Swedish and
    English, a search with results and a timeline: no WCAG 2.1 A/AA
    violation that axe-core finds."""
    problems: list[str] = []
    log_in(page, console, console.provider.users["ops"])
    call = call_ids(console)[-1]
    for path in [
        "/",
        "/calls",
        f"/calls?extension={RECORDED_EXTENSION}",
        f"/calls/{call}",
        "/incidents",
        "/audit",
        "/?lang=en",
        "/calls",
        f"/calls/{call}",
        "/incidents",
        "/audit",
        "/?lang=sv",
    ]:
        response = page.goto(console.url(path))
        assert response is not None
        assert response.status == 200, path
        shots.settle()
        accessible(page, artefacts, problems)
    # an error page too
    page.goto(console.url("/calls/no-such-call"))
    accessible(page, artefacts, problems, "not-found")
    # keyboard: the skip link is the first stop and leads to the main content
    page.goto(console.url("/"))
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    assert problems == [], "\n".join(problems)


def test_the_browser_is_debians_chromium(browser: Browser) -> None:
    assert "chromium" in browser.browser_type.name


def test_the_page_says_when_the_ami_and_its_live_connection_are_down(
    console: Console, shots: Shots, page: Page, artefacts: Path
) -> None:
    """Last in this file: it stops the PBX, then pbxwatch itself."""
    problems: list[str] = []
    log_in(page, console, console.provider.users["it"])
    banner, live = page.locator("#ami-status"), page.locator("#live-status")
    expect(banner).to_be_hidden()
    expect(live).to_have_class(re.compile(r"\bok\b"))
    console.sim.close_server()  # the PBX is gone
    expect(banner).to_be_visible(timeout=5000)
    expect(page.locator('#health [data-h="ami_up"]')).to_have_class("bad")
    shots.snap("ami-down")
    accessible(page, artefacts, problems, "ami-down")
    console.proc.terminate()  # and then pbxwatch: the live connection is lost
    console.proc.wait(30)
    expect(live).to_have_class(re.compile(r"\bdown\b"), timeout=10_000)
    assert live.get_attribute("role") == "alert"
    assert live.inner_text() != live.get_attribute("data-ok")
    shots.snap("live-down")
    assert problems == [], "\n".join(problems)
