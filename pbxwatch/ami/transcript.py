"""Answers to the state-read actions, from a recorded transcript.

A restart recording's second part (``restart_gap.part2.ami``) opens with
the answers the PBX gave to the recorder's state read; its transcript
(``*.transcript.json``: a list of ``{sent_at, request, response,
list_events}``) says which request each answer was for.  Served with it, the
project's AMI server answers a client's ``Ping``, ``CoreShowChannels``,
``VoicemailBoxSummary`` ... with what the PBX said at that moment, under
the client's own ActionID, so a restart can be replayed through the real
client.  Each recorded answer is given once: asked again later, the PBX's
state would have moved on, and the transcript cannot say how.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbxwatch.ami.codec import parse_frame

#: how long the event stream waits for the client's state read at most
HOLD_SECONDS = 10.0
#: the client is done asking when it has been quiet this long
QUIET_SECONDS = 0.5


class TranscriptError(ValueError):
    """A transcript file that is not in the recorded format."""


@dataclass
class RecordedAnswer:
    action: str  # lower case
    args: tuple[tuple[str, str], ...]  # the request's other fields, keys lower case
    response: dict[str, str]
    list_events: list[dict[str, str]]
    sent_at: float
    taken: bool = False


def _key(fields: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    lower = {k.lower(): v for k, v in fields.items()}
    action = lower.pop("action", "").lower()
    lower.pop("actionid", None)
    return action, tuple(sorted(lower.items()))


@dataclass
class Transcript:
    answers: list[RecordedAnswer]
    _last_action: float | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: str | Path) -> Transcript:
        try:
            raw: Any = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TranscriptError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from exc
        if not isinstance(raw, list):
            raise TranscriptError(f"{path}: a transcript is a JSON list of actions")
        answers = []
        for i, entry in enumerate(raw):
            try:
                request = parse_frame(entry["request"].strip("\r\n").encode())
                action, args = _key(request)
                answers.append(RecordedAnswer(action, args, dict(entry["response"]),
                                              [dict(e) for e in entry.get("list_events", [])],
                                              float(entry.get("sent_at", 0.0))))  # fmt: skip
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                raise TranscriptError(f"{path}: action {i}: {type(exc).__name__} {exc}") from exc
        return cls(answers)

    @property
    def done(self) -> bool:
        return all(a.taken for a in self.answers)

    def take(self, fields: dict[str, str]) -> RecordedAnswer | None:
        """The recorded answer to this request, if one is left."""
        self._last_action = time.monotonic()
        action, args = _key(fields)
        for answer in self.answers:
            if not answer.taken and answer.action == action and answer.args == args:
                answer.taken = True
                return answer
        return None

    async def wait_for_client(self) -> None:
        """Until the client has asked what it will ask after its login: every
        recorded request, or quiet for a moment after it began, or at most
        ``HOLD_SECONDS``.  The stream waits meanwhile, as the PBX's state
        the answers describe is the state before the events after them."""
        deadline = time.monotonic() + HOLD_SECONDS
        while not self.done and time.monotonic() < deadline:
            last = self._last_action
            if last is not None and time.monotonic() - last > QUIET_SECONDS:
                return
            await asyncio.sleep(0.02)
