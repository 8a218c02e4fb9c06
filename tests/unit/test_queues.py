"""Queue state across a restart."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pbxwatch.core.incidents import Incident
from pbxwatch.pipeline import build_engine
from pbxwatch.settings import Settings
from tests.unit.events import ev


def test_restored_unstaffed_group_ends_with_its_own_start(lab_settings: Settings) -> None:
    """An unstaffed interval open at a restart ends, same id and start, when
    a member is back; no second interval opens."""
    t0 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("Europe/Stockholm")).timestamp()
    opened = Incident(f"group_unstaffed:bygglov:{t0:.3f}", "group_unstaffed", "open", t0,
                      unit="bygglov", queue="bygglov")  # fmt: skip
    engine = build_engine(lab_settings)
    assert engine.restore_incident(opened)
    out = engine.tick(t0 + 600)
    back = ev("QueueMemberPause", t0 + 900, Queue="bygglov", Interface="Local/1003@grp-member",
              Paused="0", Status="1")  # fmt: skip
    out += engine.process(back) + engine.settle()
    got = [(r.incident_id, r.state, r.started_at, r.ended_at) for r in out
           if isinstance(r, Incident)]  # fmt: skip
    assert got == [(opened.incident_id, "resolved", t0, t0 + 900)]
