"""The deployment files: docker-compose.yml validates (``docker compose
config``, or Debian's ``docker-compose config``) with the example
environment, names no secret, and the stack's pbxwatch config is valid."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from pbxwatch.settings import load_settings
from tests.conftest import ROOT


def _compose() -> list[str]:
    if shutil.which("docker"):
        plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if plugin.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose`: run scripts/debian-packages.sh")


@pytest.mark.parametrize("profile", [[], ["--profile", "simulator"]])
def test_compose_file_validates(profile: list[str]) -> None:
    done = subprocess.run([*_compose(), "--env-file", ".env.example", *profile, "config", "-q"],
                          cwd=ROOT, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_compose_file_holds_no_secret() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        for key, value in env.items() if isinstance(env, dict) else []:
            if re.search("SECRET|PASSWORD", key):
                assert str(value).startswith("${"), (name, key)


def test_stack_config_is_valid() -> None:
    settings = load_settings(ROOT / "config" / "compose.yaml")
    assert settings.mqtt.enabled
    assert settings.ami.host == "asterisk"
