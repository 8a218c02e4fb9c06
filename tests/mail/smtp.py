"""A real SMTP server for the mail tests: aiosmtpd's ``Controller`` on a
free port, recording every message, and answering with the codes a test
asks for (per recipient, a list of replies to give before accepting)."""

from __future__ import annotations

import email
import email.policy
from collections import defaultdict
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.replies: dict[str, list[str]] = defaultdict(list)  # recipient -> replies to give first
        self.always: dict[str, str] = {}  # recipient -> reply every time

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:  # fmt: skip
        if address in self.always:
            return self.always[address]
        if self.replies[address]:
            return self.replies[address].pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 Message accepted for delivery"


def start(port: int, recorder: Recorder) -> Controller:
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    return controller
