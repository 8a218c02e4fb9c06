"""Gaps in the AMI stream, and what the PBX's own state said after one.

Events only say what *changes*.  While pbxwatch is not connected (the PBX
restarted, the network half-closed, pbxwatch itself restarted) the changes
are lost, so after every login the adapter asks the PBX for its state
(channels, queue members, presence, device and extension state, mailbox
counts) and hands it to the core as a :class:`PbxSnapshot`.  The core then

* closes the calls none of whose channels still exist: they ended unseen,
  so they are reported incomplete and ``across_gap``, with what was seen
  (an ending that was not seen is ``unknown``, never guessed);
* keeps following the calls that are still up, marked ``across_gap``, and
  builds the calls it never saw from their channels;
* reads each mailbox's messages (``VoicemailBoxSummary``): a message left
  unseen becomes a callback, a message heard or deleted unseen is matched
  to its callback by id or time, never by position; where only the count
  is known (``MailboxCount``), a fall marks the oldest messages heard;

and returns an :class:`AmiGap` record saying when the gap was and what was
reconciled, so a report can say which hours its figures are unsure for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from pbxwatch.core.events import plausible_epoch
from pbxwatch.core.records import iso


@dataclass(frozen=True, slots=True)
class VoicemailMessage:
    """One message as ``VoicemailBoxSummary`` lists it."""

    folder: str  # INBOX (new) or Old (heard)
    caller: str
    message_id: str  # the spool's msg_id: "<origtime>-<counter>"
    origtime: float | None  # when recording began (from the id)
    duration: float

    @property
    def left_at(self) -> float | None:
        """When the message was complete: what the MWI time would have been."""
        return None if self.origtime is None else self.origtime + self.duration

    @classmethod
    def from_item(cls, item: Mapping[str, str]) -> VoicemailMessage:
        msg_id = item.get("ID", "")
        head = msg_id.split("-", 1)[0]
        origtime = float(head) if head.isdigit() and plausible_epoch(float(head)) else None
        try:
            duration = max(0.0, float(item.get("Duration", "0") or 0))
        except ValueError:
            duration = 0.0
        return cls(item.get("Folder", ""), item.get("CallerID", ""), msg_id, origtime, duration)


@dataclass(frozen=True, slots=True)
class PbxSnapshot:
    """The PBX's state as its status actions answered after a login."""

    #: the ``CoreShowChannel`` items: every channel up, with what it runs
    channels: tuple[Mapping[str, str], ...] = ()
    #: mailbox (``1002@default``) -> ``NewMessages`` of ``MailboxCount``
    mailboxes: Mapping[str, int] = field(default_factory=dict)
    #: mailbox -> its messages (INBOX and Old), for the boxes that answered
    messages: Mapping[str, tuple[VoicemailMessage, ...]] = field(default_factory=dict)
    #: list items each action answered, by action name (for the gap record)
    items: Mapping[str, int] = field(default_factory=dict)
    #: the PBX's clock when it was read (``Timestamp`` of a ``Ping`` answer)
    pbx_time: float | None = None
    #: the PBX time the channel list describes (its ``Duration`` counts)
    channels_time: float | None = None


@dataclass(frozen=True, slots=True)
class AmiGap:
    """A stretch of PBX time pbxwatch saw no events for."""

    gap_id: str
    source: str
    started_at: float
    ended_at: float
    reason: str
    #: what the snapshot after it reconciled, as counts (JSON in the store)
    reconciled: Mapping[str, int]

    @property
    def seconds(self) -> float:
        return round(self.ended_at - self.started_at, 3)

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        return {
            "type": "ami_gap",
            "gap_id": self.gap_id,
            "source": self.source,
            "started_at": iso(self.started_at, tz),
            "ended_at": iso(self.ended_at, tz),
            "seconds": self.seconds,
            "reason": self.reason,
            "reconciled": dict(self.reconciled),
        }


def gap_id(source: str, started_at: float) -> str:
    """Stable for one gap of one source: a record written twice is one row."""
    return f"gap:{source}:{started_at:.3f}"[:64]
