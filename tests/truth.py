"""What a truth file says each call must look like (the fields issue #2
names), and a matcher from truth calls to pbxwatch's records.

Calls are matched by caller number (last nine digits) and a start within
3 s of the simulator's origination time, as ``shared/tools/score.py`` does.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path
from typing import Any

RING_PERIOD = 6.0


def digits(n: object) -> str:
    d = re.sub(r"\D", "", str(n or ""))
    return d[-9:] if len(d) >= 9 else d


def ts(s: str | None) -> float | None:
    return dt.datetime.fromisoformat(s).timestamp() if s else None


def load_truth(recording: Path) -> dict[str, Any]:
    return json.loads(recording.with_suffix(".truth.json").read_text(encoding="utf-8"))


def outcome_of(classification: str) -> str | None:
    if classification.endswith("_no_message"):
        return "voicemail_no_message"
    if "voicemail" in classification and classification != "voicemail_listened":
        return "voicemail"
    if "abandon" in classification:
        return "abandoned"
    if "answered" in classification or classification == "callback_made":
        return "answered"
    if classification.endswith("_transferred"):
        return "answered"
    return None


def expected(call: dict[str, Any]) -> dict[str, Any]:
    e = call["expected"]
    obs = call.get("observed_by_simulator") or {}
    res = call.get("resolved") or {}
    direction = e.get("direction") or ("internal" if e.get("internal_call") else "inbound")
    want: dict[str, Any] = {"direction": direction}
    if direction != "inbound":
        return want
    target = call["target"]
    if target["type"] == "extension":
        want["target_kind"], want["target"] = "extension", e["extension"]
    else:
        kind = "contact_centre" if target["queue"] == "kontaktcenter" else "group"
        want["target_kind"], want["target"] = kind, target["queue"]
    want["outcome"] = outcome_of(e["classification"])
    answered_by = res.get("answered_by", e.get("answered_by"))
    if answered_by == "kontaktcenter-agent":
        answered_by = (obs.get("answered_by") or [None])[0]
    want["answered_by"] = answered_by if e.get("answered") else None
    want["diverted"] = bool(e.get("diverted_due_to_absence"))
    want["overflowed_to_contact_centre"] = bool(e.get("contact_center_overflow"))
    want["transferred_to"] = e.get("transferred_to")
    if e.get("answered") and res.get("time_to_human_answer_s") is not None:
        want["answer_seconds"] = float(res["time_to_human_answer_s"])
    return want


def match_calls(
    truth_calls: list[dict[str, Any]], records: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    calls = [r for r in records if r.get("type") == "call"]
    used: set[int] = set()
    pairs: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for t in truth_calls:
        t0 = ts((t.get("observed_by_simulator") or {}).get("originated_at"))
        best: tuple[float, int] | None = None
        for i, c in enumerate(calls):
            if i in used or digits(c.get("caller")) != digits(t.get("caller_number")):
                continue
            c0 = ts(c.get("started_at"))
            if t0 is None or c0 is None:
                continue
            d = abs(c0 - t0)
            if d <= 3 and (best is None or d < best[0]):
                best = (d, i)
        if best is None:
            pairs.append((t, None))
        else:
            used.add(best[1])
            pairs.append((t, calls[best[1]]))
    return pairs


def differences(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    bad = []
    for key, value in want.items():
        have = got.get(key)
        if key == "answer_seconds":
            if have is None or abs(float(have) - value) > 1.0:
                bad.append(f"answer_seconds {have} != {value:.1f}±1")
                continue
            rings = math.floor(value / RING_PERIOD) + 1
            if abs(int(got.get("rings_before_answer") or -99) - rings) > 1:
                bad.append(f"rings_before_answer {got.get('rings_before_answer')} != {rings}±1")
        elif isinstance(value, bool):
            if bool(have) != value:
                bad.append(f"{key} {have!r} != {value!r}")
        elif not (value is None and have in (None, "", False)) and have != value:
            bad.append(f"{key} {have!r} != {value!r}")
    return bad
