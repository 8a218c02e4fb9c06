"""Bad configuration and command-line input: one clear line naming what is
wrong, exit status 2, no traceback, nothing started."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import LAB_CONFIG
from tests.services import pbxwatch


def _config(tmp: Path, **changes: object) -> Path:
    raw = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    raw.update(changes)
    path = tmp / "pbxwatch.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _refused(*args: str) -> str:
    env = {**os.environ, "PBXWATCH_AMI_SECRET": "s", "SIM_SECRET": "s"}
    p = subprocess.run(pbxwatch(*args), capture_output=True, text=True, timeout=60, env=env,
                       check=False)  # fmt: skip
    assert p.returncode == 2, (args, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("pbxwatch: ")
    return lines[0]


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_an_unsupported_database_is_refused(tmp_path: Path, command: str) -> None:
    config = _config(tmp_path, storage={"url": "mysql://pbxwatch@db/pbxwatch"})
    args = [command, str(config)] if command == "check-config" else [command, "--config",
                                                                      str(config)]  # fmt: skip
    line = _refused(*args)
    assert "storage.url: unsupported database 'mysql'" in line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["serve-recording", "/nonexistent.ami"], "recording /nonexistent.ami: cannot read"),
        (["replay", "/nonexistent.ami", "--config", str(LAB_CONFIG)], "cannot read"),
        (["simulate", "--port", "99999"], "--port: 99999 is not a TCP port"),
        (["simulate", "--calls-per-hour", "-3"], "--calls-per-hour: must be more than 0"),
        (["simulate", "--days", "0"], "--days: must be 1 or more"),
        (["serve-recording", str(LAB_CONFIG), "--speed", "-2"], "--speed: must be 0 or more"),
        (["run", "--config", str(LAB_CONFIG), "--pbx-speed", "-1"], "--pbx-speed: must be 0"),
        (["run", "--config", str(LAB_CONFIG), "--pbx-speed", "nan"], "--pbx-speed: must be 0"),
    ],
)
def test_bad_command_line_input_is_refused(args: list[str], says: str) -> None:
    assert says in _refused(*args)


def test_check_config_writes_out_the_default_phone_hours(tmp_path: Path) -> None:
    raw = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    unit = next(iter(raw["directory"]["units"]))
    raw["directory"]["units"][unit].pop("phone_hours", None)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    p = subprocess.run(pbxwatch("check-config", str(path)), capture_output=True, text=True,
                       timeout=60, check=False)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert (f"directory.units.{unit}.phone_hours not given: the default "
            "mon/tue/wed/thu/fri 08:00-16:30 Europe/Stockholm") in p.stdout  # fmt: skip


def test_a_database_that_does_not_resolve_is_waited_for_and_counted(tmp_path: Path) -> None:
    """Not a configuration error (the host may come up): retried with a
    warning at every try, and counted on the metrics meanwhile."""
    import time
    import urllib.request

    from tests.services import free_port, process, wait_for_port

    metrics = free_port()
    config = _config(tmp_path, storage={"url": "postgresql+asyncpg://pbxwatch@db.invalid/x"},
                     metrics={"listen": f"127.0.0.1:{metrics}"})  # fmt: skip
    log = tmp_path / "run.log"
    run = pbxwatch("run", "--config", str(config))
    with process(run, log, {"PBXWATCH_AMI_SECRET": "s"}) as proc:
        wait_for_port(metrics, proc=proc)
        deadline = time.monotonic() + 20
        body, failures = "", 0.0
        while failures < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as r:
                body = r.read().decode()
            name = "pbxwatch_store_connect_failures_total "
            failures = next(float(line.split()[1]) for line in body.splitlines()
                            if line.startswith(name))  # fmt: skip
        assert proc.poll() is None  # waiting, not gone
    assert "pbxwatch_store_up 0.0" in body
    assert failures >= 2, body[-2000:]  # a third try may have come between two scrapes
    assert log.read_text().count("retrying in") >= 2


def test_a_metrics_port_in_use_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = _config(tmp_path, metrics={"listen": f"127.0.0.1:{port}"})
        line = _refused("run", "--config", str(config))
    assert line.startswith(f"pbxwatch: metrics.listen: 127.0.0.1:{port}: ")
