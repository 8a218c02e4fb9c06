"""The hot standby's rounds (issue #22) on a real database: two instances
share four PBXs evenly, a dead one's PBXs move to the other once its lease
has lapsed, and a standby's port hands over only what the old owner had
not committed."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.cluster import SITE, Cluster
from pbxwatch.core.diversion import DiversionInterval
from pbxwatch.settings import ClusterSettings, Settings
from pbxwatch.store.port import WriterPort
from pbxwatch.store.writer import StoreWriter

PBXS = ["p1", "p2", "p3", "p4"]


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _interval(i: int) -> DiversionInterval:
    return DiversionInterval("1001", "socialtjanst", "presence", "away", "", "Lunch",
                             1000.0 + i, 1001.0 + i)  # fmt: skip


def _member(settings: Settings, store: AsyncEngine, name: str, clock: Clock,
            ready: list[bool] | None = None) -> Cluster:  # fmt: skip
    s = settings.model_copy(update={"cluster": ClusterSettings(instance=name, lease_seconds=6)})
    writer = StoreWriter(store)
    flag = ready if ready is not None else [True]
    cluster = Cluster(s, store, writer, PBXS, ready=lambda: flag[0])
    cluster.leases.clock = clock
    for pbx in PBXS:
        cluster.ports[pbx] = WriterPort(writer, pbx, f"ami:{pbx}", owner=False)
    return cluster


async def test_two_instances_share_the_pbxs_and_a_dead_ones_move(
    store: AsyncEngine, lab_settings: Settings
) -> None:
    clock = Clock()
    a = _member(lab_settings, store, "a", clock)
    await a.round_once()  # alone: everything, and the site's jobs
    assert sorted(a.held) == sorted([SITE, *PBXS])
    assert all(a.ports[p].owner for p in PBXS)

    b = _member(lab_settings, store, "b", clock)
    await b.round_once()  # two beat now; a still holds every lease
    assert (b.instances, b.held) == (2, {})
    await a.round_once()  # a gives back past its share ...
    assert sorted(a.held) == [SITE, "p1", "p2"]
    assert not a.ports["p3"].owner
    assert not a.ports["p4"].owner
    await b.round_once()  # ... and b takes them
    assert sorted(b.held) == ["p3", "p4"]
    assert b.takeovers == {"p3": 1, "p4": 1}
    assert b.last_failover_seconds == 0.0  # given back, not failed over

    # a dies (no more rounds); b renews at its pace and, once a's lease
    # and heartbeat have lapsed, owns everything
    clock.now += 4.0
    await b.round_once()
    assert sorted(b.held) == ["p3", "p4"]
    clock.now += 4.0
    await b.round_once()
    assert sorted(b.held) == sorted([SITE, *PBXS])
    assert b.instances == 1
    assert b.last_failover_seconds == 2.0  # a's lease had lapsed 2 s before
    assert b.takeovers["p1"] == 1


async def test_a_joiner_gets_nothing_given_back_until_it_is_ready(
    store: AsyncEngine, lab_settings: Settings
) -> None:
    """Until it has seen every call in progress from its start, a joiner
    would write worse rows than the owner: it is given no PBX, but it takes
    over what lapses."""
    clock = Clock()
    a = _member(lab_settings, store, "a", clock)
    await a.round_once()
    ready = [False]
    b = _member(lab_settings, store, "b", clock, ready)
    await b.round_once()
    await a.round_once()
    assert a.instances == 1  # b does not count for a yet
    assert sorted(a.held) == sorted([SITE, *PBXS])
    ready[0] = True
    await b.round_once()
    await a.round_once()
    assert (a.instances, sorted(a.held)) == (2, [SITE, "p1", "p2"])
    await b.round_once()
    assert sorted(b.held) == ["p3", "p4"]

    c = _member(lab_settings, store, "c", clock, [False])  # joins, then a and b die
    await c.round_once()
    clock.now += 8.0
    await c.round_once()
    assert sorted(c.held) == sorted([SITE, *PBXS])  # not ready, but nobody else is left


async def test_a_stopped_instance_gives_every_lease_back_at_once(
    store: AsyncEngine, lab_settings: Settings
) -> None:
    clock = Clock()
    a = _member(lab_settings, store, "a", clock)
    await a.round_once()
    b = _member(lab_settings, store, "b", clock)
    await b.round_once()
    await a.stop()  # SIGTERM: the leases and the heartbeat given back
    assert a.held == {}
    await b.round_once()  # at its next round, not a lease later
    assert sorted(b.held) == sorted([SITE, *PBXS])
    assert b.instances == 1


async def test_a_standby_port_hands_over_what_the_owner_had_not_committed(
    store: AsyncEngine,
) -> None:
    writer = StoreWriter(store)
    pbx_time = Clock(1000.0)
    host = Clock(0.0)
    port = WriterPort(writer, "p1", "ami:p1", owner=False, now=pbx_time, keep_seconds=60.0,
                      monotonic=host)  # fmt: skip
    for i in range(6):
        pbx_time.now, host.now = 1000.0 + i, 20.0 * i  # a record every 20 host seconds
        port.submit(_interval(i))
        port.note_position(i, pbx_time.now)  # a standby's position would hide a gap
    assert writer.backlog == 0
    assert [at for _, at, _ in port.kept] == [1002.0, 1003.0, 1004.0, 1005.0]  # the last 60 s

    assert port.promote(committed_until=1004.0) == 2  # from the owner's last committed event
    assert port.owner
    assert not port.kept
    assert writer.backlog == 2
    port.submit(_interval(9))  # an owner's records go straight to the writer
    assert writer.backlog == 3
