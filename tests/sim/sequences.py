"""Event sequences of calls, normalised so that a simulated call and a
recorded one of the same type can be compared.

Asterisk runs each channel in its own thread, so events of *different*
channels of one call interleave differently from call to call (the
recordings hold a dozen orders of the same answered call).  The order of
one channel's own events is fixed by the dialplan and the bridging core.
A call's signature is therefore the multiset of its channels' sequences:
each channel's role (the originating channel, a phone or trunk leg, a Local
half) followed by the names of the events that carry its ``Uniqueid``,
repeats collapsed.  ``VarSet``/``Newexten`` are left out: they follow the
dialplan text, not the call.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

from pbxwatch.ami.codec import parse_frame
from pbxwatch.ami.server import load_recording
from tests.truth import digits

DIALPLAN = frozenset({"VarSet", "Newexten"})
Signature = tuple[str, ...]


def role(fields: Mapping[str, str], linkedid: str) -> str:
    channel = fields.get("Channel", "")
    kind = ("local1" if channel.endswith(";1") else "local2" if channel.endswith(";2")
            else "trunk" if "/pstn" in channel else "phone")  # fmt: skip
    return ("origin-" if fields.get("Uniqueid") == linkedid else "") + kind


def signature(events: Iterable[Mapping[str, str]]) -> Signature:
    per_channel: dict[str, list[str]] = {}
    for fields in events:
        if fields["Event"] in DIALPLAN:
            continue
        seq = per_channel.setdefault(fields["Uniqueid"], [role(fields, fields["Linkedid"])])
        if seq[-1] != fields["Event"]:
            seq.append(fields["Event"])
    return tuple(sorted(" ".join(s) for s in per_channel.values()))


def by_call(frames: Iterable[Mapping[str, str]]) -> dict[str, list[Mapping[str, str]]]:
    """Channel events grouped by ``Linkedid``, in stream order."""
    calls: dict[str, list[Mapping[str, str]]] = defaultdict(list)
    for fields in frames:
        if "Linkedid" in fields and "Uniqueid" in fields:
            calls[fields["Linkedid"]].append(fields)
    return calls


def recorded(paths: Iterable[Path]) -> dict[str, Counter[Signature]]:
    """Signatures of every recorded call, by its truth classification.

    A recorded call is tied to its truth entry by its first event: the
    caller's number (last nine digits) and a start within 3 s of the
    simulator's origination time."""
    out: dict[str, Counter[Signature]] = defaultdict(Counter)
    for path in paths:
        truth = json.loads(path.with_suffix(".truth.json").read_text(encoding="utf-8"))
        frames = [parse_frame(f.raw) for f in load_recording(path)]
        for events in by_call(frames).values():
            first = events[0]
            start, number = float(first["Timestamp"]), digits(first.get("CallerIDNum"))
            for call in truth["calls"]:
                origin = (call.get("observed_by_simulator") or {}).get("originated_t")
                numbers = {digits(call["caller_number"]), digits(call.get("caller_extension"))}
                if origin is not None and abs(origin - start) < 3 and number in numbers:
                    out[call["expected"]["classification"]][signature(events)] += 1
                    break
    return out


def header_shapes(frames: Iterable[Mapping[str, str]]) -> dict[str, set[tuple[str, ...]]]:
    """The header names (in order) each event type was seen with."""
    shapes: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for fields in frames:
        shapes[fields["Event"]].add(tuple(fields))
    return shapes


def split_at_queue(sig: Signature) -> tuple[Signature, Signature] | None:
    """A call that ends up in the contact centre, in two halves: how it got
    there (the caller's events before ``QueueCallerJoin`` and the phone it
    rang first) and what the queue did (the rest of the caller's events and
    the agents' phones, which app_queue rings without a caller id of their
    own).  None for calls that never join a queue."""
    [origin] = [s for s in sig if s.startswith("origin-")]
    if " QueueCallerJoin " not in origin or any(s.startswith("local") for s in sig):
        return None
    head, tail = origin.split(" QueueCallerJoin ", 1)
    agents = tuple(s for s in sig if s.startswith("phone Newchannel Newstate NewConnectedLine"))
    before = tuple(sorted([head] + [s for s in sig if s != origin and s not in agents]))
    return before, tuple(sorted(["QueueCallerJoin " + tail, *agents]))
