"""Scenario driver for the Asterisk lab: places calls and changes state over AMI.

Runs against the lab PBX of docker-compose.yml (user ``driver``, secret in
``LAB_DRIVER_SECRET``).  Without the phone/PSTN simulator of the recorded
lab, inbound calls are originated as ``Local/<DID>@from-pstn`` channels with
the caller's number as caller id; phones that are not registered do not
ring (Dial ends CHANUNAVAIL), so unregistered extensions behave like phones
nobody answers.  Register softphones (IAX2 users 1001-2003) to answer calls.

    python asterisk-lab/scenario.py setup                 # log in the Bygglov members
    python asterisk-lab/scenario.py call 0701234567 0855001001
    python asterisk-lab/scenario.py presence 1002 away lunch "Lunch till 13:00"
    python asterisk-lab/scenario.py presence 1002 available
    python asterisk-lab/scenario.py pause bygglov Local/1003@grp-member on "Platsbesök"
    python asterisk-lab/scenario.py morning               # a few calls of each kind
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from panoramisk import Manager

BYGGLOV = {"Local/1003@grp-member": ("Maria Nilsson", "IAX2/1003"),
           "Local/1004@grp-member": ("Johan Berg", "IAX2/1004")}  # fmt: skip


async def act(manager: Manager, action: dict[str, str]) -> Any:
    reply = await manager.send_action(action)
    print(action["Action"], "->", reply.get("Response"), reply.get("Message", ""))
    return reply


async def call(manager: Manager, caller: str, did: str, seconds: int = 60) -> None:
    await act(manager, {"Action": "Originate", "Channel": f"Local/{did}@from-pstn",
                        "CallerID": caller, "Application": "Wait", "Data": str(seconds),
                        "Async": "true"})  # fmt: skip


async def presence(manager: Manager, ext: str, state: str, subtype: str = "",
                   message: str = "") -> None:  # fmt: skip
    value = ",".join([state, subtype, message]) if subtype or message else state
    variable = f"PRESENCE_STATE(CustomPresence:{ext})"
    await act(manager, {"Action": "Setvar", "Variable": variable, "Value": value})


async def main(args: argparse.Namespace) -> int:
    secret = os.environ.get("LAB_DRIVER_SECRET")
    if not secret:
        print("set LAB_DRIVER_SECRET (see .env.example)", file=sys.stderr)
        return 2
    manager = Manager(host=args.host, port=args.port, username="driver", secret=secret)
    await manager.connect()
    try:
        if args.cmd == "setup":
            for iface, (name, state) in BYGGLOV.items():
                await act(manager, {"Action": "QueueAdd", "Queue": "bygglov", "Interface": iface,
                                    "MemberName": name, "StateInterface": state})  # fmt: skip
        elif args.cmd == "call":
            await call(manager, args.caller, args.did, args.seconds)
        elif args.cmd == "presence":
            await presence(manager, args.ext, args.state, args.subtype, args.message)
        elif args.cmd == "pause":
            await act(manager, {"Action": "QueuePause", "Queue": args.queue,
                                "Interface": args.interface, "Paused": str(args.on == "on").lower(),
                                "Reason": args.reason})  # fmt: skip
        elif args.cmd == "morning":
            await presence(manager, "1002", "away", "lunch", "Lunch till 13:00")
            for caller, did in [("0701234567", "0855001001"), ("0702345678", "0855001002"),
                                ("0703456789", "0855001100"), ("0704567890", "0855000000"),
                                ("0705678901", "0855001004")]:  # fmt: skip
                await call(manager, caller, did, 40)
                await asyncio.sleep(5)
            await presence(manager, "1002", "available")
    finally:
        manager.close()
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5038)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("setup")
    c = sub.add_parser("call")
    c.add_argument("caller")
    c.add_argument("did")
    c.add_argument("--seconds", type=int, default=60)
    pr = sub.add_parser("presence")
    pr.add_argument("ext")
    pr.add_argument("state", choices=["available", "away", "xa", "dnd"])
    pr.add_argument("subtype", nargs="?", default="")
    pr.add_argument("message", nargs="?", default="")
    pa = sub.add_parser("pause")
    pa.add_argument("queue")
    pa.add_argument("interface")
    pa.add_argument("on", choices=["on", "off"])
    pa.add_argument("reason", nargs="?", default="")
    sub.add_parser("morning")
    return p


if __name__ == "__main__":
    sys.exit(asyncio.run(main(_parser().parse_args())))
