"""A throw-away PostgreSQL server for the tests: Debian's initdb/pg_ctl in a
temp dir on a free loopback port (run as the ``postgres`` user when the
tests run as root, since PostgreSQL refuses root)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.services import free_port


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def available() -> bool:
    return _bin("initdb") is not None and _bin("pg_ctl") is not None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yield an asyncpg SQLAlchemy URL of an empty database."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")
    tmp = Path(tempfile.mkdtemp(prefix="pbxwatch-pg-"))
    data, sock = tmp / "data", tmp / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()

    def run(*cmd: str) -> None:
        subprocess.run(_as_owner(list(cmd)), check=True, capture_output=True)

    run(initdb, "-D", str(data), "-U", "pbxwatch", "--auth=trust", "-E", "UTF8",
        "--locale=C.UTF-8")  # fmt: skip
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(pg_ctl, "-D", str(data), "-o", opts, "-l", str(tmp / "log"), "-w", "start")
    try:
        run(_bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "pbxwatch",
            "pbxwatch")  # fmt: skip
        yield f"postgresql+asyncpg://pbxwatch@127.0.0.1:{port}/pbxwatch"
    finally:
        subprocess.run(_as_owner([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                       check=False, capture_output=True)  # fmt: skip
        shutil.rmtree(tmp, ignore_errors=True)
