from __future__ import annotations

from pathlib import Path

import httpx

from pbxwatch.settings import Settings
from tests.web.served import serve


def test_pages(replayed: tuple[Settings, Path]) -> None:
    settings, db = replayed
    with serve(settings, db) as s:
        for path in (
            "/",
            "/calls",
            "/incidents",
            "/audit",
            "/api/v1/queues",
            "/api/v1/health",
            "/api/v1/calls",
            "/api/v1/incidents",
            "/api/v1/openapi.json",
        ):
            r = httpx.get(s.base + path)
            print(path, r.status_code, r.text[:300])
            assert r.status_code == 200, r.text
