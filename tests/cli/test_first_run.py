"""A new user's first minutes: ``pip install`` into a fresh venv, then
``pbxwatch demo`` from an empty folder, with no configuration at all.

The package is built from a copy of the checkout's files (what a clean
clone has), so a configuration the demo needs but the wheel does not ship
fails here, as it would for the user."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.services import free_port

pytestmark = pytest.mark.slow

#: the closing line of the demo: the command that reports on its data
REPORT_LINE = r"^  (PBXWATCH_STORAGE__\w+=\S+ pbxwatch report .*)$"


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fresh")
    src = base / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split()  # fmt: skip
    for name in files:
        origin = ROOT / name
        if not origin.exists() or origin.is_dir():
            continue  # deleted in the working tree, or a submodule
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target, follow_symlinks=False)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                    "-c", str(src / "constraints.txt"), str(src)], check=True)  # fmt: skip
    return venv


def _calls_on(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("pbxwatch_calls_total{"))  # fmt: skip


def test_demo_from_an_empty_folder_finishes_a_call_within_10_s(
    fresh_venv: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    port = free_port()
    started = time.monotonic()
    no_locale = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG")}
    proc = subprocess.Popen(
        [str(fresh_venv / "bin" / "pbxwatch"), "demo", "--duration", "20",
         "--metrics-listen", f"127.0.0.1:{port}"],
        cwd=empty, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=no_locale,
    )  # fmt: skip
    first_call = None
    while time.monotonic() - started < 12 and proc.poll() is None:
        if _calls_on(port) > 0:
            first_call = time.monotonic() - started
            break
        time.sleep(0.25)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert first_call is not None, err[-2000:]
    assert first_call < 10.0
    closing = re.search(r"demo stopped: \d+ events simulated, [1-9]\d* calls finished", err)
    assert closing, err[-2000:]
    assert "samtal klara" in out  # no locale: the summary speaks Swedish first
    assert re.search(r"demon stoppad: \d+ händelser simulerade, [1-9]\d* samtal klara", out)
    match = re.search(REPORT_LINE, out, re.M)
    assert match, out
    path = f"{fresh_venv / 'bin'}:/usr/bin:/bin"
    report = subprocess.run(match.group(1), shell=True, check=False, cwd=empty,
                            capture_output=True, text=True, env={"PATH": path})  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert "reading SQLite" in report.stderr
    assert "demo-data" in report.stderr
    assert "Offered calls" in report.stdout
    assert sorted(p.name for p in empty.iterdir()) == ["demo-data"]  # nothing else made


@pytest.mark.parametrize("config", ["pbxwatch.example.yaml", "compose.yaml"])
def test_demo_runs_on_every_documented_config(
    config: str, fresh_venv: Path, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [str(fresh_venv / "bin" / "pbxwatch"), "demo", "--config", str(ROOT / "config" / config),
         "--duration", "8", "--metrics-listen", f"127.0.0.1:{free_port()}", "--lang", "en"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    finished = re.search(r"demo stopped: (\d+) events simulated, (\d+) calls finished", proc.stderr)
    assert finished, proc.stderr[-2000:]
    assert int(finished.group(2)) > 0
    match = re.search(REPORT_LINE, proc.stdout, re.M)
    assert match, proc.stdout
    path = f"{fresh_venv / 'bin'}:/usr/bin:/bin"
    report = subprocess.run(match.group(1), shell=True, check=False, cwd=tmp_path,
                            capture_output=True, text=True, env={"PATH": path})  # fmt: skip
    assert report.returncode == 0, report.stderr  # the demo's SQLite, whatever the config's store
    assert "reading SQLite" in report.stderr


def _hold(port: int) -> socket.socket | None:
    """Take ``port`` on loopback (None when something else has it already:
    taken either way)."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    sock.listen()
    return sock


def test_demo_with_its_default_ports_taken_runs_and_says_so(
    fresh_venv: Path, tmp_path: Path
) -> None:
    """9108 and 8080 held by another program (or a pbxwatch left running):
    the demo takes free ports, says which, and speaks while it runs, also
    into a pipe."""
    held = [s for s in (_hold(9108), _hold(8080)) if s is not None]
    try:
        proc = subprocess.run([str(fresh_venv / "bin" / "pbxwatch"), "demo", "--duration", "12"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60,
                              check=False, env={**os.environ, "LANG": "sv_SE.UTF-8",
                                                "LC_ALL": "", "LC_MESSAGES": ""})  # fmt: skip
    finally:
        for sock in held:
            sock.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", proc.stderr)
    assert metrics, proc.stderr[-2000:]
    assert metrics.group(1) != "9108"
    lines = [x for x in proc.stdout.splitlines() if x.startswith("pbxwatch demo")]
    finished = [int(m.group(1)) for x in lines if (m := re.search(r"samtal klara +(\d+)", x))]
    # a Swedish locale: the summary speaks Swedish
    assert len(lines) >= 3, proc.stdout  # a line each time the figures changed
    assert max(finished) > 0, proc.stdout


def test_demo_speaks_into_an_ascii_pipe(fresh_venv: Path, tmp_path: Path) -> None:
    """An output whose encoding lacks "—" and "ä" (an ASCII locale, a
    harness that sets PYTHONIOENCODING): the summary is written escaped,
    line by line; it raised UnicodeEncodeError on its first line, which
    stopped the run's clock and left stdout silent."""
    env = {"PATH": f"{fresh_venv / 'bin'}:/usr/bin:/bin", "PYTHONIOENCODING": "ascii",
           "LC_ALL": "C", "HOME": str(tmp_path)}  # fmt: skip
    proc = subprocess.run(
        [str(fresh_venv / "bin" / "pbxwatch"), "demo", "--duration", "8", "--lang", "sv",
         "--metrics-listen", f"127.0.0.1:{free_port()}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [x for x in proc.stdout.splitlines() if x.startswith("pbxwatch demo")]
    assert len(lines) >= 2, proc.stdout
    assert r"v\xe4xeltid" in lines[0]  # escaped, not lost
    assert re.search(REPORT_LINE, proc.stdout, re.M), proc.stdout
