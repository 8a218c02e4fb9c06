"""A hot standby: instances on one PostgreSQL share the PBXs by leases.

Every instance follows every configured PBX (its own AMI session and
core), so a standby has seen everything the owner saw.  Only the owner of
a PBX's lease (``pbxwatch.store.leases``) writes its rows, publishes its
alerts and queue state; the others keep the last minute of its records
(``pbxwatch.store.port``).  Once a round (a third of ``lease_seconds``)
each instance beats its heartbeat, renews what it holds, and takes over
what has lapsed up to its fair share (the PBXs divided by the instances
beating), so a dead owner's PBXs move within about ``1.3 × lease_seconds``
and a joining instance gets its share from the others, which give it back
after their writer has caught up (no gap: the taker has been following).
A joining instance counts for the others only once it is ready: logged in
to every PBX and every call it found up at its login ended, so that no
call is written by an instance that saw only its end.
The site-wide jobs (mail, retention, the units' state and gaps on MQTT)
go with a lease of their own, ``@site``.

Fencing is the writer's and the relay's: each checks the lease epoch in
the transaction that writes or claims (``fenced``), so an owner that lost
its lease while frozen writes and publishes nothing when it resumes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Collection

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pbxwatch.settings import Settings
from pbxwatch.store.db import last_event_time
from pbxwatch.store.leases import Lease, Leases, fenced
from pbxwatch.store.port import WriterPort
from pbxwatch.store.writer import StoreWriter

log = logging.getLogger(__name__)

#: the lease of the jobs done once per site, not per PBX
SITE = "@site"
#: how long a lease handed back waits for the writer to commit its rows
GIVE_SECONDS = 5.0


class Cluster:
    """This instance's share of the PBXs ``pbxs``."""

    def __init__(self, settings: Settings, store: AsyncEngine, writer: StoreWriter,
                 pbxs: Collection[str],
                 ready: Callable[[], bool] = lambda: True) -> None:  # fmt: skip
        c = settings.cluster
        self.name = c.instance or socket.gethostname()
        #: unique per process: a restarted instance is a new holder
        self.holder = f"{self.name}/{os.getpid()}-{secrets.token_hex(3)}"
        self.store = store
        self.writer = writer
        self.pbxs = sorted(pbxs)
        #: whether this instance has seen every call in progress from its start
        #: (until then it gets no PBX given back, only lapsed ones)
        self.ready = ready
        self.leases = Leases(store, self.holder, c.lease_seconds)
        self.every = c.lease_seconds / 3.0
        self.keep_seconds = c.keep_seconds
        #: the ports of the PBXs, by id (set once the followers have recovered)
        self.ports: dict[str, WriterPort] = {}
        self.held: dict[str, Lease] = {}
        self.instances = 1
        #: takeovers by this instance, per PBX (failovers and moves)
        self.takeovers: Counter[str] = Counter()
        #: the longest a PBX's lease had lapsed when this instance took it over
        self.last_failover_seconds = 0.0
        self._renewed = time.monotonic()  # the last round that reached the database
        self._stopping = asyncio.Event()
        writer.on_lease_lost = self._lost

    def owns(self, pbx: str) -> bool:
        return pbx in self.held

    @property
    def site_jobs(self) -> bool:
        """Whether this instance does the site's once-only jobs now."""
        return SITE in self.held

    async def confirmed(self, conn: AsyncConnection) -> set[str]:
        """The PBXs (and ``@site``) still held at their epoch, read in
        ``conn``'s transaction: what an outbox claim may go on with."""
        held = dict(self.held)
        return set(held) - await fenced(conn, held.values())

    # ------------------------------------------------------------ rounds

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), self.every)
                return
            except TimeoutError:
                pass
            try:
                await self.round_once()
                self._renewed = time.monotonic()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("cluster: leases not renewed (%s: %s)", type(exc).__name__, exc)
                self._expire_locally()

    async def renew_if_due(self) -> None:
        """Beat and renew if a third of a lease has passed since the last
        round: for the start, while the followers recover (with hundreds of
        PBXs that takes longer than a lease) before ``run`` begins."""
        if time.monotonic() - self._renewed >= self.every:
            await self._renew()

    async def _renew(self) -> None:
        """Beat the heartbeat (counting the instances) and renew every lease
        held, in two statements."""
        self.instances = await self.leases.beat(self.ready())
        self._renewed = time.monotonic()
        for pbx in await self.leases.renew_all(list(self.held.values())):
            self._lost(pbx)

    async def stop(self) -> None:
        """A graceful stop: give every lease back, so a standby takes over
        at its next round instead of after the lease has lapsed (after the
        writer has committed this instance's rows)."""
        self._stopping.set()
        try:
            await self.leases.release_all(list(self.held.values()))
            self.held.clear()
            await self.leases.stop_beating()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("cluster: leases not given back (%s); they lapse", exc)

    async def round_once(self) -> None:
        """Beat, renew, give back past the fair share, take up to it.  Run
        once before the followers recover (so that an owner resumes from
        the store and a standby does not), then every third of a lease."""
        await self._renew()
        share = math.ceil(len(self.pbxs) / self.instances)
        mine = [p for p in self.pbxs if p in self.held]
        for pbx in mine[share:]:  # a new instance beats: its share from the last PBXs
            await self._give(pbx)
            await self.renew_if_due()
        owned = min(len(mine), share)
        if owned < share:
            free = await self.leases.takeable(p for p in self.pbxs if p not in self.held)
            for pbx in free:
                if owned >= share:
                    break
                if taken := await self.leases.acquire(pbx):
                    await self._take(taken)
                    owned += 1
                    await self.renew_if_due()  # taking hundreds may outlast a lease
        if SITE not in self.held and (site := await self.leases.acquire(SITE)):
            self.held[SITE] = site
            log.info("cluster: %s does the site's jobs (epoch %d)", self.name, site.epoch)

    async def _take(self, lease: Lease) -> None:
        pbx = lease.pbx
        self.held[pbx] = lease
        self.writer.hold(lease)
        port = self.ports.get(pbx)
        if port is None:  # at start: the follower recovers as this PBX's owner
            log.info("cluster: %s owns PBX %s (epoch %d)", self.name, pbx, lease.epoch)
            return
        committed = await last_event_time(self.store, port.source)
        handed = port.promote(committed)
        self.takeovers[pbx] += 1
        if lease.previous is not None and lease.lapsed_seconds == 0.0:  # given back to us
            log.info("cluster: %s was given PBX %s by %s (epoch %d); %d records written from "
                     "its last commit", self.name, pbx, lease.previous, lease.epoch,
                     handed)  # fmt: skip
            return
        if lease.previous is not None:  # a failover: the owner went silent
            self.last_failover_seconds = lease.lapsed_seconds
        log.warning("cluster: %s took PBX %s over from %s (epoch %d, its lease lapsed %.1f s "
                    "ago); %d records it had not committed written", self.name, pbx,
                    lease.previous or "nobody", lease.epoch, lease.lapsed_seconds,
                    handed)  # fmt: skip

    async def _give(self, pbx: str) -> None:
        """Hand ``pbx`` to an instance that has fewer: stop writing it, let
        the writer commit what it has, then give the lease back."""
        lease = self.held.pop(pbx)
        port = self.ports.get(pbx)
        if port is not None:
            port.demote()
        await self.writer.caught_up(GIVE_SECONDS)
        self.writer.release(pbx)
        await self.leases.release(lease)
        log.info("cluster: %s gave PBX %s back for %d instances to share", self.name, pbx,
                 self.instances)  # fmt: skip

    def _lost(self, pbx: str) -> None:
        """``pbx``'s lease is another's now: follow it as a standby."""
        if self.held.pop(pbx, None) is None:
            return
        port = self.ports.get(pbx)
        if port is not None:
            port.demote()
        log.error("cluster: %s lost the lease of %s; following it as a standby", self.name, pbx)

    def _expire_locally(self) -> None:
        """The database cannot be reached: past the lease, by this host's
        clock, a standby may own the PBXs, so this instance stops publishing
        as their owner.  Its writer's queued rows stay: the fence decides
        when the database is back (ours if no one took over)."""
        if time.monotonic() - self._renewed < self.leases.seconds:
            return
        for pbx in list(self.held):
            port = self.ports.get(pbx)
            if port is not None:
                port.demote()
            self.held.pop(pbx)
        log.error("cluster: no lease renewed for %.0f s: %s owns nothing until the database "
                  "answers", time.monotonic() - self._renewed, self.name)  # fmt: skip
