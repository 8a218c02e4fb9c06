"""schemathesis against the live console's own OpenAPI document: no 500 on
any generated request, and every response (200, 400, 401, 403, 404, 422)
matches its documented schema, status and content type — as operations,
as ``it`` (refused calls) and as a chief (their unit only)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxwatch.settings import Settings
from tests.web.served import Served, as_group, header_web, serve

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")  # fmt: skip


@pytest.fixture(scope="module")
def console(replayed: tuple[Settings, Path]) -> Iterator[Served]:
    with serve(*replayed, web=header_web(["127.0.0.1"])) as s:
        yield s


@pytest.mark.parametrize(("group", "phases", "examples"), [
    ("ops", "examples,coverage,fuzzing", 30),  # every documented edge, then random requests
    ("it", "fuzzing", 10),
    ("chief-soc", "fuzzing", 10),
])  # fmt: skip
def test_no_server_error_and_every_response_as_documented(
    console: Served, tmp_path: Path, group: str, phases: str, examples: int
) -> None:
    headers = [arg for k, v in as_group(group).items() for arg in ("-H", f"{k}: {v}")]
    cmd = [sys.executable, "-m", "schemathesis.cli", "run",
           f"{console.base}/api/v1/openapi.json", "--checks", CHECKS,
           "--phases", phases, "--max-examples", str(examples),
           "--workers", "1", "--seed", "20", "--request-timeout", "10",
           "--suppress-health-check", "all", *headers]  # fmt: skip
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert "No issues found" in r.stdout or " passed" in r.stdout, r.stdout[-3000:]
