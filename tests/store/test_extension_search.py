"""The console's search by extension (rang, target or answered) off the
indexes of migration 0011 against a plain reference query, on SQLite and on
PostgreSQL: the same pages and the same capped counts, on generated calls
made to be awkward (rings of one extension twice in a call, calls starting
at the same second, rings starting after a time range's end); and the rings
the writer stores carry their call's start."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.settings import Settings
from pbxwatch.store import models
from pbxwatch.web import search
from pbxwatch.web.search import CallFilter, search_calls
from tests.conftest import RECORDINGS
from tests.store.test_store import _replay

EXTENSIONS = [str(1000 + i) for i in range(6)]
T0 = 1_790_000_000.0


def _year(n: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``n`` calls among a few extensions, and their rings."""
    rng = random.Random(seed)
    calls: list[dict[str, Any]] = []
    rings: list[dict[str, Any]] = []
    t = T0
    for i in range(n):
        t += rng.choice([0.0, 0.0, 1.0, 30.0, 600.0])  # ties: ordered by id then
        cid = f"{t:.0f}.{rng.randrange(10_000):04d}.{i}"
        target = rng.choice([*EXTENSIONS, "grupp", "+46701234567"])
        answered = rng.choice([None, *EXTENSIONS, "+46701234567"])
        calls.append({
            "call_id": cid, "started_at": t, "ended_at": t + 60, "direction": "inbound",
            "caller": "0701234567", "caller_e164": "+46701234567", "dialled": "0855001000",
            "target_kind": "extension", "target": target, "unit": "u", "outcome": "answered",
            "answered_by": answered, "answer_seconds": None, "rings_before_answer": None,
            "voicemail_mailbox": None, "diverted": False, "overflowed_to_contact_centre": False,
            "transferred_to": None, "abandoned_where": None, "short_abandon": False,
            "queues": [], "complete": True, "across_gap": False, "purged": False,
        })  # fmt: skip
        for seq in range(rng.choice([0, 1, 2, 3, 5])):
            rings.append({
                "call_id": cid, "seq": seq, "extension": rng.choice(EXTENSIONS[:3]),
                "unit": None, "queue": None, "started_at": t + rng.choice([0.0, 5.0, 900.0]),
                "call_started_at": t, "seconds": 5.0, "rings": 1, "result": "no_answer",
            })  # fmt: skip
    return calls, rings


async def _reference(store: AsyncEngine, f: CallFilter) -> list[str]:
    """Every match, newest first: the filter as written, no index in mind."""
    c, r, ext = models.Call, models.Ring, f.extension
    rang = select(r.call_id).where(r.extension == ext)
    q = select(c.call_id)
    if f.start is not None:
        q, rang = q.where(c.started_at >= f.start), rang.where(r.started_at >= f.start)
    if f.end is not None:
        q, rang = q.where(c.started_at < f.end), rang.where(r.started_at < f.end)
    q = q.where(or_(c.target == ext, c.answered_by == ext, c.call_id.in_(rang)))
    async with store.connect() as conn:
        return list(await conn.scalars(q.order_by(c.started_at.desc(), c.call_id)))


@pytest.fixture
async def filled(store: AsyncEngine) -> AsyncEngine:
    calls, rings = _year(1_500)
    async with store.begin() as conn:
        await conn.execute(insert(models.Call), calls)
        await conn.execute(insert(models.Ring), rings)
    return store


def _filters() -> list[CallFilter]:
    out = [CallFilter(extension=e) for e in [*EXTENSIONS, "grupp", "9999"]]
    span = 1_500 * 126.2  # about the generated stretch
    for k in range(8):
        lo = T0 + span * k / 8
        out += [CallFilter(lo, lo + span / 5, extension=EXTENSIONS[k % 4]),
                CallFilter(start=lo, extension=EXTENSIONS[k % 3]),
                CallFilter(end=lo, extension=EXTENSIONS[(k + 1) % 3])]  # fmt: skip
    return out


@pytest.mark.parametrize("cap", [10_000, 40])
async def test_extension_pages_and_counts_match_the_reference(
    filled: AsyncEngine, monkeypatch: pytest.MonkeyPatch, cap: int
) -> None:
    monkeypatch.setattr(search, "COUNT_CAP", cap)
    for f in _filters():
        expected = await _reference(filled, f)
        for limit, offset in ((50, 0), (7, 0), (7, 13), (200, 100), (50, len(expected))):
            rows, total, capped = await search_calls(
                filled, f, None, clear=True, limit=limit, offset=offset
            )
            assert [row.call_id for row in rows] == expected[offset : offset + limit], (f, offset)
            assert (total, capped) == (min(len(expected), cap), len(expected) > cap), f
            # the general path (a unit's scope) agrees as well
            scoped = await search_calls(filled, f, frozenset({"u"}), clear=True,
                                        limit=limit, offset=offset)  # fmt: skip
            assert [row.call_id for row in scoped[0]] == [row.call_id for row in rows]
            assert scoped[1:] == (total, capped)


async def test_extension_search_reads_whole_rows(filled: AsyncEngine) -> None:
    """The page is the calls' rows, as every other search gives them."""
    rows, _, _ = await search_calls(filled, CallFilter(extension="1000"), None, clear=True,
                                    limit=5, offset=0)  # fmt: skip
    others, _, _ = await search_calls(filled, CallFilter(extension="1000"), frozenset({"u"}),
                                      clear=True, limit=5, offset=0)  # fmt: skip
    assert [tuple(r) for r in rows] == [tuple(r) for r in others]
    assert rows
    assert rows[0].caller_e164 == "+46701234567"
    assert isinstance(rows[0].queues, list)


async def test_stored_rings_carry_their_calls_start(
    lab_settings: Settings, store: AsyncEngine, tmp_path: Path
) -> None:
    recording = next(r for r in RECORDINGS if r.stem == "mixed_load")
    await _replay(lab_settings, store, recording, tmp_path)
    c, r = models.Call, models.Ring
    async with store.connect() as conn:
        pairs = (await conn.execute(select(r.call_started_at, c.started_at).join(
            c, c.call_id == r.call_id))).all()  # fmt: skip
        rings = len((await conn.execute(select(r.call_id))).all())
    assert len(pairs) == rings > 100
    assert all(a == b for a, b in pairs)


def test_generated_calls_are_awkward() -> None:
    """The data set has what could tell the two queries apart."""
    calls, rings = _year(1_500)
    starts = [c["started_at"] for c in calls]
    assert len(set(starts)) < len(starts)  # ties
    seen = [(r["call_id"], r["extension"]) for r in rings]
    assert len(set(seen)) < len(seen)  # an extension rung twice in one call
    assert any(r["started_at"] - r["call_started_at"] > 600 for r in rings)
    assert json.dumps(calls[0])  # plain values


async def test_rings_spilled_before_0011_get_their_calls_start(
    store: AsyncEngine, tmp_path: Path
) -> None:
    """A spill file an older pbxwatch left (rings without ``call_started_at``)
    is still written: each ring takes the start of the call before it."""
    from pbxwatch.store.writer import StoreWriter

    calls, rings = _year(40)
    spill = tmp_path / "spill.jsonl"
    with spill.open("w", encoding="utf-8") as out:
        for call in calls:
            out.write(json.dumps(["calls", call]) + "\n")
            for ring in rings:
                if ring["call_id"] == call["call_id"]:
                    old = {k: v for k, v in ring.items() if k != "call_started_at"}
                    out.write(json.dumps(["rings", old]) + "\n")
    writer = StoreWriter(store, capacity=7, max_batch=5, max_delay=0.01, spill_path=spill)
    writer.start()
    await writer.close(timeout=30)
    assert not spill.exists()
    r = models.Ring
    async with store.connect() as conn:
        stored = (await conn.execute(select(r.call_id, r.seq, r.call_started_at))).all()
    assert sorted(stored) == sorted((x["call_id"], x["seq"], x["call_started_at"]) for x in rings)
    assert len(stored) > 20


async def test_migration_0011_fills_the_rings_already_stored(db_url: str) -> None:
    """Rings stored before 0011 get their call's start (a ring without its
    call, its own); down to 0010 and up again leaves the same."""
    from alembic import command

    from pbxwatch.store.db import _alembic_config, make_engine

    cfg = _alembic_config()

    def to(revision: str, down: bool = False) -> Any:
        def run(conn: Any) -> None:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)

        return run

    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(to("0010"))
        calls, rings = _year(300)
        orphan = {**rings[0], "call_id": "gone", "started_at": 5.0}
        before = [{k: v for k, v in x.items() if k != "call_started_at"} for x in [*rings, orphan]]
        async with engine.begin() as conn:
            await conn.execute(insert(models.Call), calls)
            await conn.execute(insert(models.Ring.__table__), before)
        for _ in range(2):
            async with engine.begin() as conn:
                await conn.run_sync(to("head"))
            r = models.Ring
            async with engine.connect() as conn:
                got = await conn.execute(select(r.call_id, r.seq, r.call_started_at))
                stored = set(got.all())
            expected = {(x["call_id"], x["seq"], x["call_started_at"]) for x in rings}
            assert stored == expected | {("gone", orphan["seq"], 5.0)}
            async with engine.begin() as conn:
                await conn.run_sync(to("0010", down=True))
    finally:
        await engine.dispose()
