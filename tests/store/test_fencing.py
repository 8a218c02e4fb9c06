"""Fencing (issue #22): two instances share one database; a PBX's lease
names its owner and an epoch.  An owner that was paused and resumes after
a standby took the lapsed lease over writes nothing of that PBX: every
batch it tries is left without its rows, in the same transaction as the
lease check, so it cannot depend on either instance's clock."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.core.diversion import DiversionInterval
from pbxwatch.store import models
from pbxwatch.store.leases import Lease, Leases
from pbxwatch.store.writer import StoreWriter


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _interval(i: int) -> DiversionInterval:
    return DiversionInterval("1001", "socialtjanst", "presence", "away", "", "Lunch",
                             1000.0 + i, 1001.0 + i)  # fmt: skip


async def _starts(store: AsyncEngine) -> list[float]:
    t = models.DiversionInterval
    async with store.connect() as conn:
        return sorted(await conn.scalars(select(t.start)))


async def test_a_paused_owner_that_lost_its_lease_writes_nothing(store: AsyncEngine) -> None:
    clock = Clock()
    a = Leases(store, "instance-a", seconds=10.0, clock=clock)
    b = Leases(store, "instance-b", seconds=10.0, clock=clock)
    lease_a = await a.acquire("main")
    assert lease_a == Lease("main", "instance-a", 1)
    assert await b.acquire("main") is None  # a's is current: b stands by

    owner = StoreWriter(store)
    owner.hold(lease_a)
    for i in range(3):
        owner.submit(_interval(i))
    await owner.flush()
    assert await _starts(store) == [1000.0, 1001.0, 1002.0]
    assert await a.renew(lease_a)

    # a is paused (a frozen host): no renewal; its lease lapses, b takes it over
    clock.now += 11.0
    lease_b = await b.acquire("main")
    assert lease_b == Lease("main", "instance-b", 2)
    standby = StoreWriter(store)
    standby.hold(lease_b)

    # a resumes, not knowing: every write it tries is refused
    for i in range(3, 6):
        owner.submit(_interval(i))
    await owner.flush()
    assert owner.backlog == 0  # nothing kept to retry: the rows are b's to write
    assert owner.stats.fenced_rows == 3
    assert "main" in owner.lost
    owner.submit(_interval(6))
    await owner.flush()
    assert owner.stats.fenced_rows == 4
    assert not await a.renew(lease_a)  # and its lease is not its own any more
    assert await a.acquire("main") is None  # b's is current

    for i in range(3, 6):  # b saw the same events: it writes them, once
        standby.submit(_interval(i))
    await standby.flush()
    assert await _starts(store) == [1000.0 + i for i in range(6)]
    assert standby.stats.fenced_rows == 0

    # b stops gracefully: a may take the PBX back at once, with the next epoch
    await b.release(lease_b)
    again = await a.acquire("main")
    assert again == Lease("main", "instance-a", 3)
    owner.hold(again)
    owner.submit(_interval(7))
    await owner.flush()
    assert 1007.0 in await _starts(store)
    standby.submit(_interval(8))
    await standby.flush()
    assert 1008.0 not in await _starts(store)  # now b is the fenced one


async def test_a_writer_for_many_pbxs_loses_only_the_lost_pbx_s_rows(
    store: AsyncEngine,
) -> None:
    clock = Clock()
    a = Leases(store, "a", clock=clock)
    b = Leases(store, "b", clock=clock)
    writer = StoreWriter(store)
    for pbx in ("main", "north"):
        lease = await a.acquire(pbx)
        assert lease is not None
        writer.hold(lease)
    clock.now += 11.0
    assert await a.renew(writer.leases["main"]) is False  # lapsed
    assert await b.acquire("north") is not None  # north taken over; main is free but still a's
    writer.submit(_interval(0), pbx="main")
    writer.submit(_interval(1), pbx="north")
    await writer.flush()
    t = models.DiversionInterval
    async with store.connect() as conn:
        rows = (await conn.execute(select(t.pbx, t.start))).all()
    assert [tuple(r) for r in rows] == [("main", 1000.0)]
    assert writer.lost == {"north"}
