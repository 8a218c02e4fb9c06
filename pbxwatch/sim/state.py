"""What the simulated PBX looks like right now, for the status actions.

A real Asterisk answers ``CoreShowChannels``, ``QueueStatus`` and the
``*List`` actions from its live state.  The simulator keeps that state by
watching the events it sends (``apply``), so an answer can never
contradict the stream a client has seen.  The responses and list items
have the headers, order and texts of Asterisk 22 as recorded in
``../shared/ami-recordings/status_actions.transcript.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pbxwatch.sim.calls import Pbx
from pbxwatch.sim.emitter import SNAPSHOT_FIELDS

_MEMBER = ("Queue", "MemberName", "Interface", "StateInterface", "Membership", "Penalty",
           "CallsTaken", "LastCall", "LastPause", "LoginTime", "InCall", "Status", "Paused",
           "PausedReason")  # fmt: skip

Item = dict[str, str]


@dataclass
class _Channel:
    snapshot: dict[str, str]
    created: float
    app: str = ""
    app_data: str = ""
    bridge: str = ""


@dataclass
class PbxState:
    """Channels, queue members and callers, hints, devices, presence and
    mailboxes, kept up to date by ``apply``."""

    pbx: Pbx
    now: float = 0.0
    channels: dict[str, _Channel] = field(default_factory=dict)
    members: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    callers: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # queue -> uids
    hints: dict[str, tuple[str, str]] = field(default_factory=dict)  # ext -> (status, text)
    devices: dict[str, str] = field(default_factory=dict)
    presence: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    mailboxes: dict[str, tuple[int, int]] = field(default_factory=dict)  # box -> (new, old)
    #: box -> its messages, oldest first, as ``VoicemailBoxDetail`` lists them
    messages: dict[str, list[Item]] = field(default_factory=dict)
    _msg_counter: int = 0

    def __post_init__(self) -> None:
        for ext, device in self.pbx.devices.items():
            self.hints[ext] = ("0", "Idle")
            self.devices[device] = self.pbx.idle(ext)
            self.presence[self.pbx.presentities[ext]] = ("available", "", "")
            self.mailboxes[self.pbx.mailboxes[ext]] = (0, 0)

    # ------------------------------------------------------------ events

    def apply(self, ev: Mapping[str, str]) -> None:
        name = ev.get("Event", "")
        if ts := ev.get("Timestamp"):
            self.now = float(ts)
        uid = ev.get("Uniqueid")
        if uid and "Channel" in ev:
            self._channel(name, uid, ev)
        match name:
            case "QueueMemberStatus" | "QueueMemberPause" | "QueueMemberAdded":
                self.members[(ev["Queue"], ev["Interface"])] = {k: ev.get(k, "") for k in _MEMBER}
            case "QueueMemberRemoved":
                self.members.pop((ev["Queue"], ev["Interface"]), None)
            case "QueueCallerJoin":
                self.callers.setdefault(ev["Queue"], []).append((ev["Uniqueid"], self.now))
            case "QueueCallerLeave":
                waiting = self.callers.get(ev["Queue"], [])
                self.callers[ev["Queue"]] = [c for c in waiting if c[0] != ev["Uniqueid"]]
            case "ExtensionStatus":
                self.hints[ev["Exten"]] = (ev["Status"], ev["StatusText"])
            case "DeviceStateChange":
                self.devices[ev["Device"]] = ev["State"]
            case "PresenceStateChange":
                self.presence[ev["Presentity"]] = (ev["Status"], ev["Subtype"], ev["Message"])
            case "MessageWaiting":
                self._message_waiting(ev)

    def _message_waiting(self, ev: Mapping[str, str]) -> None:
        """The spool as app_voicemail keeps it: a rise in New is a message
        left by the event's caller; a fall moves the oldest new ones to Old
        (the simulator's *97 plays new messages oldest first)."""
        box, new, old = ev["Mailbox"], int(ev["New"]), int(ev["Old"])
        before, _ = self.mailboxes.get(box, (0, 0))
        msgs = self.messages.setdefault(box, [])
        for _ in range(new - before):
            self._msg_counter += 1
            origtime = int(self.now)
            msgs.append({"Folder": "INBOX", "CallerID": ev.get("CallerIDNum", ""),
                         "Date": "", "Duration": f"{self.now - origtime:.0f}", "Flag": "",
                         "ID": f"{origtime}-{self._msg_counter:08d}"})  # fmt: skip
        heard = before - new
        for msg in msgs:
            if heard <= 0:
                break
            if msg["Folder"] == "INBOX":
                msg["Folder"], heard = "Old", heard - 1
        self.mailboxes[box] = (new, old)

    def _channel(self, name: str, uid: str, ev: Mapping[str, str]) -> None:
        if name == "Hangup":
            self.channels.pop(uid, None)
            return
        ch = self.channels.get(uid)
        snap = {k: ev[k] for k in SNAPSHOT_FIELDS if k in ev}
        if ch is None:
            self.channels[uid] = ch = _Channel(snap, self.now)
        ch.snapshot = snap
        if name == "Newexten":
            ch.app, ch.app_data = ev.get("Application", ""), ev.get("AppData", "")
        elif name == "BridgeEnter":
            ch.bridge = ev.get("BridgeUniqueid", "")
        elif name == "BridgeLeave":
            ch.bridge = ""

    # ------------------------------------------------------------ actions

    def answer(self, action: str, args: Mapping[str, str]) -> list[Item]:
        """The list items of a list action (the server's ``LIST_ACTIONS``),
        without ActionID."""
        match action:
            case "coreshowchannels":
                return [self._show_channel(c) for c in self.channels.values()]
            case "status":
                return [self._status(c) for c in self.channels.values()]
            case "queuestatus":
                return self._queue_status(args.get("queue"))
            case "queuesummary":
                return [self._summary(q) for q in self._queues(args.get("queue"))]
            case "presencestatelist":
                return [{"Event": "PresenceStateChange", "Presentity": p, "Status": s,
                         "Subtype": sub, "Message": msg}
                        for p, (s, sub, msg) in sorted(self.presence.items())]  # fmt: skip
            case "extensionstatelist":
                return [{"Event": "ExtensionStatus", "Exten": ext, "Context": "hints",
                         "Hint": self.pbx.hint(ext), "Status": st, "StatusText": text}
                        for ext, (st, text) in sorted(self.hints.items())]  # fmt: skip
            case "devicestatelist":
                return [{"Event": "DeviceStateChange", "Device": d, "State": s}
                        for d, s in sorted(self.devices.items())]  # fmt: skip
            case "voicemailuserslist":
                return [self._vm_user(ext) for ext in sorted(self.pbx.mailboxes)]
            case "voicemailboxsummary":
                box = f"{args.get('mailbox', '')}@{args.get('context', 'default')}"
                return [{"Event": "VoicemailBoxDetail", **m} for m in self.messages.get(box, [])]
        return []

    def mailbox_count(self, mailbox: str) -> dict[str, str]:
        new, old = self.mailboxes.get(mailbox, (0, 0))
        return {"Message": "Mailbox Message Count", "Mailbox": mailbox, "UrgMessages": "0",
                "NewMessages": str(new), "OldMessages": str(old)}  # fmt: skip

    def mailbox_status(self, mailbox: str) -> dict[str, str]:
        new, _ = self.mailboxes.get(mailbox, (0, 0))
        return {"Message": "Mailbox Status", "Mailbox": mailbox, "Waiting": str(int(new > 0))}

    def _duration(self, ch: _Channel) -> str:
        s = max(0, int(self.now - ch.created))
        return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"

    def _show_channel(self, ch: _Channel) -> Item:
        return {"Event": "CoreShowChannel", **ch.snapshot, "Application": ch.app,
                "ApplicationData": ch.app_data, "Duration": self._duration(ch),
                "BridgeId": ch.bridge}  # fmt: skip

    def _status(self, ch: _Channel) -> Item:
        s = ch.snapshot
        return {"Event": "Status", "Privilege": "Call", **s,
                "Type": s["Channel"].split("/", 1)[0], "DNID": "",
                "EffectiveConnectedLineNum": s.get("ConnectedLineNum", ""),
                "EffectiveConnectedLineName": "<unknown>", "TimeToHangup": "0",
                "BridgeID": ch.bridge, "Application": ch.app, "Data": ch.app_data,
                "Nativeformats": "(ulaw)", "Readformat": "ulaw", "Readtrans": "",
                "Writeformat": "ulaw", "Writetrans": "", "Callgroup": "0", "Pickupgroup": "0",
                "Seconds": str(max(0, int(self.now - ch.created)))}  # fmt: skip

    def _queues(self, only: str | None) -> list[str]:
        return [q for q in sorted(self.pbx.queues) if only in (None, "", q)]

    def _queue_status(self, only: str | None) -> list[Item]:
        items: list[Item] = []
        for q in self._queues(only):
            waiting = self.callers.get(q, [])
            strategy = "ringall" if self.pbx.queues[q].kind == "group" else "rrmemory"
            items.append({"Event": "QueueParams", "Queue": q, "Max": "0", "Strategy": strategy,
                          "Calls": str(len(waiting)), "Holdtime": "0", "TalkTime": "0",
                          "Completed": "0", "Abandoned": "0", "ServiceLevel": "0",
                          "ServicelevelPerf": "0.0", "ServicelevelPerf2": "0.0",
                          "Weight": "0"})  # fmt: skip
            for (queue, iface), m in sorted(self.members.items()):
                if queue == q:
                    items.append({"Event": "QueueMember", "Queue": q, "Name": m["MemberName"],
                                  "Location": iface, "StateInterface": m["StateInterface"],
                                  "Membership": m["Membership"], "Penalty": m["Penalty"],
                                  "CallsTaken": m["CallsTaken"], "LastCall": m["LastCall"],
                                  "LastPause": m["LastPause"], "LoginTime": m["LoginTime"],
                                  "InCall": m["InCall"], "Status": m["Status"],
                                  "Paused": m["Paused"], "PausedReason": m["PausedReason"],
                                  "Wrapuptime": "0"})  # fmt: skip
            for pos, (uid, joined) in enumerate(waiting, 1):
                snap = self.channels[uid].snapshot if uid in self.channels else {}
                items.append({"Event": "QueueEntry", "Queue": q, "Position": str(pos),
                              "Channel": snap.get("Channel", ""), "Uniqueid": uid,
                              "CallerIDNum": snap.get("CallerIDNum", "unknown"),
                              "CallerIDName": "unknown", "ConnectedLineNum": "unknown",
                              "ConnectedLineName": "unknown",
                              "Wait": str(int(self.now - joined)), "Priority": "0"})  # fmt: skip
        return items

    def _summary(self, q: str) -> Item:
        members = [m for (queue, _), m in self.members.items() if queue == q]
        free = [m for m in members if m["Paused"] == "0" and m["Status"] in ("0", "1")]
        waiting = self.callers.get(q, [])
        longest = max((int(self.now - j) for _, j in waiting), default=0)
        return {"Event": "QueueSummary", "Queue": q, "LoggedIn": str(len(members)),
                "Available": str(len(free)), "Callers": str(len(waiting)), "HoldTime": "0",
                "TalkTime": "0", "LongestHoldTime": str(longest)}  # fmt: skip

    def _vm_user(self, ext: str) -> Item:
        box = self.pbx.mailboxes[ext]
        number, _, context = box.partition("@")
        new, old = self.mailboxes.get(box, (0, 0))
        return {"Event": "VoicemailUserEntry", "VMContext": context or "default",
                "VoiceMailbox": number, "Fullname": self.pbx.names[ext], "Email": "(null)",
                "Pager": "", "ServerEmail": "asterisk", "FromString": "",
                "MailCommand": "/bin/true", "Language": "", "TimeZone": "", "Callback": "",
                "Dialout": "", "UniqueID": "", "ExitContext": "", "SayDurationMinimum": "2",
                "SayEnvelope": "No", "SayCID": "No", "AttachMessage": "No",
                "AttachmentFormat": "", "DeleteMessage": "No", "VolumeGain": "0.00",
                "CanReview": "No", "CanMarkUrgent": "Yes", "CallOperator": "No",
                "MaxMessageCount": "100", "MaxMessageLength": "20",
                "NewMessageCount": str(new), "OldMessageCount": str(old)}  # fmt: skip
