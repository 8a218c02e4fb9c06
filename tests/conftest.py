"""Shared test helpers: paths to the recordings and the lab configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxwatch.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "ami"
LAB_CONFIG = ROOT / "config" / "lab.yaml"
RECORDINGS = sorted(p for p in FIXTURES.glob("*.ami") if p.with_suffix(".truth.json").exists())


@pytest.fixture(scope="session")
def lab_settings() -> Settings:
    return load_settings(LAB_CONFIG)
