"""Shared test helpers: paths to the recordings and the lab configuration."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from pbxwatch.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "ami"
LAB_CONFIG = ROOT / "config" / "lab.yaml"
RECORDINGS = sorted(p for p in FIXTURES.glob("*.ami") if p.with_suffix(".truth.json").exists())
#: the same lab on PJSIP (../shared/ami-recordings-pjsip), and its configuration
PJSIP_FIXTURES = ROOT / "tests" / "fixtures" / "ami-pjsip"
LAB_PJSIP_CONFIG = ROOT / "config" / "lab-pjsip.yaml"
PJSIP_RECORDINGS = sorted(PJSIP_FIXTURES.glob("*.ami"))
#: every recording with a truth: a test of the IAX2 ones runs the PJSIP ones too
EVERY_RECORDING = RECORDINGS + PJSIP_RECORDINGS


def recording_id(recording: Path) -> str:
    return f"pjsip-{recording.stem}" if recording.parent == PJSIP_FIXTURES else recording.stem


@lru_cache(maxsize=2)
def settings_for(recording: Path) -> Settings:
    """The lab configuration the recording was made on."""
    return load_settings(LAB_PJSIP_CONFIG if recording.parent == PJSIP_FIXTURES else LAB_CONFIG)


@pytest.fixture(scope="session")
def lab_settings() -> Settings:
    return load_settings(LAB_CONFIG)


#: the files whose tests take longest (``pytest --durations``), run first:
#: the workers take files in collection order (``--dist loadfile``), and a
#: long file picked up last leaves the other workers idle while it runs
LONGEST_FIRST = (
    "tests/chaos/test_store_outage.py",
    "tests/mail/test_live.py",
    "tests/chaos/test_long_run.py",
    "tests/chaos/test_failover.py",
    "tests/cli/test_first_run.py",
    "tests/chaos/test_clock_steps.py",
    "tests/chaos/test_restart_kill.py",
    "tests/sim/test_week.py",
    "tests/mail/test_mail.py",
    "tests/web/test_api_schema.py",
    "tests/mail/test_weekly_live.py",
    "tests/reports/test_pdf.py",
    "tests/sim/test_live.py",
    "tests/store/test_restart.py",
    "tests/reports/test_html.py",
    "tests/test_readme.py",
    "tests/browser/test_console.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}

    def order(item: pytest.Item) -> int:
        return rank.get(item.nodeid.split("::", 1)[0], len(rank))

    items.sort(key=order)  # stable: the rest keep their order
