"""One store for the console tests: the lab config, three shared
recordings replayed into SQLite with ``pbxwatch replay``."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxwatch.settings import Settings, load_settings
from tests.web.served import lab_config, replay_into


@pytest.fixture(scope="session")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    tmp = tmp_path_factory.mktemp("console-store")
    config = lab_config(tmp)
    replay_into(config)
    return load_settings(config), tmp / "data" / "pbxwatch.db"
