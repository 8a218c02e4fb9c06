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
