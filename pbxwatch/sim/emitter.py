"""Asterisk 22 AMI events, field for field, for the simulator.

Every frame carries the headers Asterisk puts on it (``Privilege``,
``Timestamp``, the channel snapshot in Asterisk's order, ``Dest*`` for the
dialled side), so a client cannot tell a simulated call from a recorded
one by its shape.  Times are absolute epoch seconds chosen by the caller;
frames are sorted by time (stable) when a day is rendered.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

_STATE_CODES = {"Down": 0, "Ring": 4, "Ringing": 5, "Up": 6, "Busy": 7}

Frame = tuple[float, dict[str, str]]


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
        return {
            f"{prefix}Channel": self.name,
            f"{prefix}ChannelState": str(_STATE_CODES[self.state]),
            f"{prefix}ChannelStateDesc": self.state,
            f"{prefix}CallerIDNum": self.cid_num,
            f"{prefix}CallerIDName": "<unknown>",
            f"{prefix}ConnectedLineNum": self.connected_num,
            f"{prefix}ConnectedLineName": "<unknown>",
            f"{prefix}Language": "en",
            f"{prefix}AccountCode": "",
            f"{prefix}Context": self.context,
            f"{prefix}Exten": self.exten,
            f"{prefix}Priority": str(self.priority),
            f"{prefix}Uniqueid": self.uniqueid,
            f"{prefix}Linkedid": self.linkedid,
        }


@dataclass
class Emitter:
    """Collects frames; hands out channel names and unique ids like Asterisk."""

    frames: list[Frame] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    _local: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

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

    # ------------------------------------------------------------ frames

    def emit(self, t: float, event: str, privilege: str, *parts: dict[str, str],
             **fields: str) -> None:  # fmt: skip
        frame = {"Event": event, "Privilege": privilege, "Timestamp": f"{t:.6f}"}
        for part in parts:
            frame.update(part)
        frame.update(fields)
        self.frames.append((t, frame))

    def newchannel(self, t: float, ch: SimChannel) -> None:
        self.emit(t, "Newchannel", "call,all", ch.snapshot())

    def newstate(self, t: float, ch: SimChannel, state: str) -> None:
        ch.state = state
        self.emit(t, "Newstate", "call,all", ch.snapshot())

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

    def hangup(self, t: float, ch: SimChannel, cause: int, *, request: bool = True) -> None:
        text = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 19: "No user responding",
                26: "Answered elsewhere"}.get(cause, "Unknown")  # fmt: skip
        if request:
            self.emit(t, "HangupRequest", "call,all", ch.snapshot(), Cause=str(cause))
        self.emit(t, "Hangup", "call,all", ch.snapshot(), Cause=str(cause), **{"Cause-txt": text})

    def bridge(self, t: float, bridge_id: str, event: str, ch: SimChannel, n: int) -> None:
        self.emit(t, event, "call,all", {"BridgeUniqueid": bridge_id, "BridgeType": "basic",
                  "BridgeTechnology": "simple_bridge", "BridgeCreator": "<unknown>",
                  "BridgeName": "<unknown>", "BridgeNumChannels": str(n),
                  "BridgeVideoSourceMode": "none"}, ch.snapshot())  # fmt: skip

    def device_state(self, t: float, device: str, state: str) -> None:
        self.emit(t, "DeviceStateChange", "call,all", Device=device, State=state)

    def message_waiting(self, t: float, ch: SimChannel, mailbox: str, delta: int) -> None:
        """New/Old are filled in when the day is rendered (they depend on
        every message before); ``delta`` +1 = left, 0 = listened."""
        self.emit(t, "MessageWaiting", "call,all", ch.snapshot(), Mailbox=mailbox,
                  Waiting="1", New=f"{delta:+d}", Old="?")  # fmt: skip

    def queue_event(self, t: float, event: str, ch: SimChannel, queue: str, **more: str) -> None:
        self.emit(t, event, "agent,all", ch.snapshot(), Queue=queue, **more)

    def agent_event(self, t: float, event: str, caller: SimChannel, member: SimChannel,
                    queue: str, interface: str, name: str, **more: str) -> None:  # fmt: skip
        self.emit(t, event, "agent,all", caller.snapshot(), member.snapshot("Dest"), Queue=queue,
                  Interface=interface, MemberName=name, **more)  # fmt: skip

    def member_status(self, t: float, queue: str, interface: str, name: str, status: int,
                      in_call: bool = False, paused: bool = False) -> None:  # fmt: skip
        self._member_event(t, "QueueMemberStatus", queue, interface, name, status, in_call,
                           paused, "")  # fmt: skip

    def member_pause(self, t: float, queue: str, interface: str, name: str, paused: bool,
                     reason: str = "") -> None:  # fmt: skip
        """``QueueMemberPause`` (what app_queue sends on a pause/unpause)."""
        self._member_event(t, "QueueMemberPause", queue, interface, name, 1, False, paused,
                           reason)  # fmt: skip

    def _member_event(self, t: float, event: str, queue: str, interface: str, name: str,
                      status: int, in_call: bool, paused: bool, reason: str) -> None:  # fmt: skip
        self.emit(t, event, "agent,all", Queue=queue, MemberName=name,
                  Interface=interface, StateInterface=interface, Membership="dynamic",
                  Penalty="0", CallsTaken="0", LastCall="0", LastPause="0",
                  LoginTime=str(int(t)), InCall="1" if in_call else "0", Status=str(status),
                  Paused="1" if paused else "0", PausedReason=reason, Ringinuse="0",
                  Wrapuptime="0")  # fmt: skip

    def presence(self, t: float, presentity: str, ext: str, device: str, state: str,
                 subtype: str, message: str) -> None:  # fmt: skip
        self.emit(t, "PresenceStatus", "call,all", Exten=ext, Context="hints",
                  Hint=f"{device},{presentity}", Status=state, Subtype=subtype,
                  Message=message)  # fmt: skip
        self.emit(t, "PresenceStateChange", "call,all", Presentity=presentity,
                  Status=state, Subtype=subtype, Message=message)  # fmt: skip
