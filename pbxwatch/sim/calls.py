"""Call scripts: the event sequence Asterisk 22 emits for each kind of call.

Each script mirrors a call type of the lab recordings (``../shared/
ami-recordings``): a direct call through ``Dial(IAX2/<ext>,20)``, voicemail
with the ``u``/``b`` greeting, the contact-centre queue that rings one
agent at a time (and an agent's blind transfer), a group number that rings
every member through ``Local/<ext>@grp-member`` channels (with the Local
pair optimised away once a member answers), outbound calls through the
trunk and ``*97`` (VoiceMailMain).  ``tests/sim/test_sequences.py`` checks
every simulated call's per-channel sequences against the recordings.

Two rules of the bridging core shape every ending: the channel that runs
dialplan (the caller's) ends with ``HangupRequest``, ``SoftHangupRequest``,
``HangupRequest``, ``Hangup``; a dialled channel with ``HangupRequest``,
``Hangup`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pbxwatch.settings import Settings
from pbxwatch.sim.emitter import Emitter, Member, SimBridge, SimChannel

#: QueueMemberStatus codes of device states (ast_device_state)
MEMBER_STATUS = {"UNKNOWN": 0, "NOT_INUSE": 1, "INUSE": 2, "UNAVAILABLE": 5, "RINGING": 6}


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

    def member(self, queue: SimQueue, ext: str) -> Member:
        """Group numbers ring members through Local channels (dynamic
        members); the contact centre rings the phones (static members)."""
        device = self.devices[ext]
        if queue.kind == "group":
            return Member(queue.name, self.names[ext], f"Local/{ext}@grp-member", device,
                          "dynamic")  # fmt: skip
        return Member(queue.name, self.names[ext], device, device, "static")

    def memberships(self, ext: str) -> list[Member]:
        return [self.member(q, ext) for q in self.queues.values() if ext in q.members]

    def idle(self, ext: str) -> str:
        """An idle IAX2 phone reports UNKNOWN, not NOT_INUSE (the lab's phones)."""
        return "UNKNOWN" if self.devices[ext].startswith("IAX2/") else "NOT_INUSE"

    def idle_status(self, ext: str) -> int:
        """The QueueMemberStatus ``Status`` of a member whose phone is idle."""
        return MEMBER_STATUS[self.idle(ext)]

    def hint(self, ext: str) -> str:
        return f"{self.devices[ext]},{self.presentities[ext]}"

    @classmethod
    def from_settings(cls, settings: Settings) -> Pbx:
        d = settings.directory
        # everyone has a phone (a queue member may have no number of their
        # own); only people with a DID are called directly
        people = d.people
        templates = d.device_templates or ["PJSIP/{ext}"]
        devices = {e: (p.devices or [templates[0].format(ext=e)])[0] for e, p in people.items()}
        trunk = (settings.inbound.trunk_channels or ["IAX2/pstn-*"])[0]
        if "/" not in trunk:  # an endpoint name: on the phones' technology
            tech = next(iter(devices.values()), "PJSIP/").split("/", 1)[0]
            trunk = f"{tech}/{trunk}"
        trunk = trunk.rstrip("*").rstrip("-") or "IAX2/pstn"
        return cls(
            trunk=trunk,
            devices=devices,
            names={e: p.name for e, p in people.items()},
            dids={e: p.dids[0] for e, p in people.items() if p.dids},
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
    member: Member
    leg: SimChannel  # the channel the queue dialled (the phone, or Local ;1)
    dialer: SimChannel  # the channel that dialled the phone (the caller, or Local ;2)
    phone: SimChannel


class Scripts:
    """Writes calls into an Emitter; every method returns when the call ends."""

    def __init__(self, pbx: Pbx, em: Emitter) -> None:
        self.pbx = pbx
        self.em = em
        self.answered_at: float | None = None  # first answer by a person since take_answer()
        self._optimizations = 0

    def take_answer(self) -> float | None:
        """When a person first answered in the call just written."""
        at, self.answered_at = self.answered_at, None
        return at

    # ------------------------------------------------------------ states

    def phone_state(self, t: float, ext: str, state: str) -> None:
        """A desk phone changes state: its hint, its device and every queue
        membership that follows the device."""
        text = {"RINGING": "Ringing", "INUSE": "InUse"}.get(state, "Idle")
        state = self.pbx.idle(ext) if text == "Idle" else state
        self.em.extension_status(t, ext, self.pbx.hint(ext), text)
        self.em.device_state(t, self.pbx.devices[ext], state)
        for m in self.pbx.memberships(ext):
            self.em.member_event(t, "QueueMemberStatus", m, MEMBER_STATUS[state],
                                 in_call=state == "INUSE")  # fmt: skip

    def reachability(self, t: float, ext: str, *, reachable: bool) -> None:
        """The phone answers its qualify again, or stops answering (switched
        off, unplugged): in the order of the lab's PJSIP recording, chan_pjsip's
        ``PeerStatus``, the hint, the device, the queue memberships, then
        res_pjsip's ``ContactStatus``.  IAX2 (whose recordings hold no
        ``PeerStatus``) reports only the hint, device and memberships."""
        device = self.pbx.devices[ext]
        pjsip = device.startswith("PJSIP/")
        state = self.pbx.idle(ext) if reachable else "UNAVAILABLE"
        if pjsip:
            self.em.peer_status(t, device, "Reachable" if reachable else "Unreachable")
        self.em.extension_status(t, ext, self.pbx.hint(ext),
                                 "Idle" if reachable else "Unavailable")  # fmt: skip
        self.em.device_state(t, device, state)
        for m in self.pbx.memberships(ext):
            self.em.member_event(t, "QueueMemberStatus", m, MEMBER_STATUS[state])
        if pjsip:
            endpoint = device.split("/", 1)[1]
            self.em.contact_status(t, endpoint, "Reachable" if reachable else "Unreachable")

    # ------------------------------------------------------------ building blocks

    def inbound(self, t: float, caller: str, did: str) -> SimChannel:
        trunk = self.em.channel(self.pbx.trunk, t)
        trunk.state, trunk.cid_num, trunk.context, trunk.exten = "Ring", caller, "from-pstn", did
        self.em.newchannel(t, trunk)
        self.em.newexten(t, trunk, "NoOp", f"Direktnummer {did}")
        return trunk

    def to_extension(self, trunk: SimChannel, t: float, ext: str) -> None:
        trunk.context, trunk.exten, trunk.priority = "ext-local", ext, 0
        self.em.newexten(t, trunk, "Set", "PRES=available")
        self.em.varset(t, trunk, "PRES", "available")

    def ring_phone(self, t: float, src: SimChannel, ext: str, *, dial_app: bool = True,
                   ringing: bool = True) -> SimChannel:  # fmt: skip
        """``Dial(<device>)`` from dialplan: the phone leg is created
        (``default``/``s``), takes its caller id, rings.  ``ringing`` False:
        the phone answers busy before it rings (no ``DialState``)."""
        device, em = self.pbx.devices[ext], self.em
        if dial_app:
            em.newexten(t, src, "Dial", f"{device},20")
        phone = em.channel(device, t, src.linkedid)
        em.newchannel(t, phone)
        phone.cid_num, phone.connected_num, phone.context, phone.exten = (
            ext, src.cid_num, "", ext,
        )  # fmt: skip
        em.new_callerid(t, phone)
        em.new_connected_line(t, phone)
        phone.context = "from-phones"
        em.newstate(t, phone, "Ringing")
        em.dial_begin(t, src, phone, device.split("/", 1)[1])
        if ringing:
            self.phone_state(t, ext, "RINGING")
            em.dial_state(t, src, phone, "RINGING")
        return phone

    def ring_agent(self, t: float, caller: SimChannel, ext: str) -> SimChannel:
        """app_queue dials a static member's phone itself: no caller id of
        its own, exten ``s``."""
        em = self.em
        phone = em.channel(self.pbx.devices[ext], t, caller.linkedid)
        em.newchannel(t, phone)
        phone.connected_num, phone.context = caller.cid_num, "from-phones"
        em.newstate(t, phone, "Ringing")
        em.new_connected_line(t, phone)
        return phone

    def bridge(self, t: float, *chans: SimChannel) -> SimBridge:
        """A basic bridge with ``chans`` entering it in this order."""
        bridge = self.em.bridge_of()
        self.em.bridge_create(t, bridge)
        for ch in chans:
            self.em.bridge_enter(t, bridge, ch)
        return bridge

    def media_reports(self, start: float, end: float, *channels: SimChannel) -> None:
        """PJSIP channels report RTCP every 5 s while up (IAX2 has none)."""
        for ch in channels:
            if not ch.name.startswith("PJSIP/"):
                continue
            for n, at in enumerate(range(int(start) + 5, int(end), 5), 1):
                self.em.rtcp(float(at), ch, n * 250)

    def talk(self, t: float, caller: SimChannel, callee: SimChannel, seconds: float, *,
             callee_hangs_up: bool = False, bridge: SimBridge | None = None,
             on_hangup: Callable[[float], None] | None = None) -> float:  # fmt: skip
        """Bridge caller (running dialplan) and callee, talk, one hangs up.
        ``on_hangup`` adds what the caller's application reports when the
        caller hangs up (app_queue's AgentComplete)."""
        em = self.em
        bridge = bridge or self.bridge(t, callee, caller)
        end = t + seconds
        self.media_reports(t, end, caller, callee)
        if callee_hangs_up:
            em.hangup_request(end, callee)
            em.bridge_leave(end, bridge, callee)
            em.bridge_leave(end, bridge, caller)
            em.bridge_destroy(end, bridge)
            em.hangup_request(end, callee)
            em.hangup(end, callee, 16)
            em.end_in_dialplan(end, caller)
            return end
        em.hangup_request(end, caller)
        if on_hangup is not None:
            on_hangup(end)
        em.bridge_leave(end, bridge, caller)
        em.end_in_dialplan(end, caller)
        em.bridge_leave(end, bridge, callee)
        em.bridge_destroy(end, bridge)
        em.hangup_request(end, callee)
        em.hangup(end, callee, 16)
        return end

    def answer(self, t: float, src: SimChannel, phone: SimChannel, ext: str) -> None:
        if self.answered_at is None:
            self.answered_at = t
        self.em.newstate(t, phone, "Up")
        self.em.dial_end(t, src, phone, "ANSWER")
        if src.state != "Up":
            self.em.newstate(t, src, "Up")
        self.phone_state(t, ext, "INUSE")

    def stop_ringing(self, t: float, src: SimChannel, phone: SimChannel, ext: str,
                     status: str, cause: int) -> None:  # fmt: skip
        """The PBX stops ringing a phone: no answer (cause 0), cancelled
        (16), answered elsewhere (26) or busy (17)."""
        self.em.dial_end(t, src, phone, status)
        self.em.hangup_request(t, phone, None if cause == 0 else cause)
        self.em.hangup(t, phone, cause)
        if status != "BUSY":  # a busy phone is in another call: its state stays
            self.phone_state(t, ext, "idle")

    # ------------------------------------------------------------ direct calls

    def direct_answered(self, t: float, caller: str, ext: str, ring: float, talk: float,
                        *, callee_hangs_up: bool = False) -> float:  # fmt: skip
        trunk = self.inbound(t, caller, self.pbx.dids[ext])
        self.to_extension(trunk, t, ext)
        phone = self.ring_phone(t, trunk, ext)
        self.answer(t + ring, trunk, phone, ext)
        end = self.talk(t + ring, trunk, phone, talk, callee_hangs_up=callee_hangs_up)
        self.phone_state(end, ext, "idle")
        return end

    def direct_abandoned(self, t: float, caller: str, ext: str, after: float) -> float:
        trunk = self.inbound(t, caller, self.pbx.dids[ext])
        self.to_extension(trunk, t, ext)
        phone = self.ring_phone(t, trunk, ext)
        end = t + after
        self.em.hangup_request(end, trunk)
        self.stop_ringing(end, trunk, phone, ext, "CANCEL", 16)
        self.em.end_in_dialplan(end, trunk)
        return end

    def direct_not_reached(
        self,
        t: float,
        caller: str,
        ext: str,
        how: Literal["noanswer", "busy", "diverted"],
        *,
        then: Literal["voicemail", "contact_centre"],
        message: float | None,
        queue: list[QueueAttempt] | None = None,
        talk: float = 0.0,
    ) -> float:
        """The person is not reached: rung unanswered (20 s), busy, or not
        rung at all because a hänvisning diverts (the dialplan skips Dial);
        then voicemail or the contact centre."""
        trunk = self.inbound(t, caller, self.pbx.dids[ext])
        self.to_extension(trunk, t, ext)
        if how == "diverted":
            return self._not_reached(t, trunk, ext, then, "u", message, queue, talk)
        busy = how == "busy"
        phone = self.ring_phone(t, trunk, ext, ringing=not busy)
        t2 = t if busy else t + 20.0
        if busy:
            self.stop_ringing(t2, trunk, phone, ext, "BUSY", 17)
        else:
            self.stop_ringing(t2, trunk, phone, ext, "NOANSWER", 0)
        return self._not_reached(t2, trunk, ext, then, "b" if busy else "u", message, queue, talk)

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
        self.em.hangup_request(end, trunk)
        if message is not None:
            self.em.message_waiting(end, trunk, mailbox, +1)
            self.em.device_state(end, f"MWI:{mailbox}", "INUSE")
        self.em.end_in_dialplan(end, trunk)
        return end

    # ------------------------------------------------------------ queues

    def contact_centre(
        self, t: float, trunk: SimChannel, attempts: list[QueueAttempt], talk: float,
        transfer_to: str | None = None,
    ) -> float:  # fmt: skip
        cc = self.pbx.contact_centre
        assert cc is not None, "no contact_centre queue with a DID and members"
        trunk.context, trunk.exten, trunk.priority = "kontaktcenter", "s", 0
        self.em.newexten(t, trunk, "Answer", "")
        if trunk.state != "Up":
            self.em.newstate(t, trunk, "Up")
        self.em.newexten(t, trunk, "Playback", "hello-world")
        return self.queue(t + 1.4, trunk, cc, attempts, talk, transfer_to=transfer_to)

    def queue_call(
        self, t: float, caller: str, queue: SimQueue, attempts: list[QueueAttempt], talk: float,
        transfer_to: str | None = None,
    ) -> float:  # fmt: skip
        trunk = self.inbound(t, caller, queue.did)
        if queue.kind == "contact_centre":
            return self.contact_centre(t, trunk, attempts, talk, transfer_to)
        trunk.context, trunk.exten, trunk.priority = f"grp-{queue.name}", "s", 0
        return self.queue(t, trunk, queue, attempts, talk)

    def queue(
        self,
        t: float,
        caller: SimChannel,
        queue: SimQueue,
        attempts: list[QueueAttempt],
        talk: float,
        transfer_to: str | None = None,
    ) -> float:
        """app_queue: the contact centre offers one agent at a time; a group
        number rings every member at once through Local channels."""
        em, group = self.em, queue.kind == "group"
        em.newexten(t, caller, "Queue", f"{queue.name},r,,,45" if group
                    else f"{queue.name},,,,300")  # fmt: skip
        em.device_state(t, f"Queue:{queue.name}", "RINGING")
        em.queue_event(t, "QueueCallerJoin", caller, queue.name, Position="1", Count="1")
        if not group:
            em.moh(t, caller, start=True)
        if group:  # every member at once: all Local pairs first, then the phones
            pairs = [self._local_pair(t, caller, queue, a.ext) for a in attempts]
            offers = [self._ring_member(t, caller, *pair) for pair in pairs]
        else:
            offers = [self._offer_agent(t + a.start, caller, queue, a.ext) for a in attempts]
        end = t
        for a, offer in zip(attempts, offers, strict=True):
            te = t + a.start + a.seconds
            if a.result == "noanswer":
                self._ring_out(te, caller, queue, offer)
            elif a.result == "cancel":  # the caller gives up while it rings
                ringing = [o for x, o in zip(attempts, offers, strict=True) if x.result == "cancel"]
                self._abandon(te, caller, queue, t, ringing)
                return te
            end = max(end, te)
        answered = next((i for i, a in enumerate(attempts) if a.result == "answer"), None)
        if answered is None:
            em.queue_event(end, "QueueCallerLeave", caller, queue.name, Position="1", Count="0")
            em.end_in_dialplan(end, caller)
            return end
        a, offer = attempts[answered], offers[answered]
        ta = t + a.start + a.seconds
        others = [o for x, o in zip(attempts, offers, strict=True) if x.result == "elsewhere"]
        if group:
            return self._group_answered(ta, caller, queue, offer, others, a, talk)
        return self._agent_answered(ta, caller, queue, offer, a, talk, transfer_to)

    def _offer_agent(self, t: float, caller: SimChannel, queue: SimQueue, ext: str) -> _Offer:
        """The contact centre rings one agent's phone."""
        em, member = self.em, self.pbx.member(queue, ext)
        phone = self.ring_agent(t, caller, ext)
        em.agent_event(t, "AgentCalled", caller, phone, queue.name, member.interface, member.name)
        em.dial_begin(t, caller, phone, self.pbx.devices[ext].split("/", 1)[1])
        self.phone_state(t, ext, "RINGING")
        em.dial_state(t, caller, phone, "RINGING")
        return _Offer(ext, member, phone, caller, phone)

    def _local_pair(self, t: float, caller: SimChannel, queue: SimQueue, ext: str
                    ) -> tuple[str, Member, SimChannel, SimChannel]:  # fmt: skip
        """A group number dials ``Local/<ext>@grp-member``: the pair is made."""
        em, member = self.em, self.pbx.member(queue, ext)
        one, two = em.local_pair(f"{ext}@grp-member", t, caller.linkedid)
        one.context, one.exten, two.context, two.exten = "grp-member", ext, "grp-member", ext
        em.newchannel(t, one)
        em.newchannel(t, two)
        one.cid_num = "s"
        em.new_callerid(t, one)
        two.cid_num, two.connected_num = caller.cid_num, "s"
        em.new_callerid(t, two)
        em.new_connected_line(t, two)
        em.local_bridge(t, one, two)
        em.agent_event(t, "AgentCalled", caller, one, queue.name, member.interface, member.name)
        em.dial_begin(t, caller, one, f"{ext}@grp-member")
        return ext, member, one, two

    def _ring_member(self, t: float, caller: SimChannel, ext: str, member: Member,
                     one: SimChannel, two: SimChannel) -> _Offer:  # fmt: skip
        """The Local pair's second half dials the member's phone."""
        em = self.em
        two.priority = 3
        em.newexten(t, two, "Dial", self.pbx.devices[ext])
        phone = self.ring_phone(t, two, ext, dial_app=False)
        one.connected_num, one.exten = caller.cid_num, "s"
        em.newstate(t, one, "Ringing")
        em.new_connected_line(t, one)
        em.device_state(t, member.interface, "INUSE")
        em.dial_state(t, caller, one, "RINGING")
        return _Offer(ext, member, one, two, phone)

    def _ring_out(self, t: float, caller: SimChannel, queue: SimQueue, offer: _Offer) -> None:
        """An agent lets it ring out (the member timeout)."""
        m = offer.member
        self.em.agent_event(t, "AgentRingNoAnswer", caller, offer.leg, queue.name, m.interface,
                            m.name, RingTime="15000")  # fmt: skip
        self.em.dial_end(t, caller, offer.leg, "NOANSWER")
        self.stop_ringing(t, caller, offer.leg, offer.ext, "CANCEL", 0)

    def _drop_local(self, t: float, caller: SimChannel, offer: _Offer, cause: int) -> None:
        """A Local member leg that did not get the call goes away."""
        em = self.em
        em.hangup_request(t, offer.dialer, cause)
        em.hangup(t, offer.leg, cause)
        self.stop_ringing(t, offer.dialer, offer.phone, offer.ext, "CANCEL", cause)
        em.hangup_request(t, offer.dialer, 16, soft=True)
        em.hangup(t, offer.dialer, cause)

    def _abandon(self, t: float, caller: SimChannel, queue: SimQueue, joined: float,
                 ringing: list[_Offer]) -> None:  # fmt: skip
        em = self.em
        em.hangup_request(t, caller)
        if queue.kind != "group":
            em.moh(t, caller, start=False)
        for offer in ringing:
            em.dial_end(t, caller, offer.leg, "CANCEL")
            if offer.leg is offer.phone:
                self.stop_ringing(t, caller, offer.phone, offer.ext, "CANCEL", 0)
            else:
                self._drop_local(t, caller, offer, 16)
        em.queue_event(t, "QueueCallerAbandon", caller, queue.name, Position="1",
                       OriginalPosition="1", HoldTime=str(int(t - joined)))  # fmt: skip
        em.device_state(t, f"Queue:{queue.name}", "NOT_INUSE")
        em.queue_event(t, "QueueCallerLeave", caller, queue.name, Position="1", Count="0")
        em.end_in_dialplan(t, caller)

    def _agent_answered(self, ta: float, caller: SimChannel, queue: SimQueue, offer: _Offer,
                        a: QueueAttempt, talk: float, transfer_to: str | None,
                        ) -> float:  # fmt: skip
        em, m = self.em, offer.member
        self.answer(ta, caller, offer.phone, offer.ext)
        em.moh(ta, caller, start=False)
        em.queue_event(ta, "QueueCallerLeave", caller, queue.name, Position="1", Count="0")
        em.device_state(ta, f"Queue:{queue.name}", "NOT_INUSE")
        waited = str(int(a.start + a.seconds))
        em.agent_event(ta, "AgentConnect", caller, offer.phone, queue.name, m.interface, m.name,
                       HoldTime=waited, RingTime=str(int(a.seconds)))  # fmt: skip
        if transfer_to is None:

            def complete(end: float) -> None:
                em.agent_event(end, "AgentComplete", caller, offer.phone, queue.name, m.interface,
                               m.name, HoldTime=waited, TalkTime=str(int(talk)),
                               Reason="caller")  # fmt: skip

            end = self.talk(ta, caller, offer.phone, talk, on_hangup=complete)
            self.phone_state(end, offer.ext, "idle")
            return end
        return self._blind_transfer(ta, caller, queue, offer, waited, transfer_to, talk)

    def _blind_transfer(self, ta: float, caller: SimChannel, queue: SimQueue, offer: _Offer,
                        waited: str, to: str, talk: float) -> float:  # fmt: skip
        """The agent presses the phone's transfer key and dials ``to``."""
        em, m = self.em, offer.member
        tx = ta + 8.0
        bridge = self.bridge(ta, offer.phone, caller)
        em.unhold(tx, offer.phone)
        caller.context, caller.exten, caller.priority = "from-phones", to, 1
        em.blind_transfer(tx, bridge, offer.phone, caller, "from-phones", to)
        em.agent_event(tx, "AgentComplete", caller, offer.phone, queue.name, m.interface,
                       m.name, HoldTime=waited, TalkTime=str(int(tx - ta)),
                       Reason="transfer")  # fmt: skip
        em.bridge_leave(tx, bridge, offer.phone)
        em.hangup_request(tx, offer.phone)
        em.hangup(tx, offer.phone, 16)
        em.bridge_leave(tx, bridge, caller)
        em.bridge_destroy(tx, bridge)
        self.phone_state(tx, offer.ext, "idle")
        self.to_extension(caller, tx, to)
        phone = self.ring_phone(tx, caller, to)
        self.answer(tx + 4.0, caller, phone, to)
        end = self.talk(tx + 4.0, caller, phone, talk, callee_hangs_up=True)
        self.phone_state(end, to, "idle")
        return end

    def _group_answered(self, ta: float, caller: SimChannel, queue: SimQueue, offer: _Offer,
                        others: list[_Offer], a: QueueAttempt, talk: float) -> float:  # fmt: skip
        """A member answers: the others stop (cause 26), the caller is
        answered and bridged to the Local half, and the Local pair optimises
        itself away so the phone ends up bridged with the caller."""
        em, m, one, two = self.em, offer.member, offer.leg, offer.dialer
        self.answer(ta, two, offer.phone, offer.ext)
        inner = em.bridge_of()
        em.bridge_create(ta, inner)
        em.bridge_enter(ta, inner, offer.phone)
        em.newstate(ta, one, "Up")
        em.dial_end(ta, caller, one, "ANSWER")
        for other in others:
            em.dial_end(ta, caller, other.leg, "CANCEL")
            self._drop_local(ta, caller, other, 26)
        em.queue_event(ta, "QueueCallerLeave", caller, queue.name, Position="1", Count="0")
        em.device_state(ta, f"Queue:{queue.name}", "NOT_INUSE")
        waited = str(int(a.seconds))
        em.agent_event(ta, "AgentConnect", caller, one, queue.name, m.interface, m.name,
                       HoldTime=waited, RingTime=waited)  # fmt: skip
        em.bridge_enter(ta, inner, two)
        em.newstate(ta, caller, "Up")
        outer = em.bridge_of()
        em.bridge_create(ta, outer)
        em.bridge_enter(ta, outer, one)
        em.bridge_enter(ta, outer, caller)
        self._optimizations += 1
        em.local_optimization(ta, one, two, offer.phone, self._optimizations)
        em.bridge_leave(ta, inner, offer.phone)
        em.bridge_leave(ta, outer, one)
        em.bridge_enter(ta, outer, offer.phone, swap=one)
        em.hangup_request(ta, two)
        em.bridge_leave(ta, inner, two)
        em.hangup(ta, one, 16)
        em.bridge_destroy(ta, inner)
        em.hangup_request(ta, two, soft=True)
        em.hangup(ta, two, 16)
        end = ta + talk
        em.hangup_request(end, caller)
        em.agent_event(end, "AgentComplete", caller, offer.phone, queue.name, m.interface,
                       m.name, HoldTime=waited, TalkTime=str(int(talk)),
                       Reason="caller")  # fmt: skip
        em.bridge_leave(end, outer, caller)
        em.bridge_leave(end, outer, offer.phone)
        em.hangup_request(end, offer.phone)
        em.bridge_destroy(end, outer)
        em.hangup(end, offer.phone, 16)
        em.end_in_dialplan(end, caller)
        self.phone_state(end, offer.ext, "idle")
        return end

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
        out.cid_num, out.connected_num, out.context, out.exten = number, did, "", number
        em.new_callerid(t, out)
        em.new_connected_line(t, out)
        out.context = "from-pstn"
        em.newstate(t, out, "Ringing")
        em.dial_begin(t, phone, out, f"pstn/{number}")
        if result == "busy":
            em.dial_end(t + 1, phone, out, "BUSY")
            em.hangup_request(t + 1, out, 17)
            em.hangup(t + 1, out, 17)
            em.end_in_dialplan(t + 1, phone)
            return t + 1
        em.dial_state(t, phone, out, "RINGING")
        if result == "noanswer":
            end = t + seconds
            em.hangup_request(end, phone)
            em.dial_end(end, phone, out, "CANCEL")
            em.hangup_request(end, out)
            em.hangup(end, out, 16)
            em.end_in_dialplan(end, phone)
            return end
        em.newstate(t + 5, out, "Up")
        em.dial_end(t + 5, phone, out, "ANSWER")
        em.newstate(t + 5, phone, "Up")
        return self.talk(t + 5, phone, out, seconds)

    def listen(self, t: float, ext: str, seconds: float = 20.0) -> float:
        """``*97``: VoiceMailMain, press 1; the messages move to Old when it hangs up."""
        em = self.em
        phone = em.channel(self.pbx.devices[ext], t)
        phone.state, phone.cid_num, phone.context, phone.exten = "Ring", ext, "from-phones", "*97"
        em.newchannel(t, phone)
        mailbox = self.pbx.mailboxes[ext]
        em.newexten(t, phone, "VoiceMailMain", f"{mailbox},s")
        em.newstate(t, phone, "Up")
        em.dtmf(t + 3, phone, "1")
        end = t + seconds
        em.hangup_request(end, phone)
        em.message_waiting(end, phone, mailbox, 0)
        em.device_state(end, f"MWI:{mailbox}", "NOT_INUSE")
        em.end_in_dialplan(end, phone)
        return end
