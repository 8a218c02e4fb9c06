"""A real SMTP server for the mail tests: aiosmtpd's ``Controller`` on a
free port, recording every message, and answering with the codes a test
asks for (per recipient, a list of replies to give before accepting; or a
rule asked first).  Every RCPT reply given is logged, and ``on_data`` may
act in the middle of a DATA transaction (the live test kills the sending
``pbxwatch run`` there: the message is then not accepted, as with a real
server whose client went away before the end of DATA)."""

from __future__ import annotations

import email
import email.policy
import time
from collections import defaultdict
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.replies: dict[str, list[str]] = defaultdict(list)  # recipient -> replies to give first
        self.always: dict[str, str] = {}  # recipient -> reply every time
        #: asked first: a reply for this recipient, or None for the usual ones
        self.rule: Callable[[str], str | None] | None = None
        #: (monotonic time, recipient, reply) of every RCPT answered
        self.given: list[tuple[float, str, str]] = []
        #: called with the message in DATA; a reply it returns refuses the message
        self.on_data: Callable[[EmailMessage], str | None] | None = None

    def _rcpt(self, address: str) -> str:
        said = self.rule(address) if self.rule is not None else None
        if said is not None:
            return said
        if address in self.always:
            return self.always[address]
        if self.replies[address]:
            return self.replies[address].pop(0)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:  # fmt: skip
        reply = self._rcpt(address)
        self.given.append((time.monotonic(), address, reply))
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        if self.on_data is not None and (refused := self.on_data(msg)) is not None:
            return refused
        self.messages.append(msg)
        return "250 Message accepted for delivery"


def start(port: int, recorder: Recorder) -> Controller:
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    return controller
