"""The console's search, timeline and audit log on PostgreSQL (a real
server the test starts; migrated with ``pbxwatch db upgrade``, filled with
``pbxwatch replay``)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pbxwatch.settings import load_settings
from tests import pg
from tests.conftest import FIXTURES
from tests.services import pbxwatch
from tests.web.served import KNOWN_E164, as_group, header_web, lab_config, serve


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if not pg.available():
        pytest.fail("PostgreSQL binaries missing: run scripts/test.sh (it installs them)")
    with pg.postgres_server() as url:
        yield url


def test_search_timeline_and_audit_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    config = lab_config(tmp_path, storage={"url": pg_url})
    for cmd in (["db", "upgrade", "--config", str(config)],
                ["replay", str(FIXTURES / "unanswered_to_voicemail_not_forwarded.ami"),
                 "--config", str(config)]):  # fmt: skip
        subprocess.run(pbxwatch(*cmd), check=True, capture_output=True, timeout=120)
    settings = load_settings(config)
    recordings = ("unanswered_to_voicemail_not_forwarded.ami",)
    with serve(settings, pg_url, web=header_web(["127.0.0.1"]), recordings=recordings) as s:
        ops = as_group("ops")
        found = httpx.get(s.base + "/api/v1/calls", params={"caller": "0702345678"},
                          headers=ops).json()  # fmt: skip
        assert found["total"] == 1
        call = found["calls"][0]
        assert call["caller_e164"] == KNOWN_E164
        detail = httpx.get(s.base + f"/api/v1/calls/{call['call_id']}", headers=ops).json()
        assert detail["classification"] == "missing_forward"
        masked = httpx.get(s.base + "/api/v1/calls", params={"caller": "+4670*****78"},
                           headers=as_group("chief-soc")).json()  # fmt: skip
        assert [c["call_id"] for c in masked["calls"]] == [call["call_id"]]
        audit = httpx.get(s.base + "/api/v1/audit", headers=ops).json()
        assert {e["what"] for e in audit["entries"]} == {"api calls", f"call {call['call_id']}"}
        assert {e["unit"] for e in audit["entries"]} == {"socialtjanst"}
