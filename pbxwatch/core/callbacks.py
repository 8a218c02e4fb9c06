"""Voicemail callback obligations.

A message left in a mailbox obliges its owner to call back (Falkenberg: the
same working day; Botkyrka: within two working days).  The obligation is
created when the depositing call finishes, fulfilled by a later outbound
call to the caller's number (E.164-compared) from the owner's extension (or
the unit's, or anyone's, per policy), and marked listened when the mailbox's
new-message count falls.  Reminders are emitted once each from ``tick``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pbxwatch.core.calendar import WorkCalendar
from pbxwatch.core.directory import Directory
from pbxwatch.core.diversion import Presence
from pbxwatch.core.figures import CallbackState, callback_state
from pbxwatch.core.gaps import VoicemailMessage
from pbxwatch.core.numbers import is_anonymous, normalise
from pbxwatch.core.records import CallRecord, iso


@dataclass(frozen=True, slots=True)
class Callback:
    callback_id: str
    call_id: str
    mailbox: str
    owner: str | None  # extension
    unit: str | None
    caller: str | None  # as presented: a number, or a colleague's extension
    number: str | None  # what a callback must dial: E.164, or the extension; None = anonymous
    left_at: float
    deadline: float
    exempt_reason: str | None = None
    resolved_at: float | None = None
    resolved_by_call: str | None = None
    resolved_from: str | None = None
    listened_at: float | None = None
    due_soon_sent: bool = False
    overdue_sent: bool = False
    #: the spool's msg_id, once a ``VoicemailBoxSummary`` listed the message
    message_id: str | None = None
    #: the message was found by the state read after a gap, not seen left
    found_at_resync: bool = False
    #: the message was gone from the mailbox when a state read looked
    deleted_at: float | None = None
    #: the owner was away for a listed reason when it was left: the deadline
    #: counts from the return (``returned_at``, the end of that diversion)
    deferred_reason: str | None = None
    returned_at: float | None = None

    @property
    def deferred(self) -> bool:
        """Waiting for its owner to come back: no deadline yet."""
        return self.deferred_reason is not None and self.returned_at is None

    def deferred_at(self, now: float) -> bool:
        """Deferred as seen at ``now`` (a state asked of a time before the return)."""
        return self.deferred_reason is not None and (
            self.returned_at is None or now < self.returned_at
        )

    def state(self, now: float) -> CallbackState:
        return callback_state(
            has_number=self.number is not None,
            exempt=self.exempt_reason is not None,
            resolved_at=self.resolved_at,
            deadline=self.deadline,
            now=now,
            deferred=self.deferred_at(now),
        )

    def to_json(self, tz: ZoneInfo, now: float) -> dict[str, Any]:
        return {
            "type": "callback",
            "callback_id": self.callback_id,
            "state": self.state(now),
            "call_id": self.call_id,
            "mailbox": self.mailbox,
            "owner": self.owner,
            "unit": self.unit,
            "caller": self.caller,
            "caller_e164": self.number if self.number and self.number.startswith("+") else None,
            "left_at": iso(self.left_at, tz),
            "deadline": None if self.deferred_at(now) else iso(self.deadline, tz),
            "resolved_at": iso(self.resolved_at, tz),
            "resolved_by_call": self.resolved_by_call,
            "resolved_from": self.resolved_from,
            "listened_at": iso(self.listened_at, tz),
            "exempt_reason": self.exempt_reason,
            "deferred_reason": self.deferred_reason,
            "returned_at": iso(self.returned_at, tz),
            "message_id": self.message_id,
            "found_at_resync": self.found_at_resync,
            "deleted_at": iso(self.deleted_at, tz),
            "evaluated_at": iso(now, tz),
        }


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    """A reminder to send: due soon (to the unit), overdue (to the chief)."""

    kind: Literal["callback_due_soon", "callback_overdue"]
    callback: Callback
    at: float

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        return {
            "type": "callback_event",
            "kind": self.kind,
            "at": iso(self.at, tz),
            "callback_id": self.callback.callback_id,
            "unit": self.callback.unit,
            "mailbox": self.callback.mailbox,
            "deadline": iso(self.callback.deadline, tz),
        }


@dataclass(frozen=True, slots=True)
class CallbackChange:
    """A callback as it now stands, after it was created or changed: for
    the store (the JSON output gives the final state instead)."""

    callback: Callback


@dataclass
class _Mailbox:
    new: int | None = None
    unheard: list[str] = field(default_factory=list)  # callback ids, oldest first


#: messages pbxwatch may believe new beyond a mailbox's own count: a call's
#: record can come before or after its MWI event, so the list may run ahead
#: of the count by a few; far more means messages went unseen (Asterisk's
#: ``maxmsg`` is 100 by default) and the oldest are dropped
UNHEARD_SLACK = 100


#: a callback whose message a state read does not list was deleted, unless
#: it is this new (the spool and the MWI event may be a moment apart)
DELETE_GRACE = 10.0
#: how far the end of a listed message may be from a callback's ``left_at``
#: (the MWI event's time) for the two to be one message
MATCH_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class CallbackMemory:
    """How long finished obligations stay in memory (``None``: for ever, as
    a replay needs for its closing snapshot).  What leaves memory stays in
    the store; it can no longer change."""

    #: a callback made (or without a number to call): kept until heard,
    #: at most this long after it was made
    closed_seconds: float | None = None
    #: a callback never made: kept this long past its deadline (a call back
    #: that late still counts, as late)
    open_seconds: float | None = None


class CallbackBook:
    def __init__(
        self,
        directory: Directory,
        calendar: WorkCalendar,
        memory: CallbackMemory | None = None,
        pseudonym: Callable[[str], str] | None = None,
    ) -> None:
        self.directory = directory
        self.calendar = calendar
        self.memory = memory or CallbackMemory()
        #: callbacks restored from a store that keeps numbers pseudonymised
        #: carry the pseudonym: a call to the number matches it too
        self.pseudonym = pseudonym
        self.callbacks: dict[str, Callback] = {}
        self.forgotten = 0
        self._mailboxes: dict[str, _Mailbox] = {}
        self._changed: dict[str, None] = {}  # ids, in order of change
        self._reminders: dict[str, None] = {}  # ids tick() looks at, oldest first
        #: open callbacks by the number a callback must dial, oldest first
        self._by_number: dict[str, dict[str, None]] = {}
        #: owner -> ids of their messages deferred until they come back
        self._deferred: dict[str, dict[str, None]] = {}
        self._last_prune = 0.0
        #: mailboxes whose new-message count fell, to be read by id
        self.to_check: dict[str, None] = {}

    @property
    def changed(self) -> bool:
        return bool(self._changed)

    def drain_changes(self) -> list[CallbackChange]:
        """Callbacks created or changed since the last call."""
        out = [CallbackChange(self.callbacks[i]) for i in self._changed if i in self.callbacks]
        self._changed.clear()
        return out

    def _put(self, cb: Callback) -> None:
        self.callbacks[cb.callback_id] = cb
        self._changed[cb.callback_id] = None
        self._index(cb)

    def _index(self, cb: Callback) -> None:
        waiting = cb.number is not None and cb.exempt_reason is None and cb.resolved_at is None
        if waiting and not cb.overdue_sent and not cb.deferred:
            self._reminders[cb.callback_id] = None  # tick() still has a reminder to raise
        else:
            self._reminders.pop(cb.callback_id, None)
        if cb.owner is not None and cb.deferred and cb.resolved_at is None:
            self._deferred.setdefault(cb.owner, {})[cb.callback_id] = None
        else:
            self._undefer(cb)
        if cb.number is not None and cb.resolved_at is None:
            self._by_number.setdefault(cb.number, {})[cb.callback_id] = None
        else:
            self._unindex(cb)

    def _undefer(self, cb: Callback) -> None:
        ids = self._deferred.get(cb.owner or "")
        if ids is not None:
            ids.pop(cb.callback_id, None)
            if not ids:
                del self._deferred[cb.owner or ""]

    def _unindex(self, cb: Callback) -> None:
        if cb.number is None:
            return
        ids = self._by_number.get(cb.number)
        if ids is not None:
            ids.pop(cb.callback_id, None)
            if not ids:
                del self._by_number[cb.number]

    # -------------------------------------------------------------- inputs

    def on_message_waiting(self, mailbox: str, new: int | None, now: float) -> None:
        """Track the new-message count; a fall means messages were heard.

        Voicemail plays new messages oldest first, so the oldest unheard ones
        are marked listened, for now: the mailbox is noted in ``to_check``,
        and a live run reads which messages moved to Old (by msg_id, see
        :meth:`reconcile_messages`) and corrects the guess."""
        box = self._mailboxes.setdefault(mailbox, _Mailbox())
        if new is None:
            return
        if box.new is not None and new < box.new:
            self.to_check[mailbox] = None
            for cb_id in box.unheard[: box.new - new]:
                cb = self.callbacks.get(cb_id)
                if cb is not None and cb.listened_at is None:
                    self._put(replace(cb, listened_at=now))
            del box.unheard[: box.new - new]
        if len(box.unheard) > new + UNHEARD_SLACK:  # heard or deleted unseen, long ago
            del box.unheard[: len(box.unheard) - new - UNHEARD_SLACK]
        box.new = new

    def reconcile_mailbox(self, mailbox: str, new: int, now: float) -> int:
        """A mailbox's count as the PBX states it after a gap; returns how
        many more new messages it holds than pbxwatch saw being left."""
        box = self._mailboxes.get(mailbox)
        known = len(box.unheard) if box is not None else 0
        self.on_message_waiting(mailbox, new, now)
        return max(0, new - known)

    def on_call(
        self, rec: CallRecord, presence: Presence | None = None, *, found: bool = False
    ) -> Callback | None:
        """A finished call may leave a message (new obligation) or be a
        callback; ``found``: a state read found the message (after a gap)."""
        if rec.direction in ("outbound", "internal"):
            self._try_fulfil(rec)
        if rec.outcome != "voicemail" or rec.voicemail_mailbox is None:
            return None
        owner = self.directory.person_of_mailbox(rec.voicemail_mailbox)
        return self._oblige(
            callback_id=f"callback:{rec.call_id}:{rec.voicemail_mailbox}",
            call_id=rec.call_id,
            mailbox=rec.voicemail_mailbox,
            caller=rec.caller,
            number=rec.caller_e164 if rec.direction == "inbound" else rec.caller,
            left_at=rec.voicemail_left_at or rec.ended_at or rec.started_at,
            presence=presence if owner is not None and rec.target == owner.extension else None,
            found=found,
        )

    def _oblige(self, *, callback_id: str, call_id: str, mailbox: str, caller: str | None,
                number: str | None, left_at: float, presence: Presence | None,
                message_id: str | None = None, found: bool = False) -> Callback | None:  # fmt: skip
        """A new obligation (None if it exists): deadline by the owner's
        unit's policy; when the owner was away for a listed reason, deferred
        until the return (or exempt, where the policy says so)."""
        if callback_id in self.callbacks:
            return None
        owner = self.directory.person_of_mailbox(mailbox)
        unit = self.directory.unit(owner.unit if owner else None)
        away = self.away_reason(presence)
        exempt = unit.callback_policy.during_absence == "exempt"
        cb = Callback(
            callback_id=callback_id,
            call_id=call_id,
            mailbox=mailbox,
            owner=owner.extension if owner else None,
            unit=owner.unit if owner else None,
            caller=caller,
            number=number,
            left_at=left_at,
            deadline=self.calendar.deadline(left_at, unit.callback_policy, unit.phone_hours),
            exempt_reason=away if exempt else None,
            deferred_reason=None if exempt else away,
            message_id=message_id,
            found_at_resync=found,
        )
        self._put(cb)
        self._unheard_in_order(mailbox, cb)
        return cb

    def _unheard_in_order(self, mailbox: str, cb: Callback) -> None:
        """Voicemail plays new messages oldest first: keep them in that order
        (one found at a resync may be older than ones seen being left)."""
        unheard = self._mailboxes.setdefault(mailbox, _Mailbox()).unheard
        unheard.append(cb.callback_id)
        if len(unheard) > 1:
            left = self.callbacks[unheard[-2]].left_at if unheard[-2] in self.callbacks else 0.0
            if left > cb.left_at:
                unheard.sort(key=lambda i: self.callbacks[i].left_at if i in self.callbacks else 0)

    # ------------------------------------------------------- after a gap

    def reconcile_messages(
        self,
        mailbox: str,
        messages: tuple[VoicemailMessage, ...],
        now: float,
        blind_from: float | None,
        presence: Presence | None = None,
    ) -> Counter[str]:
        """A mailbox's messages as the PBX listed them after a login.

        Each callback of the mailbox is matched to its message by msg_id,
        else by when the message was complete and who left it.  A matched
        message in ``Old`` was heard unseen (and one in ``INBOX`` was not,
        whatever a count said); a callback whose message is gone was
        deleted; a message nobody knew, left since pbxwatch went blind
        (``blind_from``), becomes a callback ``found_at_resync``.  Older
        unknown messages predate what pbxwatch follows and are counted only.
        ``presence`` is the owner's, for the exemption of a new obligation."""
        counts: Counter[str] = Counter()
        known = [cb for cb in self.callbacks.values()
                 if cb.mailbox == mailbox and cb.deleted_at is None]  # fmt: skip
        pairs = self._match(known, messages)
        # a count's fall marked the oldest heard; where it guessed wrong, the
        # time it was heard moves to the message that was (oldest first)
        guessed = sorted(cb.listened_at for cb in known if cb.listened_at is not None
                         and cb.callback_id in pairs
                         and pairs[cb.callback_id].folder.lower() == "inbox")  # fmt: skip
        for cb in sorted(known, key=lambda c: c.left_at):
            msg = pairs.get(cb.callback_id)
            if msg is None:
                if cb.left_at < now - DELETE_GRACE:
                    self._put(replace(cb, deleted_at=now))
                    counts["messages_deleted_unseen"] += 1
                continue
            heard = msg.folder.lower() != "inbox"
            listened = cb.listened_at
            if not heard:
                listened = None
            elif listened is None:
                listened = guessed.pop(0) if guessed else now
                counts["messages_heard_unseen"] += 1
            if listened != cb.listened_at or cb.message_id != msg.message_id:
                self._put(replace(cb, listened_at=listened, message_id=msg.message_id))
        taken = {msg.message_id for msg in pairs.values()}
        for msg in messages:
            if msg.message_id in taken:
                continue
            if blind_from is None or msg.origtime is None or msg.origtime < blind_from - 5.0:
                counts["messages_older_unknown"] += 1
                continue
            self._from_message(mailbox, msg, now, presence)
            counts["messages_left_unseen"] += 1
        self._rebuild_mailbox(mailbox, messages)
        return counts

    def number_of(self, caller: str | None) -> str | None:
        """What a callback to ``caller`` must dial, as callbacks keep it:
        E.164, an extension as it is, None when anonymous."""
        return normalise(caller, self.directory.country_code)

    def same_number(self, kept: str | None, caller: str | None) -> bool:
        """A callback's number (``kept``: E.164, an extension, or the
        pseudonym a store that keeps no numbers gave it) is ``caller``'s."""
        number = self.number_of(caller)
        if kept == number:
            return True
        return number is not None and self.pseudonym is not None and kept == self.pseudonym(number)

    def _match(
        self, callbacks: list[Callback], messages: tuple[VoicemailMessage, ...]
    ) -> dict[str, VoicemailMessage]:
        """Callback id -> its message: by msg_id first, then by the nearest
        end of recording within ``MATCH_SECONDS`` from the same number."""
        pairs: dict[str, VoicemailMessage] = {}
        by_id = {m.message_id: m for m in messages if m.message_id}
        used: set[str] = set()
        for cb in callbacks:
            msg = by_id.get(cb.message_id or "")
            if msg is not None:
                pairs[cb.callback_id] = msg
                used.add(msg.message_id)
        for cb in sorted(callbacks, key=lambda c: c.left_at):
            if cb.callback_id in pairs:
                continue
            near = [(abs(m.left_at - cb.left_at), m) for m in messages
                    if m.message_id not in used and m.left_at is not None
                    and self.same_number(cb.number, m.caller)]  # fmt: skip
            diff, msg = min(near, key=lambda p: p[0], default=(MATCH_SECONDS + 1, None))
            if msg is not None and diff <= MATCH_SECONDS:
                pairs[cb.callback_id] = msg
                used.add(msg.message_id)
        return pairs

    def _from_message(
        self, mailbox: str, msg: VoicemailMessage, now: float, presence: Presence | None
    ) -> None:
        caller = None if is_anonymous(msg.caller) else msg.caller.strip()
        cb = self._oblige(callback_id=f"callback:message:{mailbox}:{msg.message_id}"[:160],
                          call_id=f"message:{msg.message_id}"[:64], mailbox=mailbox,
                          caller=caller, number=self.number_of(caller), left_at=msg.left_at or now,
                          presence=presence, message_id=msg.message_id, found=True)  # fmt: skip
        if cb is not None and msg.folder.lower() != "inbox":
            self._put(replace(cb, listened_at=now))

    def _rebuild_mailbox(self, mailbox: str, messages: tuple[VoicemailMessage, ...]) -> None:
        """The unheard list from the callbacks now matched, oldest first, and
        the new-message count as listed."""
        box = self._mailboxes.setdefault(mailbox, _Mailbox())
        box.unheard = sorted(
            (cb.callback_id for cb in self.callbacks.values()
             if cb.mailbox == mailbox and cb.listened_at is None and cb.deleted_at is None),
            key=lambda i: self.callbacks[i].left_at,
        )  # fmt: skip
        box.new = sum(1 for m in messages if m.folder.lower() == "inbox")

    def restore(self, cb: Callback) -> None:
        """Put back an obligation loaded from the store after a restart."""
        self.callbacks[cb.callback_id] = cb
        self._index(cb)
        if cb.listened_at is None and cb.deleted_at is None:
            self._unheard_in_order(cb.mailbox, cb)

    def restore_counts(self, counts: Mapping[str, int]) -> None:
        """New-message counts from a checkpoint: a fall after the restart
        still marks messages heard."""
        for mailbox, new in counts.items():
            self._mailboxes.setdefault(mailbox, _Mailbox()).new = new

    def counts(self) -> dict[str, int]:
        """The new-message counts as last stated (for a checkpoint)."""
        return {m: box.new for m, box in self._mailboxes.items() if box.new is not None}

    def tick(self, now: float) -> list[CallbackEvent]:
        if now - self._last_prune >= 3600.0:
            self._prune(now)
        out: list[CallbackEvent] = []
        for cb_id in list(self._reminders):
            current = self.callbacks[cb_id]
            cb = current
            unit = self.directory.unit(cb.unit)
            soon = cb.deadline - unit.callback_policy.due_soon_seconds
            if not cb.due_soon_sent and soon <= now < cb.deadline:
                cb = replace(cb, due_soon_sent=True)
                out.append(CallbackEvent("callback_due_soon", cb, now))
            if not cb.overdue_sent and now > cb.deadline:
                cb = replace(cb, overdue_sent=True, due_soon_sent=True)
                out.append(CallbackEvent("callback_overdue", cb, now))
            if cb is not current:
                self._put(cb)
        return out

    # ----------------------------------------------------------- internals

    def _prune(self, now: float) -> None:
        """Forget what can no longer change (see :class:`CallbackMemory`)."""
        self._last_prune = now
        closed_keep, open_keep = self.memory.closed_seconds, self.memory.open_seconds
        if closed_keep is None and open_keep is None:
            return
        gone = []
        for cb_id, cb in self.callbacks.items():
            closed = cb.number is None or cb.resolved_at is not None  # exempt ones may still be
            if closed and closed_keep is not None:
                since = cb.resolved_at or cb.left_at
                if now - since > closed_keep or (cb.listened_at is not None and now - since > 3600):
                    gone.append(cb_id)
            elif not closed and open_keep is not None and now - cb.deadline > open_keep:
                gone.append(cb_id)
        for cb_id in gone:
            cb = self.callbacks.pop(cb_id)
            self._unindex(cb)
            self._undefer(cb)
            self._reminders.pop(cb_id, None)
        self.forgotten += len(gone)

    def on_return(self, extension: str, at: float) -> None:
        """The owner is back (an extended absence ended at ``at``): the
        messages deferred meanwhile get their deadline, counted from now by
        the unit's policy, and their reminders."""
        for cb_id in list(self._deferred.get(extension, ())):
            cb = self.callbacks[cb_id]
            unit = self.directory.unit(cb.unit)
            deadline = self.calendar.deadline(at, unit.callback_policy, unit.phone_hours)
            self._put(replace(cb, returned_at=at, deadline=deadline))

    @property
    def deferred_owners(self) -> list[str]:
        """Who has messages waiting for their return (few, usually none)."""
        return list(self._deferred)

    def away_reason(self, presence: Presence | None) -> str | None:
        """Why the owner counts as away (``None``: not away): extended-away
        (``xa`` by default) for a configured reason (semester, tjänsteresa ...)."""
        if presence is None or presence.state not in self.directory.extended_away_states:
            return None
        text = f"{presence.subtype} {presence.message}".lower()
        if any(reason in text for reason in self.directory.extended_absence):
            return presence.describe()
        return None

    def _try_fulfil(self, rec: CallRecord) -> None:
        d = self.directory
        if rec.direction == "outbound":
            number = normalise(rec.target, d.country_code, d.outbound_prefix)
        elif rec.target_kind == "extension":
            number = rec.target
        else:
            return
        if number is None:
            return
        caller_ext = rec.caller
        caller_unit = d.people[caller_ext].unit if caller_ext in d.people else None
        ids = list(self._by_number.get(number, ()))
        if self.pseudonym is not None:
            ids += self._by_number.get(self.pseudonym(number), ())
        for cb_id in ids:
            cb = self.callbacks[cb_id]
            if cb.resolved_at is not None or rec.started_at < cb.left_at:
                continue
            policy = d.unit(cb.unit).callback_policy
            if policy.counts == "answered" and rec.outcome != "answered":
                continue
            if policy.fulfilled_by == "owner" and caller_ext != cb.owner:
                continue
            if policy.fulfilled_by == "unit" and (caller_unit is None or caller_unit != cb.unit):
                continue
            self._put(
                replace(
                    cb,
                    resolved_at=rec.started_at,
                    resolved_by_call=rec.call_id,
                    resolved_from=caller_ext,
                )
            )
