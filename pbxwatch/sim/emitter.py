"""Asterisk 22 AMI events, field for field, for the simulator.

Every frame carries the headers Asterisk puts on it (``Privilege``,
``Timestamp``, the channel snapshot in Asterisk's order, ``Dest*`` for the
dialled side, the bridge snapshot), so a client cannot tell a simulated
call from a recorded one by its shape; ``tests/sim/test_sequences.py``
checks every header list against the recordings.  Times are absolute epoch
seconds chosen by the caller; frames are sorted by time (stable) when a day
is rendered.
"""

from __future__ import annotations

import itertools
import uuid
import zlib
from dataclasses import dataclass, field

_STATE_CODES = {"Down": 0, "Ring": 4, "Ringing": 5, "Up": 6, "Busy": 7}
_CAUSES = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 19: "No user responding",
           26: "Answered elsewhere"}  # fmt: skip
#: ExtensionStatus codes of the hint states the simulator uses
HINT_STATES = {"Idle": 0, "InUse": 1, "Unavailable": 4, "Ringing": 8}

Frame = tuple[float, dict[str, str]]

#: a channel snapshot's headers, in Asterisk's order (``Dest``/``Transferer``... prefixed)
SNAPSHOT_FIELDS = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
                   "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context",
                   "Exten", "Priority", "Uniqueid", "Linkedid")  # fmt: skip


@dataclass(slots=True)
class SimChannel:
    name: str
    uniqueid: str
    linkedid: str
    state: str = "Down"
    cid_num: str = "<unknown>"
    connected_num: str = "<unknown>"
    context: str = "default"
    exten: str = "s"
    priority: int = 1

    def snapshot(self, prefix: str = "") -> dict[str, str]:
        values = (self.name, str(_STATE_CODES[self.state]), self.state, self.cid_num,
                  "<unknown>", self.connected_num, "<unknown>", "en", "", self.context,
                  self.exten, str(self.priority), self.uniqueid, self.linkedid)  # fmt: skip
        return {prefix + k: v for k, v in zip(SNAPSHOT_FIELDS, values, strict=True)}


@dataclass(slots=True)
class SimBridge:
    uniqueid: str
    channels: int = 0

    def snapshot(self) -> dict[str, str]:
        return {"BridgeUniqueid": self.uniqueid, "BridgeType": "basic",
                "BridgeTechnology": "simple_bridge", "BridgeCreator": "<unknown>",
                "BridgeName": "<unknown>", "BridgeNumChannels": str(self.channels),
                "BridgeVideoSourceMode": "none"}  # fmt: skip


@dataclass
class Emitter:
    """Collects frames; hands out channel names and unique ids like Asterisk."""

    frames: list[Frame] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    _local: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _bridges: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # ------------------------------------------------------------ channels

    def channel(self, device: str, t: float, linkedid: str | None = None) -> SimChannel:
        n = next(self._seq)
        uid = f"{int(t)}.{n}"
        return SimChannel(name=f"{device}-{(n * 7919) % 16384 + 1}", uniqueid=uid,
                          linkedid=linkedid or uid)  # fmt: skip

    def local_pair(self, target: str, t: float, linkedid: str) -> tuple[SimChannel, SimChannel]:
        n = next(self._local)
        base = f"Local/{target}-{n:08x}"
        one = SimChannel(f"{base};1", f"{int(t)}.{next(self._seq)}", linkedid)
        two = SimChannel(f"{base};2", f"{int(t)}.{next(self._seq)}", linkedid, state="Ring")
        return one, two

    def bridge_of(self) -> SimBridge:
        """A bridge id shaped like Asterisk's (a UUID), reproducible per day."""
        return SimBridge(str(uuid.UUID(int=next(self._bridges) * 0x9E3779B97F4A7C15 % 2**128)))

    # ------------------------------------------------------------ frames

    def emit(self, t: float, event: str, privilege: str, *parts: dict[str, str],
             **fields: str) -> None:  # fmt: skip
        frame = {"Event": event, "Privilege": privilege, "Timestamp": f"{t:.6f}"}
        for part in parts:
            frame.update(part)
        frame.update(fields)
        self.frames.append((t, frame))

    def rtcp(self, t: float, ch: SimChannel, packets: int) -> None:
        """The RTCP report pair PJSIP sends every few seconds of media on an
        answered channel (``reporting`` class), header for header as the
        lab's PJSIP recordings have them: pbxwatch must count them and take
        nothing from them."""
        ours = f"0x{zlib.crc32(ch.name.encode()):08x}"
        theirs = f"0x{zlib.crc32(ch.uniqueid.encode()):08x}"
        for event, to, frm, rtt in (
            ("RTCPReceived", "127.0.0.1:30139", "127.0.0.1:31383", True),
            ("RTCPSent", "127.0.0.1:31383", "127.0.0.1:30139", False),
        ):
            head = {"To": to, "From": frm, **({"RTT": "0.0000"} if rtt else {}), "MES": "88.1"}
            self.emit(t, event, "reporting,all", ch.snapshot(), head, SSRC=ours if rtt else theirs,
                      PT="200(SR)", ReportCount="1", SentNTP=f"{t:.6f}",
                      SentRTP=str(packets * 160), SentPackets=str(packets),
                      SentOctets=str(packets * 33), Report0SourceSSRC=theirs if rtt else ours,
                      Report0FractionLost="0", Report0CumulativeLost="0",
                      Report0HighestSequence=str(packets), Report0SequenceNumberCycles="0",
                      Report0IAJitter="0", Report0LSR="0", Report0DLSR="0.0000")  # fmt: skip

    def newchannel(self, t: float, ch: SimChannel) -> None:
        self.emit(t, "Newchannel", "call,all", ch.snapshot())

    def newstate(self, t: float, ch: SimChannel, state: str) -> None:
        ch.state = state
        self.emit(t, "Newstate", "call,all", ch.snapshot())

    def new_callerid(self, t: float, ch: SimChannel) -> None:
        self.emit(t, "NewCallerid", "call,all", ch.snapshot(),
                  **{"CID-CallingPres": "0 (Presentation Allowed, Not Screened)"})  # fmt: skip

    def new_connected_line(self, t: float, ch: SimChannel) -> None:
        self.emit(t, "NewConnectedLine", "call,all", ch.snapshot())

    def newexten(self, t: float, ch: SimChannel, app: str, data: str) -> None:
        ch.priority += 1
        self.emit(t, "Newexten", "dialplan,all", ch.snapshot(), Extension=ch.exten,
                  Application=app, AppData=data)  # fmt: skip

    def varset(self, t: float, ch: SimChannel, name: str, value: str) -> None:
        self.emit(t, "VarSet", "dialplan,all", ch.snapshot(), Variable=name, Value=value)

    def dial_begin(self, t: float, src: SimChannel, dst: SimChannel, dialstring: str) -> None:
        self.emit(t, "DialBegin", "call,all", src.snapshot(), dst.snapshot("Dest"),
                  DialString=dialstring)  # fmt: skip

    def dial_state(self, t: float, src: SimChannel, dst: SimChannel, status: str) -> None:
        self.emit(t, "DialState", "call,all", src.snapshot(), dst.snapshot("Dest"),
                  DialStatus=status)  # fmt: skip

    def dial_end(self, t: float, src: SimChannel, dst: SimChannel, status: str) -> None:
        self.emit(t, "DialEnd", "call,all", src.snapshot(), dst.snapshot("Dest"),
                  DialStatus=status)  # fmt: skip

    def hangup_request(self, t: float, ch: SimChannel, cause: int | None = 16, *,
                       soft: bool = False) -> None:  # fmt: skip
        """``HangupRequest`` (``SoftHangupRequest`` with ``soft``); a phone
        leg that the PBX stops ringing gets one without a ``Cause``."""
        more = {} if cause is None else {"Cause": str(cause)}
        self.emit(t, "SoftHangupRequest" if soft else "HangupRequest", "call,all",
                  ch.snapshot(), **more)  # fmt: skip

    def hangup(self, t: float, ch: SimChannel, cause: int) -> None:
        self.emit(t, "Hangup", "call,all", ch.snapshot(), Cause=str(cause),
                  **{"Cause-txt": _CAUSES.get(cause, "Unknown")})  # fmt: skip

    def end_in_dialplan(self, t: float, ch: SimChannel) -> None:
        """How a channel running dialplan ends after its application returns."""
        self.hangup_request(t, ch, soft=True)
        self.hangup_request(t, ch)
        self.hangup(t, ch, 16)

    def bridge_create(self, t: float, bridge: SimBridge) -> None:
        self.emit(t, "BridgeCreate", "call,all", bridge.snapshot())

    def bridge_destroy(self, t: float, bridge: SimBridge) -> None:
        self.emit(t, "BridgeDestroy", "call,all", bridge.snapshot())

    def bridge_enter(self, t: float, bridge: SimBridge, ch: SimChannel,
                     swap: SimChannel | None = None) -> None:  # fmt: skip
        bridge.channels += 1
        more = {"SwapUniqueid": swap.uniqueid} if swap is not None else {}
        self.emit(t, "BridgeEnter", "call,all", bridge.snapshot(), ch.snapshot(), **more)

    def bridge_leave(self, t: float, bridge: SimBridge, ch: SimChannel) -> None:
        bridge.channels -= 1
        self.emit(t, "BridgeLeave", "call,all", bridge.snapshot(), ch.snapshot())

    def local_bridge(self, t: float, one: SimChannel, two: SimChannel) -> None:
        self.emit(t, "LocalBridge", "call,all", one.snapshot("LocalOne"),
                  two.snapshot("LocalTwo"), Context=two.context, Exten=two.exten,
                  LocalOptimization="Yes")  # fmt: skip

    def local_optimization(self, t: float, one: SimChannel, two: SimChannel,
                           source: SimChannel, n: int) -> None:  # fmt: skip
        """The Local pair steps out: ``source`` takes ``one``'s place."""
        pair = (one.snapshot("LocalOne"), two.snapshot("LocalTwo"))
        self.emit(t, "LocalOptimizationBegin", "call,all", *pair, source.snapshot("Source"),
                  DestUniqueId=two.uniqueid, Id=str(n))  # fmt: skip
        self.emit(t, "LocalOptimizationEnd", "call,all", *pair, Success="No", Id=str(n))

    def moh(self, t: float, ch: SimChannel, *, start: bool) -> None:
        if start:
            self.emit(t, "MusicOnHoldStart", "call,all", ch.snapshot(), Class="default")
        else:
            self.emit(t, "MusicOnHoldStop", "call,all", ch.snapshot())

    def unhold(self, t: float, ch: SimChannel) -> None:
        self.emit(t, "Unhold", "call,all", ch.snapshot())

    def dtmf(self, t: float, ch: SimChannel, digit: str) -> None:
        self.emit(t, "DTMFBegin", "dtmf,all", ch.snapshot(), Digit=digit, Direction="Received")
        self.emit(t + 0.1, "DTMFEnd", "dtmf,all", ch.snapshot(), Digit=digit, DurationMs="0",
                  Direction="Received")  # fmt: skip

    def blind_transfer(self, t: float, bridge: SimBridge, transferer: SimChannel,
                       transferee: SimChannel, context: str, exten: str) -> None:  # fmt: skip
        self.emit(t, "BlindTransfer", "call,all", {"Result": "Success"},
                  transferer.snapshot("Transferer"), transferee.snapshot("Transferee"),
                  bridge.snapshot(), IsExternal="Yes", Context=context,
                  Extension=exten)  # fmt: skip

    # ------------------------------------------------------------ states

    def device_state(self, t: float, device: str, state: str) -> None:
        self.emit(t, "DeviceStateChange", "call,all", Device=device, State=state)

    def peer_status(self, t: float, device: str, status: str) -> None:
        """A channel driver's view of a phone (``Reachable``/``Unreachable``),
        as chan_pjsip reports a contact's qualify result."""
        tech = device.split("/", 1)[0]
        self.emit(t, "PeerStatus", "system,all", ChannelType=tech, Peer=device,
                  PeerStatus=status)  # fmt: skip

    def contact_status(self, t: float, endpoint: str, status: str) -> None:
        """res_pjsip's ``ContactStatus`` of an endpoint's one contact, with
        the lab's URI and a plausible qualify round trip (none when the
        contact does not answer), reproducible per endpoint."""
        rtt = 500 + zlib.crc32(endpoint.encode()) % 300 if status == "Reachable" else 0
        self.emit(t, "ContactStatus", "system,all", URI=f"sip:{endpoint}@127.0.0.1:15070",
                  ContactStatus=status, AOR=endpoint, EndpointName=endpoint,
                  RoundtripUsec=str(rtt))  # fmt: skip

    def extension_status(self, t: float, ext: str, hint: str, text: str) -> None:
        self.emit(t, "ExtensionStatus", "call,all", Exten=ext, Context="hints", Hint=hint,
                  Status=str(HINT_STATES[text]), StatusText=text)  # fmt: skip

    def message_waiting(self, t: float, ch: SimChannel, mailbox: str, delta: int) -> None:
        """New/Old are filled in when the day is rendered (they depend on
        every message before); ``delta`` +1 = left, 0 = listened."""
        self.emit(t, "MessageWaiting", "call,all", ch.snapshot(), Mailbox=mailbox,
                  Waiting="1", New=f"{delta:+d}", Old="?")  # fmt: skip

    def queue_event(self, t: float, event: str, ch: SimChannel, queue: str, **more: str) -> None:
        self.emit(t, event, "agent,all", ch.snapshot(), Queue=queue, **more)

    def agent_event(self, t: float, event: str, caller: SimChannel | None, member: SimChannel,
                    queue: str, interface: str, name: str, **more: str) -> None:  # fmt: skip
        parts = ([caller.snapshot()] if caller is not None else []) + [member.snapshot("Dest")]
        self.emit(t, event, "agent,all", *parts, Queue=queue, Interface=interface,
                  MemberName=name, **more)  # fmt: skip

    def member_event(self, t: float, event: str, m: Member, status: int, *,
                     in_call: bool = False, paused: bool = False,
                     reason: str = "") -> None:  # fmt: skip
        """``QueueMemberStatus`` / ``QueueMemberPause`` / ``...Added`` with
        app_queue's member fields."""
        self.emit(t, event, "agent,all", Queue=m.queue, MemberName=m.name,
                  Interface=m.interface, StateInterface=m.state_interface,
                  Membership=m.membership, Penalty="0", CallsTaken="0", LastCall="0",
                  LastPause="0", LoginTime=str(int(t)), InCall="1" if in_call else "0",
                  Status=str(status), Paused="1" if paused else "0", PausedReason=reason,
                  Ringinuse="0", Wrapuptime="0")  # fmt: skip

    def presence(self, t: float, presentity: str, ext: str, device: str, state: str,
                 subtype: str, message: str) -> None:  # fmt: skip
        self.emit(t, "PresenceStatus", "call,all", Exten=ext, Context="hints",
                  Hint=f"{device},{presentity}", Status=state, Subtype=subtype,
                  Message=message)  # fmt: skip
        self.emit(t, "PresenceStateChange", "call,all", Presentity=presentity,
                  Status=state, Subtype=subtype, Message=message)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Member:
    """One member of one queue, as app_queue names it."""

    queue: str
    name: str
    interface: str  # what the queue dials: the phone, or Local/<ext>@grp-member
    state_interface: str  # the device whose state the member follows
    membership: str  # "static" (queues.conf) or "dynamic" (QueueAdd)
