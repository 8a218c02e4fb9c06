"""Ask the PBX for its state after every (re)connect.

Events say what *changes*; a client that was not connected when a queue
member paused, a hänvisning was set, a call ended or a message was heard
would not know it.  So after each login ``run`` asks:

* ``Ping``: its ``Timestamp`` is the PBX's clock, the end of the gap;
* ``CoreShowChannels`` (right after, so its ``Duration`` counts are on the
  Ping's clock): which calls are still up, with what each channel runs
  (the core closes the calls that ended unseen, continues the ones still
  up and builds the ones it never saw);
* ``QueueStatus`` (every member, paused or not, and the callers waiting),
  ``PresenceStateList``, ``DeviceStateList`` and ``ExtensionStateList``:
  their items go to the core, which treats items carrying an ``ActionID``
  as state, never as news of a call;
* ``MailboxCount`` for every configured mailbox: how many messages are new;
* ``VoicemailBoxSummary`` for every mailbox: each message in INBOX and Old
  with its msg_id, caller and length, so messages left, heard or deleted
  while pbxwatch was blind are matched by id, not guessed from a count.

All of them need only the ``reporting`` write class (see
``asterisk-lab/etc/manager.conf``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pbxwatch.ami.client import AmiSource, messages_of
from pbxwatch.core.events import parse_int, parse_timestamp
from pbxwatch.core.gaps import PbxSnapshot, VoicemailMessage

log = logging.getLogger(__name__)

STATE_ACTIONS = ("QueueStatus", "PresenceStateList", "DeviceStateList", "ExtensionStateList")
CHANNELS_ACTION = "CoreShowChannels"
SUMMARY_ACTION = "VoicemailBoxSummary"

Feed = Callable[[Mapping[str, str]], None]


def list_items(result: Any) -> list[Mapping[str, str]]:
    """The list events of an answer, without the closing ``...Complete``."""
    return [
        dict(m) for m in messages_of(result)
        if m.get("Event") and not str(m.get("Event")).endswith("Complete")
    ]  # fmt: skip


async def read_state(
    source: AmiSource, feed: Feed, mailboxes: Sequence[str], speed: float = 1.0
) -> PbxSnapshot:
    """Run the status actions; state items go to ``feed`` as they come, the
    channels and mailboxes come back as a snapshot.  The channels are read
    right after the ``Ping``, and the PBX time they describe is the Ping's
    plus the host time since, times ``speed`` (PBX seconds per host second):
    each channel's start is that time less its ``Duration``."""
    pong = await source.send_action({"Action": "Ping"})
    pinged = time.monotonic()
    pbx_time = parse_timestamp(pong.get("Timestamp"))
    channels = tuple(
        c for c in list_items(await source.send_action({"Action": CHANNELS_ACTION}))
        if c.get("Uniqueid")
    )  # fmt: skip
    listed = None if pbx_time is None else pbx_time + (time.monotonic() - pinged) * speed
    items: dict[str, int] = {CHANNELS_ACTION: len(channels)}
    for action in STATE_ACTIONS:
        answer = list_items(await source.send_action({"Action": action}))
        items[action] = len(answer)
        for item in answer:
            feed(item)
    counts: dict[str, int] = {}
    for box in mailboxes:
        reply = await source.send_action({"Action": "MailboxCount", "Mailbox": box})
        new = parse_int(str(reply.get("NewMessages", "")))
        if reply.get("Response") == "Success" and new is not None:
            counts[box] = new
    items["MailboxCount"] = len(counts)
    messages = {box: msgs for box in mailboxes
                if (msgs := await read_mailbox(source, box)) is not None}  # fmt: skip
    items[SUMMARY_ACTION] = len(messages)
    return PbxSnapshot(channels, counts, messages, items, pbx_time=pbx_time,
                       channels_time=listed)  # fmt: skip


async def read_mailbox(source: AmiSource, mailbox: str) -> tuple[VoicemailMessage, ...] | None:
    """A mailbox's messages (``1002@default``), or None when the PBX would
    not say (no app_voicemail, no such box, an older Asterisk)."""
    box, _, context = mailbox.partition("@")
    answer = await source.send_action(
        {"Action": SUMMARY_ACTION, "Context": context or "default", "Mailbox": box}
    )
    return summary_messages(messages_of(answer))


def summary_messages(frames: Sequence[Mapping[str, str]]) -> tuple[VoicemailMessage, ...] | None:
    """The messages of a ``VoicemailBoxSummary`` answer (its response and
    list events), or None when it was refused."""
    if not frames or frames[0].get("Response") != "Success":
        return None
    return tuple(VoicemailMessage.from_item(m) for m in frames
                 if m.get("Event") == "VoicemailBoxDetail")  # fmt: skip


async def resync_forever(
    source: AmiSource,
    feed: Feed,
    mailboxes: Sequence[str],
    on_snapshot: Callable[[PbxSnapshot], None],
    connected: asyncio.Event,
    speed: float = 1.0,
) -> None:
    """After each login: read the state and hand the snapshot on.  A session
    that drops mid-read is read again after the next login."""
    while True:
        await connected.wait()
        connected.clear()
        try:
            snap = await read_state(source, feed, mailboxes, speed)
        except (ConnectionError, TimeoutError) as exc:
            log.info("state read interrupted: %s", exc or type(exc).__name__)
            continue
        except Exception:  # an odd answer must not end state reading for good
            log.exception("state read failed; trying again at the next login")
            continue
        log.info("state read after connect: %s",
                 ", ".join(f"{k} {v}" for k, v in snap.items.items()))  # fmt: skip
        on_snapshot(snap)


async def recheck_mailboxes_forever(
    source: AmiSource,
    due: Callable[[], list[str]],
    read: Callable[[str, tuple[VoicemailMessage, ...]], None],
    every: float = 1.0,
) -> None:
    """Each second, read the mailboxes whose new-message count fell (``due``)
    and hand their messages on: which one was heard is then known by its
    msg_id, not guessed from the order.  A PBX that will not say (no
    connection, an error) leaves the guess as it is."""
    while True:
        await asyncio.sleep(every)
        for mailbox in due():
            try:
                messages = await read_mailbox(source, mailbox)
            except (ConnectionError, TimeoutError):
                continue
            if messages is not None:
                read(mailbox, messages)
