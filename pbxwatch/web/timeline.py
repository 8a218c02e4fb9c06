"""One call's timeline and classification, from its stored row, rings and
incidents, in words a person reads ("missing forward: rang 1001 for 18 s,
no diversion set, landed in voicemail").

The store keeps each ring's start and length, the answer time and the end
of the call; queue entry and exit and the moment voicemail took the call
are placed at the first and last ring that concerns them (marked
``approximate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pbxwatch.core.records import iso

TEXT: dict[str, dict[str, str]] = {
    "sv": {
        "entry_in": "Samtal in från {caller} till {dialled} ({kind} {target})",
        "entry_other": "Samtal ({direction}) från {caller} till {target}",
        "queue_in": "In i kö {queue}",
        "queue_out": "Ut ur kö {queue}",
        "ring": "Ringde {ext}{name} i {seconds} s ({rings} signaler): {result}",
        "answered": "Besvarat av {who} efter {seconds} s ({rings} signaler)",
        "voicemail": "Röstbrevlåda {mailbox}: meddelande lämnat",
        "voicemail_no_message": "Röstbrevlåda {mailbox}: inget meddelande",
        "overflow": "Gick vidare till kontaktcenter",
        "transfer": "Kopplat vidare till {to}",
        "hangup": "Samtalet slut: {outcome}{where}",
        "missing_forward": "saknad hänvisning: ringde {ext} i {seconds} s, ingen hänvisning "
        "satt, hamnade i {landed}",
        "unanswered_ring": "obesvarad signal: {ext} ringde {seconds} s ({rings} signaler) "
        "utan svar",
        "diverted": "hänvisad: {ext} hade hänvisning, samtalet gick {where}",
        "answered_why": "besvarat av {who} efter {seconds} s ({rings} signaler)",
        "abandoned_why": "uppringaren gav upp {where} efter {seconds} s",
        "other_why": "utfall {outcome}",
        "unsure": " (osäkert: samtalet pågick under en AMI-lucka)",
        "landed_voicemail": "röstbrevlådan",
        "landed_contact_centre": "kontaktcenter",
        "where_ringing": "medan det ringde",
        "where_queue": "i kön",
        "where_elsewhere": "",
        "approximate": "ungefärlig tid",
        "number_hidden": "dolt nummer",
    },
    "en": {
        "entry_in": "Call in from {caller} to {dialled} ({kind} {target})",
        "entry_other": "Call ({direction}) from {caller} to {target}",
        "queue_in": "Entered queue {queue}",
        "queue_out": "Left queue {queue}",
        "ring": "Rang {ext}{name} for {seconds} s ({rings} rings): {result}",
        "answered": "Answered by {who} after {seconds} s ({rings} rings)",
        "voicemail": "Voicemail {mailbox}: message left",
        "voicemail_no_message": "Voicemail {mailbox}: no message",
        "overflow": "Went on to the contact centre",
        "transfer": "Transferred to {to}",
        "hangup": "Call ended: {outcome}{where}",
        "missing_forward": "missing forward: rang {ext} for {seconds} s, no diversion set, "
        "landed in {landed}",
        "unanswered_ring": "unanswered ring: {ext} rang {seconds} s ({rings} rings) "
        "without an answer",
        "diverted": "diverted: {ext} had a diversion set, the call went {where}",
        "answered_why": "answered by {who} after {seconds} s ({rings} rings)",
        "abandoned_why": "the caller gave up {where} after {seconds} s",
        "other_why": "outcome {outcome}",
        "unsure": " (unsure: the call was up during an AMI gap)",
        "landed_voicemail": "voicemail",
        "landed_contact_centre": "the contact centre",
        "where_ringing": "while it rang",
        "where_queue": "in the queue",
        "where_elsewhere": "",
        "approximate": "approximate time",
        "number_hidden": "number withheld",
    },
}


@dataclass(frozen=True, slots=True)
class Step:
    at: float
    kind: str
    text: str
    approximate: bool = False

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        return {
            "at": iso(self.at, tz),
            "kind": self.kind,
            "text": self.text,
            "approximate": self.approximate,
        }


def _s(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.0f}"


def timeline(
    call: Any, rings: list[Any], caller: str | None, names: dict[str, str], lang: str
) -> list[Step]:
    """The call's steps in time order.  ``caller`` is the number as this
    viewer may see it; ``names`` extension -> person's name."""
    w = TEXT[lang if lang in TEXT else "sv"]
    who = caller or w["number_hidden"]
    steps: list[Step] = []
    if call.direction == "inbound":
        steps.append(
            Step(
                call.started_at,
                "entry",
                w["entry_in"].format(
                    caller=who,
                    dialled=call.dialled or "—",
                    kind=call.target_kind or "—",
                    target=call.target or "—",
                ),
            )
        )
    else:
        steps.append(
            Step(
                call.started_at,
                "entry",
                w["entry_other"].format(
                    direction=call.direction, caller=who, target=call.target or "—"
                ),
            )
        )
    for queue in call.queues or []:
        mine = [r for r in rings if r.queue == queue]
        first = mine[0].started_at if mine else call.started_at
        steps.append(Step(first, "queue_entry", w["queue_in"].format(queue=queue), True))
        if mine:
            last = max(r.started_at + r.seconds for r in mine)
            steps.append(Step(last, "queue_exit", w["queue_out"].format(queue=queue), True))
    for r in rings:
        name = f" ({names[r.extension]})" if r.extension in names else ""
        steps.append(
            Step(
                r.started_at,
                "ring",
                w["ring"].format(
                    ext=r.extension,
                    name=name,
                    seconds=_s(r.seconds),
                    rings=r.rings,
                    result=r.result,
                ),
            )
        )
    if call.answered_by and call.answer_seconds is not None:
        steps.append(
            Step(
                call.started_at + call.answer_seconds,
                "answered",
                w["answered"].format(
                    who=call.answered_by,
                    seconds=_s(call.answer_seconds),
                    rings=call.rings_before_answer if call.rings_before_answer is not None else "—",
                ),
            )
        )
    ring_end = max((r.started_at + r.seconds for r in rings), default=call.started_at)
    if call.overflowed_to_contact_centre:
        steps.append(Step(ring_end, "overflow", w["overflow"], True))
    if call.voicemail_mailbox:
        key = "voicemail" if call.outcome == "voicemail" else "voicemail_no_message"
        steps.append(
            Step(ring_end, "voicemail", w[key].format(mailbox=call.voicemail_mailbox), True)
        )
    if call.transferred_to:
        steps.append(Step(ring_end, "transfer", w["transfer"].format(to=call.transferred_to), True))
    end = call.ended_at if call.ended_at is not None else ring_end
    where = w.get(f"where_{call.abandoned_where}", "") if call.abandoned_where else ""
    steps.append(
        Step(
            end,
            "hangup",
            w["hangup"].format(outcome=call.outcome, where=f" ({where})" if where else ""),
        )
    )
    order = {"entry": 0, "queue_entry": 1, "ring": 2, "answered": 3, "queue_exit": 4}
    return sorted(steps, key=lambda s: (s.at, order.get(s.kind, 5)))


def classify(call: Any, rings: list[Any], incidents: list[Any], lang: str) -> tuple[str, str]:
    """(kind, why): the call's classification and the reason in words."""
    w = TEXT[lang if lang in TEXT else "sv"]
    by_kind = {i.kind: i for i in incidents}
    mf = by_kind.get("missing_forward")
    if mf is not None:
        d = mf.details or {}
        landed = w.get(f"landed_{d.get('landed_in', 'voicemail')}", str(d.get("landed_in")))
        why = w["missing_forward"].format(
            ext=mf.extension or call.target, seconds=_s(d.get("ring_seconds")), landed=landed
        )
        return "missing_forward", why + (w["unsure"] if d.get("unsure") else "")
    parts: list[str] = []
    if call.diverted:
        where = "→ " + (call.voicemail_mailbox or call.transferred_to or call.outcome)
        parts.append(w["diverted"].format(ext=call.target or "—", where=where))
    if call.outcome == "answered" and call.answered_by:
        parts.append(
            w["answered_why"].format(
                who=call.answered_by,
                seconds=_s(call.answer_seconds),
                rings=call.rings_before_answer if call.rings_before_answer is not None else "—",
            )
        )
    elif call.outcome == "abandoned":
        dur = (call.ended_at - call.started_at) if call.ended_at is not None else None
        where = w.get(f"where_{call.abandoned_where}", "") if call.abandoned_where else ""
        parts.append(w["abandoned_why"].format(where=where, seconds=_s(dur)).replace("  ", " "))
    else:
        parts.append(w["other_why"].format(outcome=call.outcome))
    for inc in incidents:
        if inc.kind == "unanswered_ring":
            d = inc.details or {}
            parts.append(
                w["unanswered_ring"].format(
                    ext=inc.extension, seconds=_s(d.get("seconds")), rings=d.get("rings", "—")
                )
            )
    if call.diverted:
        kind = "diverted"
    elif "unanswered_ring" in by_kind:
        kind = "unanswered_ring"
    else:
        kind = str(call.outcome)
    return kind, "; ".join(parts)
