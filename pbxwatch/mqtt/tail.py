"""``pbxwatch alerts tail``: a unit chief's or on-call engineer's terminal
view of the MQTT tree."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiomqtt

from pbxwatch.backoff import backoff_delay
from pbxwatch.mqtt.topics import client_for, topics_for
from pbxwatch.settings import Settings

log = logging.getLogger(__name__)


async def tail(settings: Settings, unit: str | None, as_json: bool, queues: bool,
               out: Callable[[str], None] = print) -> None:  # fmt: skip
    """Print alerts, the PBX's availability, AMI gaps and (``queues``) the
    queue and unit state as they come, until interrupted; a broker that
    goes away is waited for (capped backoff, one line when it goes and one
    when it is back)."""
    topics = topics_for(settings)
    ident = f"pbxwatch-tail-{int(time.time() * 1000) % 10**9}"
    m, attempt, lost = settings.mqtt, 0, False
    while True:
        try:
            async with client_for(m, ident) as client:
                await client.subscribe(topics.all_alerts(unit), qos=1)
                await client.subscribe(topics.pbx, qos=1)
                await client.subscribe(topics.gap, qos=1)
                if queues:
                    await client.subscribe(topics.queue("+"), qos=1)
                    await client.subscribe(topics.unit_state(unit or "+"), qos=1)
                if lost:
                    log.warning("MQTT: connected to %s:%d again", m.host, m.port)
                attempt, lost = 0, False
                async for message in client.messages:
                    _print(message, as_json, out)
        except aiomqtt.MqttError as exc:
            delay = backoff_delay(attempt, m.reconnect_initial_seconds, m.reconnect_max_seconds)
            attempt += 1
            if not lost:
                log.warning("MQTT: %s; reconnecting", exc)
                lost = True
            await asyncio.sleep(delay)


def _print(message: aiomqtt.Message, as_json: bool, out: Callable[[str], None]) -> None:
    text = message.payload.decode() if isinstance(message.payload, bytes) else ""
    if as_json:
        out(text)
        return
    with contextlib.suppress(ValueError):
        body = json.loads(text)
        if isinstance(body, dict):
            out(pretty(body))


def pretty(body: dict[str, Any]) -> str:
    """One line for a payload of the tree."""
    kind = body.get("type")
    if kind == "ami_gap":
        return (f"{str(body.get('ended_at', ''))[11:16]} ?? AMI gap {body.get('started_at')} "
                f"to {body.get('ended_at')} ({body.get('seconds')} s): {body.get('reason')}; "
                "figures for that time may be incomplete")  # fmt: skip
    if kind == "pbx":
        since = str(body.get("since", ""))
        why = f": {body['reason']}" if body.get("reason") else ""
        mark = "OK " if body.get("state") == "online" else "!!!"
        return f"{since[11:16]} {mark} PBX {body.get('state')} since {since}{why}"
    if kind == "unit":
        return (f"unit {body.get('unit')}: {body.get('missing_forwards_today')} missing "
                f"forwards, {body.get('unanswered_rings_today')} unanswered rings today; "
                f"callbacks {body.get('callbacks_pending')} pending, "
                f"{body.get('callbacks_overdue')} overdue")  # fmt: skip
    if "alert_id" in body:
        when = str(body.get("created_at", ""))[11:16]
        mark = (
            "OK "
            if body.get("state") == "resolved"
            else {"warning": "!! ", "critical": "!!!"}.get(str(body.get("severity")), "   ")
        )
        return (f"{when} {mark} [{body.get('unit_name') or body.get('unit')}] "
                f"{body.get('text', {}).get('sv')}  ({body.get('alert_id')})")  # fmt: skip
    m = body.get("members", {})
    flag = "  UNSTAFFED" if body.get("unstaffed") else ""
    return (f"queue {body.get('queue')}: {body.get('waiting')} waiting "
            f"(longest {body.get('longest_wait_seconds')} s), {m.get('available')} available, "
            f"{m.get('in_call')} in call, {m.get('paused')} paused{flag}")  # fmt: skip
