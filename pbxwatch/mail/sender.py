"""The mail sender: a task of ``run`` that turns the outbox into mail.

It never runs on the AMI read path.  Each round it

1. holds the alert mails raised outside their unit's phone hours;
2. at a unit's opening, makes one morning summary per recipient of what
   was held, in the same transaction that marks the held rows summarised;
3. at ``mail.digest_time`` on a unit's working day, makes the daily digest
   of its previous working day (and on ``mail.weekly_day`` the weekly one
   of the seven days before), once per key: a digest row that exists is
   never made again;
4. sends what is due, one SMTP session per mail, marking each ``sent``
   only after the server's 250.

A 4xx reply is retried with backoff (``mail.retry_*``) up to
``mail.max_attempts``; a 5xx is recorded on the row (``reply_code``,
``reply``), counted (``pbxwatch_mail_failed_total``), logged at ERROR and
never retried.  An unreachable server (or one that goes away mid-mail)
costs a mail no attempt: everything waits, with backoff, until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import aiosmtplib
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pbxwatch.backoff import backoff_delay
from pbxwatch.core.calendar import PhoneHours, WorkCalendar
from pbxwatch.mail.compose import (
    Content,
    alert_content,
    digest_content,
    message,
    summary_content,
    unit_link,
)
from pbxwatch.mail.digest import digest_data
from pbxwatch.mail.outbox import mail_id, message_id, recipients
from pbxwatch.settings import Settings
from pbxwatch.store import models

log = logging.getLogger(__name__)

BATCH = 20
#: how long a digest waits for the store to hold what the core said before it
SETTLE_SECONDS = 10.0
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
T = models.MailRow


class MailSender:
    def __init__(
        self,
        settings: Settings,
        store: AsyncEngine,
        now: Callable[[], float | None],
        settled: Callable[[float], Awaitable[bool]] | None = None,
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        self.settings = settings
        #: whether this instance sends the site's mail now (in a cluster,
        #: the one doing the site's jobs; a standby waits)
        self.active = active
        #: waits (up to the seconds given) until the store holds every record
        #: made so far (``StoreWriter.caught_up``): a digest is read from it
        self.settled = settled
        self.m = settings.mail
        self.store = store
        self.now = now  # PBX time (the engine clock's estimate)
        self.tz = ZoneInfo(settings.timezone)
        self.calendar = WorkCalendar(self.tz, frozenset(settings.calendar.closed_days))
        directory = settings.directory_model()
        self.hours: dict[str, PhoneHours] = {k: u.phone_hours for k, u in directory.units.items()}
        self.sent = 0
        self.failed = 0
        self.backlog = 0
        self.smtp_up = False
        self._down = 0  # consecutive failures to reach the server
        self._down_until = 0.0  # monotonic
        self._empty: set[str] = set()  # digest keys with nothing to say
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        """Send what is due, then return from ``run``."""
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            self._wakeup.clear()
            sent = 0
            if not self.active():
                if self._stopping.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.m.poll_seconds)
                continue
            try:
                now = self.now()
                if now is not None:
                    await self.schedule(now)
                else:  # no PBX time yet: no summary or digest is due, but holding needs none
                    await self._hold()
                sent = await self.send_due()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("mail outbox unreadable (database down?): %s", exc)
            if self._stopping.is_set() and sent == 0:
                return
            if sent < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.m.poll_seconds)

    # ------------------------------------------------------------ scheduling

    def _in_hours(self, unit: str | None, t: float) -> bool:
        hours = self.hours.get(unit or "")
        return hours is None or self.calendar.in_phone_hours(t, hours)

    async def schedule(self, now: float) -> None:
        await self._hold()
        await self._summaries(now)
        await self._digests(now)

    async def _hold(self) -> None:
        async with self.store.begin() as conn:
            rows = (
                await conn.execute(
                    select(T.mail_id, T.unit, T.created_at).where(
                        T.status == "pending",
                        T.kind == "alert",
                        T.attempts == 0,
                        T.reply_code.is_(None),
                    )
                )
            ).all()
            held = [r.mail_id for r in rows if not self._in_hours(r.unit, r.created_at)]
            if held:
                await conn.execute(update(T).where(T.mail_id.in_(held)).values(status="held"))

    async def _summaries(self, now: float) -> None:
        units = [u for u in self.hours if self._in_hours(u, now)]
        if not units:
            return
        async with self.store.begin() as conn:
            rows = (
                await conn.execute(
                    select(T.mail_id, T.unit, T.recipient, T.lang, T.created_at, T.alert_id)
                    .where(T.status == "held", T.unit.in_(units), T.created_at <= now)
                    .order_by(T.created_at, T.mail_id)
                )
            ).all()
            if not rows:
                return
            payloads = await self._payloads(conn, {r.alert_id for r in rows if r.alert_id})
            groups: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
            for r in rows:
                groups[(r.unit, r.recipient, r.lang)].append(r)
            day = dt.datetime.fromtimestamp(now, self.tz).date()
            for (unit, to, lang), members in groups.items():
                last = max(r.created_at for r in members)
                key = f"summary:{unit}:{day.isoformat()}:{last:.0f}"
                found = [payloads[r.alert_id] for r in members if r.alert_id in payloads]
                content = summary_content(
                    self.settings.directory.units[unit].name, day, found, lang,
                    unit_link(self.m.console_url, unit),
                )  # fmt: skip
                sid = mail_id(key, to)
                await self._insert(conn, [self._row(key, "summary", unit, to, lang, now, content)])
                await conn.execute(
                    update(T)
                    .where(T.mail_id.in_([r.mail_id for r in members]))
                    .values(status="summarized", summary_id=sid)
                )
        self._wakeup.set()

    def _due_digests(self, unit: str, now: float) -> list[tuple[str, dt.date, dt.date]]:
        local = dt.datetime.fromtimestamp(now, self.tz)
        today, hours = local.date(), self.hours[unit]
        if local.time() < self.m.digest_time or not self.calendar.is_working_day(today, hours):
            return []
        prev = today - dt.timedelta(days=1)
        while not self.calendar.is_working_day(prev, hours) and (today - prev).days < 400:
            prev -= dt.timedelta(days=1)
        out = [("daily", prev, prev)]
        if _DAYS[today.weekday()] == self.m.weekly_day:
            out.append(("weekly", today - dt.timedelta(days=7), today - dt.timedelta(days=1)))
        return out

    async def _digests(self, now: float) -> None:
        for unit in self.hours:
            to = recipients(self.settings, unit)
            if not to:
                continue
            for kind, first, last in self._due_digests(unit, now):
                key = f"{kind}:{unit}:{first.isoformat()}"
                if key in self._empty:
                    continue
                async with self.store.connect() as conn:
                    if await conn.scalar(select(func.count()).where(T.key == key)):
                        self._empty.add(key)  # made already: never again
                        continue
                if self.settled is not None and not await self.settled(SETTLE_SECONDS):
                    log.warning("mail: %s digest of %s for %s made with rows still unwritten "
                                "(the database is slow)", kind, first, unit)  # fmt: skip
                data = await digest_data(self.store, self.settings, unit, kind, first, last, now)
                if data is None:
                    self._empty.add(key)
                    continue
                rows = [
                    self._row(
                        key,
                        kind,
                        unit,
                        r.email,
                        r.lang,
                        now,
                        digest_content(data, r.lang, self.m.console_url),
                    )
                    for r in to
                ]
                async with self.store.begin() as conn:
                    await self._insert(conn, rows)
                log.info("mail: %s digest of %s for %s queued", kind, first, unit)
                self._wakeup.set()

    @staticmethod
    def _row(
        key: str, kind: str, unit: str, to: str, lang: str, now: float, content: Content
    ) -> dict[str, Any]:
        return {
            "mail_id": mail_id(key, to),
            "key": key,
            "kind": kind,
            "unit": unit,
            "recipient": to,
            "lang": lang,
            "created_at": now,
            "subject": content.subject,
            "body_text": content.text,
            "body_html": content.html,
        }

    @staticmethod
    async def _insert(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        await conn.execute(insert(T).on_conflict_do_nothing(index_elements=["mail_id"]), rows)

    @staticmethod
    async def _payloads(conn: AsyncConnection, ids: set[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        a = models.AlertRow
        rows = await conn.execute(select(a.alert_id, a.payload).where(a.alert_id.in_(ids)))
        return {r.alert_id: json.loads(r.payload) for r in rows}

    # ------------------------------------------------------------ sending

    def backlog_due(self) -> bool:
        """Mails waiting for a retry (a 4xx, or the server unreachable)."""
        return self.backlog > 0 and self._down_until > time.monotonic()

    async def send_due(self) -> int:
        host = time.time()
        async with self.store.connect() as conn:
            self.backlog = int(
                await conn.scalar(select(func.count()).where(T.status.in_(("pending", "held"))))
                or 0
            )
            if time.monotonic() < self._down_until:
                return 0
            rows = (
                await conn.execute(
                    select(T)
                    .where(
                        T.status == "pending", (T.next_try_at.is_(None)) | (T.next_try_at <= host)
                    )
                    .order_by(T.created_at, T.mail_id)
                    .limit(BATCH)
                )
            ).all()
            payloads = await self._payloads(conn, {r.alert_id for r in rows if r.alert_id})
        done = 0
        for row in rows:
            if (
                row.kind == "alert"
                and row.attempts == 0
                and not self._in_hours(row.unit, row.created_at)
            ):
                continue  # came after this round's hold: the next round holds it
            msg = self.message_for(row, payloads.get(row.alert_id or ""))
            if msg is None:
                continue
            try:
                await self._smtp(msg, row.recipient)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                first = exc.recipients[0]
                await self._refused(row, first.code, first.message)
            except aiosmtplib.SMTPResponseException as exc:
                await self._refused(row, exc.code, exc.message)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                self.smtp_up = False
                delay = backoff_delay(
                    self._down, self.m.retry_initial_seconds, self.m.retry_max_seconds
                )
                self._down += 1
                self._down_until = time.monotonic() + delay
                log.warning(
                    "mail: SMTP server %s:%d unreachable (%s); %d mails waiting, retry in %.1f s",
                    self.m.host,
                    self.m.port,
                    type(exc).__name__,
                    self.backlog,
                    delay,
                )
                return done
            else:
                self.smtp_up, self._down = True, 0
                async with self.store.begin() as conn:
                    await conn.execute(
                        update(T)
                        .where(T.mail_id == row.mail_id)
                        .values(
                            status="sent",
                            sent_at=time.time(),
                            attempts=T.attempts + 1,
                            reply_code=250,
                            reply=None,
                        )
                    )
                self.sent += 1
                done += 1
        return done

    def message_for(self, row: Any, payload: dict[str, Any] | None) -> EmailMessage | None:
        """The mail of an outbox row (its alert's ``payload`` for an alert's
        row), as it is sent; ``None`` for an alert the store does not hold."""
        refs = None
        if row.kind == "alert":
            if payload is None:
                log.warning("mail %s: its alert is not in the store; skipped", row.key)
                return None
            content = alert_content(payload, row.lang, self.m.console_url)
            if row.key.endswith(":resolved"):
                opened = row.key.removesuffix(":resolved") + ":open"
                refs = message_id(mail_id(opened, row.recipient), self.settings)
        else:
            content = Content(row.subject or "", row.body_text or "", row.body_html or "")
        date = dt.datetime.fromtimestamp(row.created_at, self.tz)
        return message(
            content,
            sender=self.m.sender,
            to=row.recipient,
            message_id=message_id(row.mail_id, self.settings),
            date=date,
            references=refs,
        )

    async def _smtp(self, msg: EmailMessage, to: str) -> None:
        m = self.m
        client = aiosmtplib.SMTP(
            hostname=m.host,
            port=m.port,
            timeout=m.timeout_seconds,
            use_tls=m.security == "tls",
            start_tls=m.security == "starttls",
            username=m.username,
            password=m.password() if m.username else None,
        )
        async with client:
            await client.send_message(msg, recipients=[to])

    async def _refused(self, row: Any, code: int, reply: str) -> None:
        self.smtp_up, self._down = True, 0
        attempts = row.attempts + 1
        if 400 <= code < 500 and attempts < self.m.max_attempts:
            delay = backoff_delay(
                attempts - 1, self.m.retry_initial_seconds, self.m.retry_max_seconds
            )
            values: dict[str, Any] = {"next_try_at": time.time() + delay}
            log.warning(
                "mail %s (unit %s): %d %s; retry %d in %.1f s",
                row.key,
                row.unit,
                code,
                reply,
                attempts,
                delay,
            )
        else:
            values = {"status": "failed"}
            self.failed += 1
            log.error(
                "mail %s (unit %s) failed: SMTP %d %s after %d attempt(s); not retried",
                row.key,
                row.unit,
                code,
                reply,
                attempts,
            )
        async with self.store.begin() as conn:
            await conn.execute(
                update(T)
                .where(T.mail_id == row.mail_id)
                .values(attempts=attempts, reply_code=code, reply=reply[:1000], **values)
            )
