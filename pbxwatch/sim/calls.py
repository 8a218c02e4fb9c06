"""Call scripts: the event sequence Asterisk 22 emits for each kind of call.

Each script mirrors a call type of the lab recordings (``../shared/
ami-recordings``): a direct call through ``Dial(IAX2/<ext>,20)``, voicemail
with the ``u``/``b`` greeting, the contact-centre queue that rings one
agent at a time, a group number that rings every member through
``Local/<ext>@grp-member`` channels, outbound calls through the trunk and
``*97`` (VoiceMailMain).  ``tests/sim/test_sequences.py`` compares the
sequences with the recordings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pbxwatch.settings import Settings
from pbxwatch.sim.emitter import Emitter, SimChannel


@dataclass(frozen=True, slots=True)
class SimQueue:
    name: str
    kind: Literal["group", "contact_centre"]
    did: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Pbx:
    """What the simulator needs of the directory."""

    trunk: str
    devices: dict[str, str]
    names: dict[str, str]
    dids: dict[str, str]
    mailboxes: dict[str, str]
    presentities: dict[str, str]
    units: dict[str, str]
    queues: dict[str, SimQueue] = field(default_factory=dict)

    @property
    def contact_centre(self) -> SimQueue | None:
        return next((q for q in self.queues.values() if q.kind == "contact_centre"), None)

    @classmethod
    def from_settings(cls, settings: Settings) -> Pbx:
        d = settings.directory
        trunk = (settings.inbound.trunk_channels or ["IAX2/pstn-*"])[0]
        trunk = trunk.rstrip("*").rstrip("-") or "IAX2/pstn"
        people = {ext: p for ext, p in d.people.items() if p.dids}
        templates = d.device_templates or ["PJSIP/{ext}"]
        return cls(
            trunk=trunk,
            devices={e: (p.devices or [templates[0].format(ext=e)])[0] for e, p in people.items()},
            names={e: p.name for e, p in people.items()},
            dids={e: p.dids[0] for e, p in people.items()},
            mailboxes={e: p.mailbox or f"{e}@default" for e, p in people.items()},
            presentities={e: settings.diversion.presentity_template.format(ext=e) for e in people},
            units={e: p.unit for e, p in people.items()},
            queues={
                name: SimQueue(name, q.kind, q.dids[0], tuple(q.members))
                for name, q in d.queues.items()
                if q.dids and q.members
            },
        )


@dataclass(frozen=True, slots=True)
class QueueAttempt:
    """One offering of a queue caller to one member."""

    ext: str
    start: float  # seconds after the caller joined
    seconds: float
    result: Literal["answer", "noanswer", "cancel", "elsewhere"]


@dataclass(frozen=True, slots=True)
class _Offer:
    ext: str
    interface: str
    leg: SimChannel  # the channel the queue dialled (the phone, or Local ;1)
    dialer: SimChannel  # the channel that dialled the phone (the caller, or Local ;2)
    phone: SimChannel


class Scripts:
    """Writes calls into an Emitter; every method returns when the call ends."""

    def __init__(self, pbx: Pbx, em: Emitter) -> None:
        self.pbx = pbx
        self.em = em
        self.answered_at: float | None = None  # first answer by a person since take_answer()

    def take_answer(self) -> float | None:
        """When a person first answered in the call just written."""
        at, self.answered_at = self.answered_at, None
        return at

    # ------------------------------------------------------------ inbound

    def inbound(self, t: float, caller: str, did: str) -> SimChannel:
        trunk = self.em.channel(self.pbx.trunk, t)
        trunk.state, trunk.cid_num, trunk.context, trunk.exten = "Ring", caller, "from-pstn", did
        self.em.newchannel(t, trunk)
        self.em.newexten(t, trunk, "NoOp", f"Direktnummer {did}")
        return trunk

    def to_extension(self, trunk: SimChannel, t: float, ext: str) -> None:
        trunk.context, trunk.exten = "ext-local", ext
        self.em.newexten(t, trunk, "Set", "PRES=available")
        self.em.varset(t, trunk, "PRES", "available")

    def ring_phone(self, t: float, src: SimChannel, ext: str, dial_app: bool = True) -> SimChannel:
        device = self.pbx.devices[ext]
        if dial_app:
            self.em.newexten(t, src, "Dial", f"{device},20")
        phone = self.em.channel(device, t, src.linkedid)
        self.em.newchannel(t, phone)
        phone.cid_num, phone.connected_num, phone.context, phone.exten = (
            ext, src.cid_num, "from-phones", ext,
        )  # fmt: skip
        self.em.newstate(t, phone, "Ringing")
        self.em.dial_begin(t, src, phone, ext)
        self.em.device_state(t, device, "RINGING")
        self.em.dial_state(t, src, phone, "RINGING")
        return phone

    def talk(self, t: float, a: SimChannel, b: SimChannel, seconds: float) -> float:
        """Bridge two channels, talk, the first one hangs up; returns the end."""
        bridge = f"bridge-{a.uniqueid}-{b.uniqueid}"
        self.em.emit(t, "BridgeCreate", "call,all", BridgeUniqueid=bridge, BridgeType="basic")
        self.em.bridge(t, bridge, "BridgeEnter", b, 1)
        self.em.bridge(t, bridge, "BridgeEnter", a, 2)
        end = t + seconds
        self.em.emit(end, "HangupRequest", "call,all", a.snapshot(), Cause="16")
        self.em.bridge(end, bridge, "BridgeLeave", a, 1)
        self.em.hangup(end, a, 16, request=False)
        self.em.bridge(end, bridge, "BridgeLeave", b, 0)
        self.em.emit(end, "BridgeDestroy", "call,all", BridgeUniqueid=bridge)
        self.em.hangup(end, b, 16)
        return end

    def answer(self, t: float, src: SimChannel, phone: SimChannel) -> None:
        if self.answered_at is None:
            self.answered_at = t
        self.em.newstate(t, phone, "Up")
        self.em.dial_end(t, src, phone, "ANSWER")
        if src.state != "Up":
            self.em.newstate(t, src, "Up")
        self.em.device_state(t, self.pbx.devices.get(phone.cid_num, phone.name), "INUSE")

    def direct_answered(self, t: float, caller: str, ext: str, ring: float, talk: float) -> float:
        trunk = self.inbound(t, caller, self.pbx.dids[ext])
        self.to_extension(trunk, t, ext)
        phone = self.ring_phone(t, trunk, ext)
        self.answer(t + ring, trunk, phone)
        end = self.talk(t + ring, trunk, phone, talk)
        self.em.device_state(end, self.pbx.devices[ext], "NOT_INUSE")
        return end

    def direct_abandoned(self, t: float, caller: str, ext: str, after: float) -> float:
        trunk = self.inbound(t, caller, self.pbx.dids[ext])
        self.to_extension(trunk, t, ext)
        phone = self.ring_phone(t, trunk, ext)
        end = t + after
        self.em.emit(end, "HangupRequest", "call,all", trunk.snapshot(), Cause="16")
        self.em.dial_end(end, trunk, phone, "CANCEL")
        self.em.hangup(end, phone, 16)
        self.em.hangup(end, trunk, 16)
        self.em.device_state(end, self.pbx.devices[ext], "NOT_INUSE")
        return end

    def direct_unanswered(
        self,
        t: float,
        caller: str,
        ext: str,
        *,
        busy: bool,
        then: Literal["voicemail", "contact_centre"],
        message: float | None,
        queue: list[QueueAttempt] | None = None,
        talk: float = 0.0,
    ) -> float:
        """Rung unanswered (20 s) or busy, then voicemail or the contact centre."""
        trunk = self.inbound(t, caller, self.pbx.dids[ext])
        self.to_extension(trunk, t, ext)
        phone = self.ring_phone(t, trunk, ext)
        t2 = t if busy else t + 20.0
        self.em.dial_end(t2, trunk, phone, "BUSY" if busy else "NOANSWER")
        self.em.hangup(t2, phone, 17 if busy else 0)
        self.em.device_state(t2, self.pbx.devices[ext], "NOT_INUSE")
        return self._not_reached(t2, trunk, ext, then, "b" if busy else "u", message, queue, talk)

    def direct_diverted(
        self,
        t: float,
        caller: str,
        ext: str,
        *,
        then: Literal["voicemail", "contact_centre"],
        message: float | None,
        queue: list[QueueAttempt] | None = None,
        talk: float = 0.0,
    ) -> float:
        """Presence diverts: the dialplan skips Dial (the phone never rings)."""
        trunk = self.inbound(t, caller, self.pbx.dids[ext])
        self.to_extension(trunk, t, ext)
        return self._not_reached(t, trunk, ext, then, "u", message, queue, talk)

    def _not_reached(
        self,
        t: float,
        trunk: SimChannel,
        ext: str,
        then: Literal["voicemail", "contact_centre"],
        greeting: str,
        message: float | None,
        queue: list[QueueAttempt] | None,
        talk: float,
    ) -> float:
        """Where the dialplan sends a caller the person did not answer."""
        if then == "voicemail":
            return self.voicemail(t, trunk, ext, greeting, message)
        return self.contact_centre(t, trunk, queue or [], talk)

    def voicemail(
        self, t: float, trunk: SimChannel, ext: str, flag: str, message: float | None
    ) -> float:
        mailbox = self.pbx.mailboxes[ext]
        self.em.newexten(t, trunk, "VoiceMail", f"{mailbox},{flag}")
        self.em.newstate(t, trunk, "Up")
        end = t + (message if message is not None else 6.0)
        self.em.emit(end, "HangupRequest", "call,all", trunk.snapshot(), Cause="16")
        if message is not None:
            self.em.message_waiting(end, trunk, mailbox, +1)
        self.em.hangup(end, trunk, 16)
        return end

    # ------------------------------------------------------------ queues

    def contact_centre(
        self, t: float, trunk: SimChannel, attempts: list[QueueAttempt], talk: float
    ) -> float:
        cc = self.pbx.contact_centre
        assert cc is not None, "no contact_centre queue with a DID and members"
        trunk.context, trunk.exten = "kontaktcenter", "s"
        self.em.newexten(t, trunk, "Answer", "")
        if trunk.state != "Up":
            self.em.newstate(t, trunk, "Up")
        self.em.newexten(t, trunk, "Playback", "hello-world")
        return self.queue(t + 1.4, trunk, cc, attempts, talk, one_at_a_time=True)

    def queue_call(
        self, t: float, caller: str, queue: SimQueue, attempts: list[QueueAttempt], talk: float
    ) -> float:
        trunk = self.inbound(t, caller, queue.did)
        if queue.kind == "contact_centre":
            return self.contact_centre(t, trunk, attempts, talk)
        trunk.context, trunk.exten = f"grp-{queue.name}", "s"
        return self.queue(t, trunk, queue, attempts, talk, one_at_a_time=False)

    def queue(
        self,
        t: float,
        caller: SimChannel,
        queue: SimQueue,
        attempts: list[QueueAttempt],
        talk: float,
        *,
        one_at_a_time: bool,
    ) -> float:
        em = self.em
        em.newexten(t, caller, "Queue", f"{queue.name},,,,300" if one_at_a_time
                    else f"{queue.name},r,,,45")  # fmt: skip
        em.queue_event(t, "QueueCallerJoin", caller, queue.name, Position="1", Count="1")
        end = t
        answered: tuple[_Offer, float] | None = None
        for a in attempts:
            ts, te = t + a.start, t + a.start + a.seconds
            offer = self._offer(ts, caller, a.ext, local=not one_at_a_time)
            name = self.pbx.names.get(a.ext, a.ext)
            em.agent_event(ts, "AgentCalled", caller, offer.leg, queue.name, offer.interface, name)
            em.member_status(ts, queue.name, offer.interface, name, 6)
            if a.result == "answer":
                self.answer(te, offer.dialer, offer.phone)
                if offer.leg is not offer.phone:
                    em.newstate(te, offer.leg, "Up")
                    em.dial_end(te, caller, offer.leg, "ANSWER")
                em.member_status(te, queue.name, offer.interface, name, 2, in_call=True)
                answered = (offer, a.start + a.seconds)
                continue
            if a.result == "noanswer":
                ring_ms = str(int(a.seconds * 1000))
                em.agent_event(te, "AgentRingNoAnswer", caller, offer.leg, queue.name,
                               offer.interface, name, RingTime=ring_ms)  # fmt: skip
                em.dial_end(te, caller, offer.leg, "NOANSWER")
            em.dial_end(te, caller, offer.leg, "CANCEL")
            cause = {"elsewhere": 26, "noanswer": 0}.get(a.result, 16)
            if offer.leg is not offer.phone:
                em.dial_end(te, offer.dialer, offer.phone, "CANCEL")
                em.hangup(te, offer.leg, cause)
                em.hangup(te, offer.dialer, cause)
            em.hangup(te, offer.phone, cause)
            em.device_state(te, self.pbx.devices[a.ext], "NOT_INUSE")
            em.member_status(te, queue.name, offer.interface, name, 1)
            end = max(end, te)
        if answered is None:
            em.queue_event(end, "QueueCallerAbandon", caller, queue.name, Position="1",
                           OriginalPosition="1", HoldTime=str(int(end - t)))  # fmt: skip
            em.queue_event(end, "QueueCallerLeave", caller, queue.name, Position="1", Count="0")
            em.hangup(end, caller, 16)
            return end
        offer, waited = answered
        ta = t + waited
        name = self.pbx.names.get(offer.ext, offer.ext)
        em.queue_event(ta, "QueueCallerLeave", caller, queue.name, Position="1", Count="0")
        em.agent_event(ta, "AgentConnect", caller, offer.leg, queue.name, offer.interface, name,
                       HoldTime=str(int(waited)), RingTime=str(int(waited)))  # fmt: skip
        end = self.talk(ta, caller, offer.leg, talk)
        if offer.leg is not offer.phone:  # the Local pair and the phone behind it
            em.hangup(end, offer.dialer, 16)
            em.hangup(end, offer.phone, 16)
        em.agent_event(end, "AgentComplete", caller, offer.leg, queue.name, offer.interface,
                       name, HoldTime=str(int(waited)), TalkTime=str(int(talk)),
                       Reason="caller")  # fmt: skip
        em.device_state(end, self.pbx.devices[offer.ext], "NOT_INUSE")
        em.member_status(end, queue.name, offer.interface, name, 1)
        return end

    def _offer(self, t: float, caller: SimChannel, ext: str, *, local: bool) -> _Offer:
        """Start ringing one member, directly or through a Local pair."""
        if not local:
            phone = self.ring_phone(t, caller, ext, dial_app=False)
            return _Offer(ext, self.pbx.devices[ext], phone, caller, phone)
        one, two = self.em.local_pair(f"{ext}@grp-member", t, caller.linkedid)
        two.context, two.exten = "grp-member", ext
        self.em.newchannel(t, one)
        self.em.newchannel(t, two)
        self.em.dial_begin(t, caller, one, f"{ext}@grp-member")
        phone = self.ring_phone(t, two, ext)
        self.em.dial_state(t, caller, one, "RINGING")
        return _Offer(ext, f"Local/{ext}@grp-member", one, two, phone)

    # ------------------------------------------------------------ from phones

    def outbound(
        self, t: float, ext: str, number: str, result: Literal["answer", "noanswer", "busy"],
        seconds: float,
    ) -> float:  # fmt: skip
        em = self.em
        phone = em.channel(self.pbx.devices[ext], t)
        phone.state, phone.cid_num, phone.context, phone.exten = "Ring", ext, "from-phones", number
        em.newchannel(t, phone)
        did = self.pbx.dids.get(ext, ext)
        em.newexten(t, phone, "Dial", f"{self.pbx.trunk}/{number},120,f({did})")
        out = em.channel(self.pbx.trunk, t, phone.linkedid)
        em.newchannel(t, out)
        out.cid_num, out.context, out.exten = number, "from-pstn", number
        em.newstate(t, out, "Ringing")
        em.dial_begin(t, phone, out, f"pstn/{number}")
        if result == "busy":
            em.dial_end(t + 1, phone, out, "BUSY")
            em.hangup(t + 1, out, 17)
            em.hangup(t + 1, phone, 16)
            return t + 1
        if result == "noanswer":
            end = t + seconds
            em.emit(end, "HangupRequest", "call,all", phone.snapshot(), Cause="16")
            em.dial_end(end, phone, out, "CANCEL")
            em.hangup(end, out, 16)
            em.hangup(end, phone, 16, request=False)
            return end
        em.newstate(t + 5, out, "Up")
        em.dial_end(t + 5, phone, out, "ANSWER")
        em.newstate(t + 5, phone, "Up")
        return self.talk(t + 5, phone, out, seconds)

    def listen(self, t: float, ext: str, seconds: float = 20.0) -> float:
        """``*97``: VoiceMailMain; the messages move to Old when it hangs up."""
        em = self.em
        phone = em.channel(self.pbx.devices[ext], t)
        phone.state, phone.cid_num, phone.context, phone.exten = "Ring", ext, "from-phones", "*97"
        em.newchannel(t, phone)
        mailbox = self.pbx.mailboxes[ext]
        em.newexten(t, phone, "VoiceMailMain", f"{mailbox},s")
        em.newstate(t, phone, "Up")
        end = t + seconds
        em.emit(end, "HangupRequest", "call,all", phone.snapshot(), Cause="16")
        em.message_waiting(end, phone, mailbox, 0)
        em.hangup(end, phone, 16, request=False)
        return end
