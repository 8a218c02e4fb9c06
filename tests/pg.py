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


class PostgresServer:
    """One server in its own temp dir; ``stop``/``start`` it at will (the
    store outage test takes it away mid-replay)."""

    def __init__(self) -> None:
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")
        self.pg_ctl = pg_ctl
        self.tmp = Path(tempfile.mkdtemp(prefix="pbxwatch-pg-"))
        self.data, sock = self.tmp / "data", self.tmp / "sock"
        sock.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.tmp, "postgres")
            shutil.chown(sock, "postgres")
        self.port = free_port()
        self._opts = f"-p {self.port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run(initdb, "-D", str(self.data), "-U", "pbxwatch", "--auth=trust", "-E", "UTF8",
             "--locale=C.UTF-8")  # fmt: skip
        self.start()
        _run(_bin("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U",
             "pbxwatch", "pbxwatch")  # fmt: skip
        self.url = f"postgresql+asyncpg://pbxwatch@127.0.0.1:{self.port}/pbxwatch"

    def start(self) -> None:
        _run(self.pg_ctl, "-D", str(self.data), "-o", self._opts, "-l", str(self.tmp / "log"),
             "-w", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        _run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        subprocess.run(_as_owner([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"]),
                       check=False, capture_output=True)  # fmt: skip
        shutil.rmtree(self.tmp, ignore_errors=True)


def _run(*cmd: str) -> None:
    subprocess.run(_as_owner(list(cmd)), check=True, capture_output=True)


#: the data directory of each running server, by its URL
DATA_DIRS: dict[str, Path] = {}


def data_dir_of(url: str) -> Path:
    """The data directory of the server a URL (any of its databases) is on."""
    base = url.rsplit("/", 1)[0]
    return next(d for u, d in DATA_DIRS.items() if u.rsplit("/", 1)[0] == base)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yield an asyncpg SQLAlchemy URL of an empty database."""
    server = PostgresServer()
    DATA_DIRS[server.url] = server.data
    try:
        yield server.url
    finally:
        server.remove()
