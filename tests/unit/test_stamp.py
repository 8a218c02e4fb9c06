"""A PBX's ids (``pbxwatch.stamp``): every id an alert carries is the
stored one, also inside a digest's list of misses."""

from __future__ import annotations

from pbxwatch.core.alerts import Alert
from pbxwatch.stamp import PbxStamp


def _digest() -> Alert:
    misses = [{"call_id": "17.1", "incident_id": "mf:17.1", "extension": "1001"},
              {"call_id": "18.2", "incident_id": "mf:18.2", "extension": "1002"}]  # fmt: skip
    return Alert("missing_forward:bygglov:1", "missing_forward", "firing", "bygglov", "info",
                 1.0, "sv", "en", data={"misses": misses, "count": 2})  # fmt: skip


def test_an_alerts_ids_are_the_pbxs_down_to_its_lists() -> None:
    got = PbxStamp("north").record(_digest())
    assert isinstance(got, Alert)
    assert got.alert_id == "north:missing_forward:bygglov:1"
    assert [m["call_id"] for m in got.data["misses"]] == ["north:17.1", "north:18.2"]
    assert [m["incident_id"] for m in got.data["misses"]] == ["north:mf:17.1", "north:mf:18.2"]
    assert got.data["misses"][0]["extension"] == "1001"  # not an id
    assert (got.data["count"], got.data["pbx"]) == (2, "north")


def test_mains_alerts_are_left_as_they_are() -> None:
    alert = _digest()
    assert PbxStamp().record(alert) is alert
