"""Every shell block of README.md is run, so that what it says cannot drift.

The blocks are taken from the README as it is; nothing here is a copy of
them.  Each block runs as one bash script (``set -e``) from the repository
root, with the store in a temp directory.  A command that runs until it is
stopped (``run``, ``simulate``, ``serve-recording`` in the foreground,
``alerts tail``, ``demo`` without ``--duration``, ``scripts/demo.sh``) is
given a few seconds and stopped with SIGINT, as a reader would with Ctrl-C;
it must not have failed before that.  The blocks that cannot run here say
why in ``NOT_RUN``."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.services import free_port

pytestmark = pytest.mark.slow

README = ROOT / "README.md"

#: a block whose text has one of these is not run, for the reason given
NOT_RUN = {
    "docker compose up": "needs a container engine; tests/test_deploy.py validates the "
    "compose file with the compose tool the test command installs",
}
#: lines that are not run inside a block that is, and why
SKIPPED_LINES = {
    "scripts/test.sh": "the test command itself (CI runs it: .ci/run)",
}
RUNS_UNTIL_STOPPED = re.compile(
    r"pbxwatch (-v )?(run|simulate|serve-recording|alerts tail)\b|scripts/demo\.sh"
    r"|pbxwatch demo(?!.*--duration)"
)
STOP_AFTER_SECONDS = 8


def shell_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, body) of every ```sh block."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            start, body = i + 1, []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append((start + 1, "\n".join(body)))
        i += 1
    return blocks


def script_of(block: str, port: int) -> str:
    """The block as a script: continuations joined, ``a && b`` as two
    commands, long runners stopped after a while, the AMI port of the
    examples moved to a free one (the metrics' too, by the environment)."""
    logical = re.sub(r"\\\n\s*", " ", block).splitlines()
    out = ["set -euo pipefail"]
    commands = []
    for line in logical:
        command = re.sub(r"\s+#\s.*$", "", line).strip()
        if command and not command.startswith("#"):
            commands += command.split(" && ")  # each part must succeed: the same under -e
    for command in commands:
        if any(skip in command for skip in SKIPPED_LINES):
            continue
        out.append(_stopped_in_time(command.replace("--port 5038", f"--port {port}")))
    return "\n".join(out) + "\n"


def _stopped_in_time(command: str) -> str:
    if RUNS_UNTIL_STOPPED.search(command) and not command.endswith("&"):
        return (f"timeout -s INT {STOP_AFTER_SECONDS} {command} "
                "|| { rc=$?; [ $rc -eq 124 ] || [ $rc -eq 130 ]; }")  # fmt: skip
    return command


BLOCKS = shell_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_shell_blocks() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize(("line", "block"), BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_readme_block_runs(line: int, block: str, tmp_path: Path) -> None:
    why = next((reason for key, reason in NOT_RUN.items() if key in block), None)
    if why is not None:
        pytest.skip(f"README.md:{line} not run: {why}")
    port = free_port()
    env = {**os.environ, "PBXWATCH_STORAGE__DATA_DIR": str(tmp_path / "data"),
           "PBXWATCH_AMI__PORT": str(port),
           "PBXWATCH_METRICS__LISTEN": f"127.0.0.1:{free_port()}",
           # the console's default 8080 may be another test's (a run beside this one)
           "PBXWATCH_WEB__LISTEN": f"127.0.0.1:{free_port()}"}  # fmt: skip
    made = [ROOT / "pbxwatch.yaml"]  # what `init` in the README writes
    proc = subprocess.Popen(["bash", "-c", script_of(block, port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        # whatever the block left running (a server started with `&` before
        # a failing line, a command past the timeout) goes with it: a
        # pbxwatch left behind would hold its ports for every later test
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for path in made:
            path.unlink(missing_ok=True)
    assert proc.returncode == 0, f"README.md:{line}\n{out[-1500:]}\n{err[-3000:]}"
