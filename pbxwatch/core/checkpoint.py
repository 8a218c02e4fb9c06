"""The core's live state as plain JSON, so a restart loses no call.

``pbxwatch run`` saves a checkpoint every few seconds and at shutdown; the
next start loads it before it logs in, then the state read after the login
(:mod:`pbxwatch.core.gaps`) reconciles it with what the PBX says now.  A
checkpoint holds what events built and the store does not: calls in
progress (channels, rings, queues, voicemail so far), the calls just
finished (so their late events are not taken for new calls), presence and
diversions, queue members and callers, unreachable devices, the open
missing-forward windows and the recent gaps.  Callbacks and lasting
incidents are rows in the store already and are restored from there.

Every value is JSON: numbers, strings, lists and objects.  ``VERSION``
changes whenever the shape does; a checkpoint of another version is not
loaded (the restart is then only a gap, as before checkpoints).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from typing import Any

from pbxwatch.core.calls import Call, CallTracker, Channel, Ring
from pbxwatch.core.directory import Target
from pbxwatch.core.diversion import Presence
from pbxwatch.core.engine import Engine

VERSION = 2

#: finished calls a checkpoint remembers (late events of older ones are rare)
FINISHED_KEPT = 2000

State = dict[str, Any]

_CALL_SPECIAL = frozenset(
    {"origin", "channels", "open_channels", "rings", "external_legs", "target", "target_presence"}
)
_CALL_PLAIN = tuple(f.name for f in fields(Call) if f.name not in _CALL_SPECIAL)
#: channels and rings are stored as lists of their fields, in this order:
#: a checkpoint at a thousand calls is a few thousand of them
_CHANNEL = tuple(f.name for f in fields(Channel))
_RING = tuple(f.name for f in fields(Ring))


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded (another version, a broken one)."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a checkpoint put back."""

    calls: int
    channels: int
    dropped: int  # calls the store had already reported: finished after it was taken
    saved_at: float | None
    last_event_time: float | None  # PBX time of the last event it had seen


def dump_call(call: Call) -> State:
    """One call as JSON values: a copy (the call goes on changing), made
    field by field (``dataclasses.asdict`` recurses and deep-copies, ten
    times slower: this runs on the event loop)."""
    out: State = {name: getattr(call, name) for name in _CALL_PLAIN}
    out["mwi_mailboxes"] = dict(call.mwi_mailboxes)
    out["queues"], out["queue_attempts"] = list(call.queues), list(call.queue_attempts)
    out["channels"] = [[getattr(c, n) for n in _CHANNEL] for c in call.channels.values()]
    out["open_channels"] = sorted(call.open_channels)
    out["origin"] = call.origin.uniqueid if call.origin else None
    out["rings"] = [[getattr(r, n) for n in _RING] for r in call.rings.values()]
    out["external_legs"] = [[getattr(r, n) for n in _RING] for r in call.external_legs.values()]
    out["target"] = [call.target.kind, call.target.name] if call.target else None
    p = call.target_presence
    out["target_presence"] = [p.state, p.subtype, p.message, p.since] if p else None
    return out


def load_call(state: Mapping[str, Any]) -> Call:
    call = Call(**{name: state[name] for name in _CALL_PLAIN if name in state})
    call.mwi_mailboxes = dict(state.get("mwi_mailboxes", {}))
    call.queues, call.queue_attempts = list(state["queues"]), list(state["queue_attempts"])
    call.channels = {c[0]: Channel(*c) for c in state["channels"]}
    # "open_channels" is not read back: a call works it out from its
    # channels' hangup times (the list is still written, for older readers)
    origin = state.get("origin")
    call.origin = call.channels.get(origin) if origin else None
    call.rings = {r[0]: Ring(*r) for r in state["rings"]}
    call.external_legs = {r[0]: Ring(*r) for r in state["external_legs"]}
    target = state.get("target")
    call.target = Target(target[0], target[1]) if target else None
    presence = state.get("target_presence")
    call.target_presence = Presence(*presence) if presence else None
    return call


def dump_tracker(tracker: CallTracker, *, calls: bool = True) -> State:
    """The tracker's state; without ``calls``, all but the calls (a caller
    that copies them a slice at a time, see ``store.checkpoints``)."""
    finished = list(tracker._finished)[-FINISHED_KEPT:]
    return {
        "calls": [dump_call(c) for c in tracker.calls.values()] if calls else [],
        "ending": dict(tracker._ending),
        "finished": finished,
    }


def load_tracker(tracker: CallTracker, state: Mapping[str, Any], reported: Collection[str]) -> int:
    """Put calls back; those in ``reported`` (already in the store) are
    remembered as finished instead.  Returns how many were dropped so."""
    dropped = 0
    for lid in state.get("finished", ()):
        tracker._finished[lid] = None
    for raw in state.get("calls", ()):
        call = load_call(raw)
        if call.linkedid in reported:
            tracker._finished[call.linkedid] = None
            dropped += 1
            continue
        tracker.calls[call.linkedid] = call
        tracker.channels.update(call.channels)
    for lid, ended in state.get("ending", {}).items():
        if lid in tracker.calls:
            tracker._ending[lid] = float(ended)
    return dropped


def dump(engine: Engine, *, calls: bool = True) -> State:
    """The engine's live state, JSON-ready (``calls``: see ``dump_tracker``)."""
    return {
        "version": VERSION,
        "now": engine.now,
        "last_event_time": engine.last_event_time,
        "calls": dump_tracker(engine.calls, calls=calls),
        "presence": engine.presence.dump(),
        "queues": engine.queues.dump(),
        "absence": engine.absence.dump(),
        "alerts": engine.alerts.dump(),
        "mailbox_counts": engine.callbacks.counts(),
    }


def load(engine: Engine, state: Mapping[str, Any], reported: Collection[str] = ()) -> Loaded:
    """Put a checkpoint back into a fresh engine (before anything else is
    restored or fed).  Raises :class:`CheckpointError` on another version."""
    if state.get("version") != VERSION:
        raise CheckpointError(f"checkpoint version {state.get('version')!r}, expected {VERSION}")
    try:
        dropped = load_tracker(engine.calls, state["calls"], reported)
        engine.presence.load(state["presence"])
        engine.queues.load(state["queues"])
        engine.absence.load(state["absence"])
        engine.alerts.load(state["alerts"])
        engine.callbacks.restore_counts(state.get("mailbox_counts", {}))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CheckpointError(f"checkpoint does not load: {type(exc).__name__}: {exc}") from exc
    engine.now = max(engine.now, float(state.get("now") or 0.0))
    engine.last_event_time = state.get("last_event_time")
    return Loaded(len(engine.calls.calls), len(engine.calls.channels), dropped,
                  state.get("saved_at"), engine.last_event_time)  # fmt: skip


def call_ids(state: Mapping[str, Any]) -> list[str]:
    """The Linkedids of the calls in progress a checkpoint holds (to ask the
    store which of them it has reported since)."""
    return [c["linkedid"] for c in state.get("calls", {}).get("calls", ())]
