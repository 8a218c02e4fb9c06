"""What a restart recording's truth asks of pbxwatch's records (issue #18).

``restart_gap.truth.json`` covers the whole session, downtime included.
Its ``restart`` block says which calls were where at the cut and at the
reconnect.  The records of both parts, taken together, must:

* hold every call once, except the ones that began and ended in the
  downtime (nothing saw them: they must not be invented);
* get every call right (the fields of issue #2, as ``score.py`` compares
  them), except that a call which ended in the downtime may say
  ``unknown`` where its end was not seen, and must then be incomplete;
* have the detections right (unanswered rings, missing forwards, one
  callback per message with the right listened flag) for every call whose
  end was seen or inferred;
* have a callback ``found_at_resync`` for each message left in the downtime.
"""

from __future__ import annotations

from typing import Any

from tests.truth import differences, digits, expected, match_calls


def check_restart(truth: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    """Problems, one line each; empty when the records are right."""
    restart = truth["restart"]
    unseen = set(restart["calls_entirely_in_downtime"])
    ended_blind = set(restart["calls_ended_in_downtime"])
    calls = [r for r in records if r.get("type") == "call"]
    problems: list[str] = []
    ids = [c["call_id"] for c in calls]
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} calls reported twice")
    unknown: set[str] = set()
    pairs = match_calls(truth["calls"], records)
    matched = {t["call_id"]: got for t, got in pairs}
    for t, got in pairs:
        cid = t["call_id"]
        if cid in unseen:
            if got is not None:
                problems.append(f"{cid}: began and ended unseen, but reported ({got['call_id']})")
            continue
        if got is None:
            problems.append(f"{cid}: no call reported")
            continue
        if cid in ended_blind and got["outcome"] == "unknown":
            unknown.add(cid)
            if got["complete"]:
                problems.append(f"{cid}: outcome unknown but marked complete")
            continue
        bad = differences(expected(t), got)
        if bad:
            problems.append(f"{cid} ({t['expected'].get('classification')}): " + "; ".join(bad))
    want_calls = len(truth["calls"]) - len(unseen)
    if len(calls) != want_calls:
        problems.append(f"{len(calls)} calls reported, {want_calls} expected")
    judged = [t for t in truth["calls"] if t["call_id"] not in unseen | unknown]
    problems += _detections(judged, records, matched)
    problems += _found(truth, records)
    return problems


def _detections(truth_calls: list[dict[str, Any]], records: list[dict[str, Any]],
                matched: dict[str, dict[str, Any] | None]) -> list[str]:  # fmt: skip
    """The detections of each truth call, on the record ``match_calls`` paired it with."""
    incidents = [r for r in records if r.get("type") == "incident"]
    callbacks = [r for r in records if r.get("type") == "callback"]
    problems = []
    for t in truth_calls:
        e, res = t["expected"], t.get("resolved") or {}
        call = matched.get(t["call_id"])
        mine = [i for i in incidents if call is not None and i.get("call_id") == call["call_id"]]
        rings = {str(i["extension"]) for i in mine if i["kind"] == "unanswered_ring"}
        if rings != set(res.get("unanswered_rings", [])):
            problems.append(f"{t['call_id']}: unanswered rings {sorted(rings)} != "
                            f"{sorted(res.get('unanswered_rings', []))}")  # fmt: skip
        missing = any(i["kind"] == "missing_forward" for i in mine)
        if missing != bool(e.get("missed_without_absence_diversion")):
            problems.append(f"{t['call_id']}: missing_forward {missing}")
        vm = res.get("voicemail_message")
        if not vm:
            continue
        box = vm["mailbox"].split("@")[0]
        cands = [c for c in callbacks if digits(c.get("caller")) == digits(vm.get("callerid"))
                 and str(c.get("mailbox", "")).split("@")[0] == box]  # fmt: skip
        if not cands:
            problems.append(f"{t['call_id']}: no callback for its message")
            continue
        if bool(cands[0].get("listened_at")) != (vm.get("folder") == "Old"):
            problems.append(f"{t['call_id']}: listened_at {cands[0].get('listened_at')!r}")
    return problems


def _found(truth: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    """Each message left in the downtime has a callback found at the resync."""
    by_id = {t["call_id"]: t for t in truth["calls"]}
    callbacks = [r for r in records if r.get("type") == "callback"]
    problems = []
    for cid in truth["restart"]["messages_left_in_downtime"]:
        vm = (by_id[cid].get("resolved") or {}).get("voicemail_message") or {}
        hits = [c for c in callbacks if digits(c.get("caller")) == digits(vm.get("callerid"))
                and c.get("found_at_resync")]  # fmt: skip
        if not hits:
            problems.append(f"{cid}: its message left in the downtime has no callback found "
                            "at the resync")  # fmt: skip
    return problems
