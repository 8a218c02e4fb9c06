"""Many PBXs in one store: every row says which PBX, ids of a PBX other
than ``main`` are prefixed with its id (Linkedids of two PBXs may be the
same), ``main``'s are as before, and a restart restores each PBX's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_into_store
from pbxwatch.settings import Settings, load_settings
from pbxwatch.stamp import PbxStamp
from pbxwatch.store import models
from pbxwatch.store.db import load_open_callbacks, make_engine
from pbxwatch.store.report import unit_period
from pbxwatch.store.session import restore, writer_for
from tests.conftest import FIXTURES, LAB_CONFIG
from tests.store.conftest import with_store

VOICEMAIL = FIXTURES / "voicemail_callback.ami"


def _two_pbxs(tmp: Path) -> Settings:
    """The lab twice: ``main`` and ``north``, the same directory."""
    cfg = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    ami, inbound = cfg.pop("ami"), cfg.pop("inbound")
    cfg["pbxs"] = [{"id": "main", "ami": ami, "inbound": inbound},
                   {"id": "north", "ami": {**ami, "port": 5039}, "inbound": inbound}]  # fmt: skip
    path = tmp / "c.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return load_settings(path)


async def _replay(view: Settings, store: AsyncEngine, tmp: Path) -> Pipeline:
    pipeline = Pipeline(build_engine(view), stamp=PbxStamp(view.pbx_id))
    unused = with_store(view, "sqlite+aiosqlite:///unused", tmp)  # the writer's spill file
    writer = writer_for(unused, store, view.source_name())
    pipeline.sinks.append(writer.submit)
    await replay_into_store(VOICEMAIL, pipeline, writer)
    return pipeline


async def _rows(store: AsyncEngine, model: Any) -> list[Any]:
    async with store.connect() as conn:
        return list((await conn.execute(select(model))).all())


async def test_the_same_recording_from_two_pbxs_is_two_sets_of_rows(
    store: AsyncEngine, tmp_path: Path
) -> None:
    main_, north = _two_pbxs(tmp_path).pbx_views()
    await _replay(main_, store, tmp_path)
    await _replay(north, store, tmp_path)
    calls = await _rows(store, models.Call)
    by_pbx = {p: {c.call_id for c in calls if c.pbx == p} for p in ("main", "north")}
    assert by_pbx["main"]
    assert {f"north:{i}" for i in by_pbx["main"]} == by_pbx["north"]
    for model in (models.Ring, models.Incident, models.Callback, models.AlertRow,
                  models.StreamPosition):  # fmt: skip
        rows = await _rows(store, model)
        assert {r.pbx for r in rows} <= {"main", "north"}
        key = next(iter(model.__table__.primary_key.columns)).name
        for r in rows:  # north's ids are prefixed, main's are not
            assert str(getattr(r, key)).startswith("north:") == (r.pbx == "north") or (
                model is models.StreamPosition
            )
    positions = {r.source: r.pbx for r in await _rows(store, models.StreamPosition)}
    assert positions == {"ami:127.0.0.1:5038": "main", "pbx:north": "north"}
    # a restart: each PBX gets its own open callbacks back, with the core's ids
    main_open = await load_open_callbacks(store, "main")
    north_open = await load_open_callbacks(store, "north")
    assert main_open
    assert len(north_open) == len(main_open)
    core = build_engine(north)
    assert await restore(store, core, PbxStamp("north")) >= len(north_open)
    assert {cb.callback_id for cb in main_open} <= set(core.callbacks.callbacks)


async def test_migration_0012_makes_every_stored_row_mains(db_url: str) -> None:
    from alembic import command

    from pbxwatch.store.db import _alembic_config

    cfg = _alembic_config()

    def to(revision: str) -> Any:
        def run(conn: Any) -> None:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

        return run

    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(to("0011"))
            await conn.execute(insert(models.StreamPosition.__table__).values(
                source="ami:127.0.0.1:5038", frames=3, event_time=1.0))  # fmt: skip
            await conn.execute(insert(models.ClockStep.__table__).values(
                step_id="s", at=1.0, delta=2.0, mode="step", confirmed_by=3))  # fmt: skip
        async with engine.begin() as conn:
            await conn.run_sync(to("head"))
        assert [r.pbx for r in await _rows(engine, models.StreamPosition)] == ["main"]
        assert [r.pbx for r in await _rows(engine, models.ClockStep)] == ["main"]
    finally:
        await engine.dispose()


def test_replay_json_says_the_pbx(tmp_path: Path, capsys: Any) -> None:
    import json

    from pbxwatch.cli import main

    _two_pbxs(tmp_path)
    cfg = str(tmp_path / "c.yaml")
    lines: dict[str, list[dict[str, Any]]] = {}
    for pbx in ("main", "north"):
        assert main(["replay", str(VOICEMAIL), "--config", cfg, "--json", "--no-store",
                     "--pbx", pbx]) == 0  # fmt: skip
        lines[pbx] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines["main"]
    assert len(lines["main"]) == len(lines["north"])
    for a, b in zip(lines["main"], lines["north"], strict=True):
        assert (a["pbx"], b["pbx"]) == ("main", "north")
        for key in ("call_id", "callback_id", "incident_id", "interval_id"):
            if a.get(key):
                assert b[key] == f"north:{a[key]}"
    assert any(x["type"] == "call" for x in lines["north"])
    assert main(["replay", str(VOICEMAIL), "--config", cfg, "--no-store", "--pbx", "x"]) == 2


def test_every_stamped_id_is_a_field_of_its_record() -> None:
    """``dataclasses.replace`` takes fields only (a property such as a
    diversion interval's id once made a PBX's records fail on the read path)."""
    import dataclasses

    from pbxwatch.stamp import ID_FIELDS

    for kind, names in ID_FIELDS.items():
        assert set(names) <= {f.name for f in dataclasses.fields(kind)}, kind


def test_a_diversion_interval_of_another_pbx_has_that_pbx_s_id() -> None:
    """The interval's id is a field like any record's: the stamp prefixes
    it, and its row and JSON carry the prefixed one (no special case)."""
    from zoneinfo import ZoneInfo

    from pbxwatch.core.diversion import DiversionInterval
    from pbxwatch.stamp import PbxStamp
    from pbxwatch.store.rows import rows_of

    core = DiversionInterval("1001", "socialtjanst", "presence", "away", "", "Lunch",
                             1_795_500_000.0, 1_795_503_600.0)  # fmt: skip
    assert core.interval_id == "diversion:1001:presence:1795500000.000"
    stamped = PbxStamp("north").record(core)
    assert isinstance(stamped, DiversionInterval)
    assert stamped.interval_id == f"north:{core.interval_id}"
    [(table, row)] = rows_of(stamped, None, "north")
    assert (table, row["interval_id"], row["pbx"]) == ("diversion_intervals",
                                                       stamped.interval_id, "north")  # fmt: skip
    assert stamped.to_json(ZoneInfo("Europe/Stockholm"))["interval_id"] == stamped.interval_id
    assert PbxStamp().record(core) is core  # main's: unchanged, no copy


async def test_the_report_adds_pbxs_up_per_unit(store: AsyncEngine, tmp_path: Path) -> None:
    """A unit served by two PBXs: its report counts the calls, missed
    forwards and callbacks of both (the same recording twice: twice the
    counts, the same shares)."""
    settings = _two_pbxs(tmp_path)
    main_, north = settings.pbx_views()
    await _replay(main_, store, tmp_path)
    start, end = 0.0, 4e9
    once = {
        u: await unit_period(store, settings, u, start, end, end) for u in settings.directory.units
    }
    await _replay(north, store, tmp_path)
    twice = {
        u: await unit_period(store, settings, u, start, end, end) for u in settings.directory.units
    }
    assert any(f.offered for f in once.values())
    for unit, one in once.items():
        two = twice[unit]
        assert (two.offered, two.answered, two.missing_forwards, two.voicemail_messages) == (
            2 * one.offered, 2 * one.answered, 2 * one.missing_forwards,
            2 * one.voicemail_messages), unit  # fmt: skip
        assert {k: 2 * n for k, n in one.callbacks.items()} == two.callbacks, unit
        assert two.missing_forward_share == one.missing_forward_share, unit
