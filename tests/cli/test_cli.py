"""The command line as a new user meets it: help on every option, global
options on either side of the subcommand, the shipped configurations,
``init``, closed days, and reading commands that refuse an empty store."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from pbxwatch import __version__, configs
from pbxwatch.cli import main
from pbxwatch.cli.parser import build
from tests.conftest import ROOT

DOCUMENTED_CONFIGS = [
    ROOT / "config" / "lab.yaml",
    ROOT / "config" / "pbxwatch.example.yaml",
    ROOT / "config" / "compose.yaml",
    configs.path_of("lab"),
    configs.path_of("example"),
]


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_option_of_every_command_has_help() -> None:
    top = build()
    missing = []
    for name, parser in {"pbxwatch": top, **_subparsers(top)}.items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_help_has_no_markup_from_docstrings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out
    assert "demo" in out


@pytest.mark.parametrize(
    "argv",
    [["-v", "check-config", "lab"], ["check-config", "-v", "lab"],
     ["--config", "lab", "check-config"], ["check-config", "--config", "lab", "-v"]],
)  # fmt: skip
def test_global_options_before_and_after_the_command(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 0
    assert "OK" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"pbxwatch {__version__}"


@pytest.mark.parametrize("path", DOCUMENTED_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_documented_config_is_valid(path: Path) -> None:
    assert main(["check-config", str(path)]) == 0


def test_the_shipped_configs_are_the_repositorys() -> None:
    for name, link in (("lab", "lab.yaml"), ("example", "pbxwatch.example.yaml")):
        assert (ROOT / "config" / link).resolve() == configs.path_of(name).resolve()


def test_init_writes_a_valid_starter_and_keeps_a_file_that_is_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "pbxwatch.yaml"
    assert main(["init", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Written by `pbxwatch init`")
    assert main(["check-config", str(target)]) == 0
    target.write_text("site: mine\n", encoding="utf-8")
    assert main(["init", str(target)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == "site: mine\n"
    assert main(["init", str(target), "--force"]) == 0


@pytest.mark.parametrize(
    ("day", "why"),
    [("2026-12-24", "Julafton"), ("2026-12-05", "lördag"), ("2026-06-19", "Midsommarafton")],
)
def test_a_closed_day_is_refused_with_the_next_working_day(
    day: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    os.environ.setdefault("PBXWATCH_AMI_SECRET", "x")
    assert main(["simulate", "--start", day, "--days", "1"]) == 2
    err = capsys.readouterr().err
    assert why in err
    assert "closed day" in err
    assert "the next one is" in err


def test_report_refuses_a_store_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["report", "--config", "lab", "--unit", "socialtjanst",
            "--from", "2026-01-01", "--to", "2026-01-31"]  # fmt: skip
    assert main(argv) == 2
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_report_says_which_store_it_read_and_purge_prints_iso_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PBXWATCH_STORAGE__DATA_DIR", str(tmp_path))
    recording = ROOT / "tests" / "fixtures" / "ami" / "voicemail_callback.ami"
    assert main(["replay", str(recording), "--config", "lab"]) == 0
    capsys.readouterr()
    argv = ["report", "--config", "lab", "--unit", "socialtjanst", "--format", "json",
            "--from", "2026-01-01", "--to", "2026-12-31"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr()
    assert f"reading SQLite {tmp_path.resolve() / 'pbxwatch.db'}" in out.err
    json.loads(out.out)
    assert main(["db", "purge", "--config", "lab", "--now", "2026-12-01T12:00"]) == 0
    purged = json.loads(capsys.readouterr().out)
    assert purged["at"] == "2026-12-01T12:00:00.000+01:00"


def _epochs(value: object, where: str = "") -> list[str]:
    """Numbers that look like epoch times (after 2001), wherever they are."""
    if isinstance(value, dict):
        return [w for k, v in value.items() for w in _epochs(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [w for i, v in enumerate(value) for w in _epochs(v, f"{where}[{i}]")]
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 1e9:
        return [f"{where}={value}"]
    return []


def test_json_outputs_have_iso_times_not_epoch_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PBXWATCH_STORAGE__DATA_DIR", str(tmp_path))
    recording = ROOT / "tests" / "fixtures" / "ami" / "voicemail_callback.ami"
    assert main(["replay", str(recording), "--config", "lab", "--json"]) == 0
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    argv = ["report", "--config", "lab", "--unit", "socialtjanst", "--format", "json",
            "--from", "2026-01-01", "--to", "2026-12-31"]  # fmt: skip
    assert main(argv) == 0
    objects.append(json.loads(capsys.readouterr().out))
    assert main(["db", "purge", "--config", "lab"]) == 0
    objects.append(json.loads(capsys.readouterr().out))
    assert [w for obj in objects for w in _epochs(obj)] == []


def test_bash_completion_knows_the_commands_and_their_options() -> None:
    import subprocess

    script = subprocess.run([str(ROOT / ".venv" / "bin" / "pbxwatch"), "completion", "bash"],
                            check=True, capture_output=True, text=True).stdout  # fmt: skip
    show = '_pbxwatch; echo "${COMPREPLY[@]}"\n'
    probe = (script + "COMP_WORDS=(pbxwatch rep); COMP_CWORD=1; " + show
             + "COMP_WORDS=(pbxwatch demo --la); COMP_CWORD=2; " + show)  # fmt: skip
    out = subprocess.run(["bash", "-c", probe], check=True, capture_output=True, text=True)
    assert out.stdout.splitlines() == ["replay report", "--lang"]
