"""``pbxwatch demo``: the simulated PBX and pbxwatch together, no PBX needed.

The simulator (``pbxwatch.sim.live``) listens on a loopback port with a
one-off secret; pbxwatch connects to it exactly as ``run`` connects to an
Asterisk (the real AMI client over TCP), stores into SQLite in
``--data-dir``, serves its metrics, and logs unit chiefs' alerts when no
MQTT broker is configured.  A summary on the terminal is redrawn every
second; Ctrl-C stops both cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import signal
import socket
import sys
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from pbxwatch.app import run_live
from pbxwatch.core.alerts import Alert
from pbxwatch.core.engine import Record
from pbxwatch.core.figures import median, percentile
from pbxwatch.core.incidents import Incident
from pbxwatch.core.records import CallRecord
from pbxwatch.pipeline import Pipeline
from pbxwatch.settings import Settings
from pbxwatch.sim.live import SimPlan, SimulatedPbx

log = logging.getLogger(__name__)

SECRET_ENV = "PBXWATCH_DEMO_AMI_SECRET"


def terminal_lang(env: Mapping[str, str]) -> str:
    """The summary's language: Swedish first, English for a user whose locale
    names another language.

    The municipality's staff read Swedish, so an unset, "C" or "POSIX"
    locale gets Swedish.  The first of LC_ALL, LC_MESSAGES and LANG that is
    set decides, as POSIX orders them.  The closing log line is English
    whatever this says (see ``run_demo``).
    """
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if value := env.get(name, ""):
            lang = value.lower().split(".")[0]
            return "sv" if lang.startswith("sv") or lang in ("c", "posix") else "en"
    return "sv"


#: the outcomes' names in the Swedish summary (the English one shows the
#: records' own names)
OUTCOMES_SV = {
    "answered": "besvarade",
    "voicemail": "röstbrevlåda",
    "voicemail_no_message": "röstbrevlåda utan meddelande",
    "abandoned": "avbrutna",
    "busy": "upptaget",
    "failed": "misslyckade",
    "unknown": "okänt",
}

#: the summary's words, Swedish (the municipality's staff) and English
WORDS: dict[str, dict[str, str]] = {
    "sv": {
        "title": "pbxwatch demo — simulerad växeltid {clock}   (Ctrl-C avslutar)",
        "calls": "samtal klara     {n:5d}   inkommande {inbound}: {outcomes}",
        "answer": "svarstid         median {med}   p90 {p90}",
        "rings": "obesvarade signaler {unanswered:2d}   ej hänvisade {missing}",
        "callbacks": "återuppringning  väntar {pending}   försenade {overdue}   "
        "uppringda {called_back} (sent {late})",
        "queues": "kö               väntar  längst  lediga  pausade  i samtal  obemannad",
        "yes": "JA",
        "no": "nej",
        "alerts": "senaste larm:",
        "stopped": "demon stoppad: {events} händelser simulerade, {calls} samtal klara",
    },
    "en": {
        "title": "pbxwatch demo — simulated PBX time {clock}   (Ctrl-C stops)",
        "calls": "calls finished   {n:5d}   inbound {inbound}: {outcomes}",
        "answer": "answer time      median {med}   p90 {p90}",
        "rings": "unanswered rings {unanswered:4d}   missing forwards {missing}",
        "callbacks": "callbacks        pending {pending}   overdue {overdue}   "
        "called back {called_back} (late {late})",
        "queues": "queue            waiting  longest  available  paused  in call  unstaffed",
        "yes": "YES",
        "no": "no",
        "alerts": "latest alerts:",
        "stopped": "demo stopped: {events} events simulated, {calls} calls finished",
    },
}


@dataclass
class Summary:
    """What the demo shows: fed every record, drawn every second."""

    tz: ZoneInfo
    out: TextIO
    redraw: bool  # a terminal: clear and draw again; else one line every ten seconds
    lang: str = "sv"
    outcomes: Counter[str] = field(default_factory=Counter)
    answer_seconds: list[float] = field(default_factory=list)
    incidents: Counter[str] = field(default_factory=Counter)
    alerts: deque[str] = field(default_factory=lambda: deque(maxlen=5))
    _draws: int = 0
    _said: str = ""  # the last line written when not on a terminal
    _seen: set[str] = field(default_factory=set)

    @property
    def words(self) -> dict[str, str]:
        return WORDS[self.lang]

    def __call__(self, rec: Record) -> None:
        if isinstance(rec, CallRecord):
            self.outcomes[f"{rec.direction}/{rec.outcome}"] += 1
            if rec.direction == "inbound" and rec.answer_seconds is not None:
                self.answer_seconds.append(rec.answer_seconds)
        elif isinstance(rec, Incident) and rec.incident_id not in self._seen:
            self._seen.add(rec.incident_id)  # an interval is reported open, then resolved
            self.incidents[rec.kind] += 1
        elif isinstance(rec, Alert):
            at = dt.datetime.fromtimestamp(rec.created_at, self.tz).strftime("%H:%M")
            text = rec.text_sv if self.lang == "sv" else rec.text_en
            self.alerts.append(f"{at} {rec.state:8s} {text}")

    @property
    def calls(self) -> int:
        return sum(self.outcomes.values())

    def _outcome(self, name: str) -> str:
        return OUTCOMES_SV.get(name, name) if self.lang == "sv" else name

    def lines(self, pipeline: Pipeline, now: float) -> list[str]:
        eng, w = pipeline.engine, self.words
        clock = (
            dt.datetime.fromtimestamp(now, self.tz).strftime("%Y-%m-%d %H:%M:%S")
            if eng.stats["events"]
            else "—"
        )  # before the first event: no PBX time yet
        inbound = {k.split("/", 1)[1]: v for k, v in self.outcomes.items()
                   if k.startswith("inbound/")}  # fmt: skip
        states = Counter(cb.state(now) for cb in eng.callbacks.callbacks.values())
        med, p90 = median(self.answer_seconds), percentile(self.answer_seconds, 0.9)
        out = [
            w["title"].format(clock=clock),
            "",
            w["calls"].format(n=self.calls, inbound=sum(inbound.values()),
                              outcomes=", ".join(f"{self._outcome(k)} {v}"
                                                 for k, v in sorted(inbound.items()))),
            w["answer"].format(med=_s(med), p90=_s(p90)),
            w["rings"].format(unanswered=self.incidents["unanswered_ring"],
                              missing=self.incidents["missing_forward"]),
            w["callbacks"].format(pending=states["pending"], overdue=states["overdue"],
                                  called_back=states["called_back"],
                                  late=states["called_back_late"]),
            "",
            w["queues"],
        ]  # fmt: skip
        for name in sorted(eng.directory.queues):
            q = eng.queues.snapshot(name, now, self.tz)
            m = q["members"]
            out.append(f"{name:16s} {q['waiting']:7d} {q['longest_wait_seconds']:7.0f}s "
                       f"{m['available']:10d} {m['paused']:7d} {m['in_call']:8d}  "
                       f"{w['yes'] if q['unstaffed'] else w['no']}")  # fmt: skip
        out += ["", w["alerts"]] + [f"  {a}" for a in self.alerts]
        return out

    def draw(self, pipeline: Pipeline, now: float) -> None:
        self._draws += 1
        if self.redraw:
            self.out.write("\x1b[H\x1b[2J" + "\n".join(self.lines(pipeline, now)) + "\n")
        else:  # a pipe or a file: a line when the figures changed, else every ten seconds
            lines = self.lines(pipeline, now)
            figures = " | ".join(lines[2:6])
            if figures != self._said or self._draws % 10 == 1:
                self._said = figures
                self.out.write(f"{lines[0].split('   ')[0]} | {figures}\n")
        self.out.flush()


def _s(seconds: float | None) -> str:
    return "  —  " if seconds is None else f"{seconds:4.1f} s"


def free_or_other(listen: str) -> str:
    """``listen`` if it can be bound now, else a free port on the same host:
    the demo needs no configuration, so a 9108 or 8080 another program (or a
    pbxwatch left running) holds must not stop it.  ``run`` refuses instead,
    as its addresses are configured ones."""
    host, _, port = listen.rpartition(":")
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            probe.bind((bare, int(port)))
            return listen
        except OSError:
            probe.bind((bare, 0))
            return f"{host}:{probe.getsockname()[1]}"


def demo_settings(settings: Settings, port: int, data_dir: Path, metrics: str | None) -> Settings:
    """The configuration with the AMI pointed at the simulator, SQLite in
    ``data_dir``, and the metrics (unless ``metrics`` names an address) and
    the console on their configured addresses, or free ones if those are
    taken."""
    ami = settings.ami.model_copy(update={"host": "127.0.0.1", "port": port,
                                          "username": "pbxwatch", "secret_env": SECRET_ENV,
                                          "secret_file": None, "tls": False})  # fmt: skip
    storage = settings.storage.model_copy(update={"url": None, "data_dir": data_dir})
    listen = metrics or free_or_other(settings.metrics.listen)
    update: dict[str, object] = {
        "ami": ami,
        "storage": storage,
        "metrics": settings.metrics.model_copy(update={"listen": listen}),
    }
    if settings.web.enabled:
        web = free_or_other(settings.web.listen)
        update["web"] = settings.web.model_copy(update={"listen": web})
    return settings.model_copy(update=update)


async def run_demo(
    settings: Settings,
    plan: SimPlan,
    *,
    data_dir: Path,
    metrics_listen: str | None = None,
    duration: float | None = None,
    lang: str = "sv",
    out: TextIO = sys.stdout,
) -> int:
    secret = secrets.token_urlsafe(16)
    os.environ[SECRET_ENV] = secret
    sim = SimulatedPbx(settings, plan, "pbxwatch", secret)
    port = await sim.start()
    live = demo_settings(settings, port, data_dir, metrics_listen)
    tz = ZoneInfo(live.timezone)
    summary = Summary(tz, out, redraw=out.isatty(), lang=lang)
    if summary.redraw:  # the screen is the summary; only errors interrupt it
        logging.getLogger("pbxwatch").setLevel(logging.ERROR)
    log.info("simulated PBX on 127.0.0.1:%d; metrics on http://%s/metrics; store in %s",
             port, live.metrics.listen, data_dir)  # fmt: skip
    if live.web.enabled:  # the console (no login: loopback only, with a banner saying so)
        log.info("console on http://%s/", live.web.listen)
    player = asyncio.create_task(sim.run())
    stopper = asyncio.create_task(_stop_after(duration)) if duration else None
    try:
        return await run_live(live, observers=[summary.draw], sinks=[summary],
                              pbx_speed=plan.speed)  # fmt: skip
    finally:
        for task in (player, stopper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await sim.close()
        closing = {"events": sim.sent, "calls": summary.calls}
        if summary.lang != "en":  # the summary's own last line, in its language
            print(summary.words["stopped"].format(**closing), file=out, flush=True)
        # the log's closing line speaks English, as every log line does, so a
        # script reads the same words in every locale
        print(WORDS["en"]["stopped"].format(**closing), file=sys.stderr, flush=True)


async def _stop_after(seconds: float) -> None:
    """``--duration``: stop as Ctrl-C does."""
    await asyncio.sleep(seconds)
    os.kill(os.getpid(), signal.SIGINT)
