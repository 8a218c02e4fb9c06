"""Leases of PBXs, for a hot standby: which instance owns a PBX, and the
epoch that fences an owner's writes.

Two or more pbxwatch instances share one database.  Each PBX's row in
``pbx_leases`` names its owner (``holder``) and an ``epoch``, raised at
every change of owner.  The owner renews the lease well inside
``seconds``; a standby takes a lapsed lease over, with the next epoch.

Split brain is prevented by the epoch, not by timing: every batch the
store writer commits first reads the lease rows of the PBXs in it, in the
same transaction (``FOR SHARE`` on PostgreSQL: a takeover waits for that
batch to commit), and leaves out the rows of every PBX whose lease is no
longer this holder's at this epoch.  An owner that was paused (a frozen
host, a long collection, its database connection cut) and resumes after
a standby took over writes nothing of that PBX, whatever its clock says.

Each instance also beats a heartbeat row of its own (``@i:`` and a hash
of its holder; epoch 1 once it is ready to own, else 0) at the same pace,
so that the others know how many share the PBXs (``pbxwatch.cluster``
balances by it).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pbxwatch.store import models

T = models.PbxLease


@dataclass(frozen=True)
class Lease:
    """A PBX held by ``holder`` at ``epoch``."""

    pbx: str
    holder: str
    epoch: int
    #: taken over from this holder, whose lease had lapsed this long before
    previous: str | None = field(default=None, compare=False)
    lapsed_seconds: float = field(default=0.0, compare=False)


#: the prefix of the heartbeat rows (a PBX id cannot start with "@")
HEARTBEAT = "@i:"


class Leases:
    """Take, renew and give back leases as ``holder`` (an instance's id,
    unique per process: a restarted instance is a new holder)."""

    def __init__(self, engine: AsyncEngine, holder: str, seconds: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.engine = engine
        self.holder = holder
        self.seconds = seconds
        self.clock = clock

    async def acquire(self, pbx: str) -> Lease | None:
        """The lease of ``pbx`` if it is free, lapsed or already ours; None
        while another holder's is current.  A lapsed lease is taken with the
        next epoch, so whoever held it is fenced from then on."""
        now = self.clock()
        try:
            async with self.engine.begin() as conn:
                row = (await conn.execute(select(T).where(T.pbx == pbx).with_for_update())).first()
                if row is None:
                    await conn.execute(insert(T).values(pbx=pbx, holder=self.holder, epoch=1,
                                                        expires_at=now + self.seconds))  # fmt: skip
                    return Lease(pbx, self.holder, 1)
                if row.expires_at >= now and row.holder != self.holder:
                    return None
                epoch = row.epoch if row.expires_at >= now else row.epoch + 1
                values = {"holder": self.holder, "epoch": epoch, "expires_at": now + self.seconds}
                same = update(T).where(T.pbx == pbx, T.epoch == row.epoch)
                taken = await conn.execute(same.values(**values))
                if taken.rowcount != 1:
                    return None
                if row.holder == self.holder:
                    return Lease(pbx, self.holder, epoch)
                # a lease given back (release) lapsed at 0: no failover time to tell
                lapsed = now - row.expires_at if row.expires_at > 0 else 0.0
                return Lease(pbx, self.holder, epoch, row.holder, lapsed)
        except IntegrityError:  # another instance inserted it first
            return None

    async def renew(self, lease: Lease) -> bool:
        """Whether ``lease`` is still ours and now runs ``seconds`` more.  A
        lapsed one is not renewed: it is taken again (``acquire``), with a
        new epoch if anyone could have taken it meanwhile."""
        return not await self.renew_all([lease])

    async def takeable(self, pbxs: Iterable[str]) -> list[str]:
        """Of ``pbxs``, those ``acquire`` may get now (free, lapsed or ours),
        in their order, read in one query: a standby looks at hundreds of
        leases every round without locking one."""
        wanted = list(pbxs)
        if not wanted:
            return []
        now = self.clock()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(T.pbx, T.holder, T.expires_at)
                                       .where(T.pbx.in_(wanted)))).all()  # fmt: skip
        held = {r.pbx for r in rows if r.expires_at >= now and r.holder != self.holder}
        return [pbx for pbx in wanted if pbx not in held]

    async def renew_all(self, leases: Iterable[Lease]) -> set[str]:
        """Renew ``leases`` in one statement; the PBXs whose lease was not
        ours at its epoch any more, or had lapsed (lost).  One round trip
        whatever the count: an instance holding hundreds renews them well
        inside a lease, which one transaction each did not."""
        held = _held_by(self.holder, leases)
        if not held:
            return set()
        now = self.clock()
        async with self.engine.begin() as conn:
            renewed = await conn.execute(
                update(T).where(T.holder == self.holder, tuple_(T.pbx, T.epoch).in_(held),
                                T.expires_at >= now)
                .values(expires_at=now + self.seconds).returning(T.pbx))  # fmt: skip
            kept = set(renewed.scalars())
        return {pbx for pbx, _ in held} - kept

    async def release(self, lease: Lease) -> None:
        """Give ``lease`` back (a graceful stop): a standby may take it at once."""
        await self.release_all([lease])

    async def release_all(self, leases: Iterable[Lease]) -> None:
        """Give every one of ``leases`` back in one statement (a graceful
        stop of an instance holding hundreds)."""
        held = _held_by(self.holder, leases)
        if not held:
            return
        async with self.engine.begin() as conn:
            mine = tuple_(T.pbx, T.epoch).in_(held)
            await conn.execute(update(T).where(T.holder == self.holder, mine)
                               .values(expires_at=0.0))  # fmt: skip

    @property
    def heartbeat(self) -> str:
        """This holder's heartbeat row (within the 32 characters of a PBX id)."""
        return HEARTBEAT + hashlib.sha256(self.holder.encode()).hexdigest()[:24]

    async def beat(self, ready: bool = True) -> int:
        """Renew this holder's heartbeat; how many holders share the PBXs
        now: this one and every other that beats ``ready``.

        An instance that has just joined is not ready until it has seen
        every call in progress from its start (its epoch is 0 until then,
        1 after): the others give it no PBX before, so a call that was up
        when it logged in is written by the owner that saw all of it.  It
        still counts itself, so it takes over what lapses."""
        now = self.clock()
        async with self.engine.begin() as conn:
            mine = T.pbx == self.heartbeat
            values = {"expires_at": now + self.seconds, "epoch": int(ready)}
            renewed = await conn.execute(update(T).where(mine).values(**values))
            if renewed.rowcount == 0:
                await conn.execute(insert(T).values(pbx=self.heartbeat, holder=self.holder,
                                                    **values))  # fmt: skip
            others = select(func.count()).where(
                T.pbx.startswith(HEARTBEAT), T.pbx != self.heartbeat, T.expires_at >= now,
                T.epoch >= 1)  # fmt: skip
            return 1 + int(await conn.scalar(others) or 0)

    async def stop_beating(self) -> None:
        """A graceful stop: the others count one instance less at once."""
        async with self.engine.begin() as conn:
            await conn.execute(update(T).where(T.pbx == self.heartbeat).values(expires_at=0.0))


def _held_by(holder: str, leases: Iterable[Lease]) -> list[tuple[str, int]]:
    """(PBX, epoch) of those of ``leases`` that are ``holder``'s."""
    return [(lease.pbx, lease.epoch) for lease in leases if lease.holder == holder]


async def fenced(conn: AsyncConnection, leases: Iterable[Lease]) -> set[str]:
    """The PBXs of ``leases`` no longer held at their epoch, read in the
    writing transaction ``conn`` (rows locked for share on PostgreSQL, so a
    takeover waits for this transaction)."""
    mine = {lease.pbx: lease for lease in leases}
    if not mine:
        return set()
    query = select(T.pbx, T.holder, T.epoch).where(T.pbx.in_(sorted(mine)))
    rows = (await conn.execute(query.with_for_update(read=True))).all()
    held = {r.pbx for r in rows if (r.holder, r.epoch) == (mine[r.pbx].holder, mine[r.pbx].epoch)}
    return set(mine) - held
