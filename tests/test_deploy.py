"""The deployment files: docker-compose.yml validates with the compose tool
that scripts/debian-packages.sh installs (``docker compose config`` where the
Compose v2 plugin is there, else Debian's ``docker-compose config``, v1.29)
for every profile, with the example environment; it names no secret; the
stack would start (the schema is migrated before ``run``, every service that
another waits for has a healthcheck, the data and spill directory and every
service's data are on named volumes); and the stack's pbxwatch config passes
``check-config`` with the paths the stack mounts.

No container engine is available here or in CI: the stack is validated, not
started."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pbxwatch.settings import Settings, load_settings
from tests.conftest import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
STACK_CONFIG = ROOT / "config" / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _compose() -> list[str]:
    if shutil.which("docker"):
        plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if plugin.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    message = "neither `docker compose` nor `docker-compose`: run scripts/debian-packages.sh"
    if IN_CI:
        pytest.fail(message)  # CI installs it: never skip the validation there
    pytest.skip(message)


def _clean_env() -> dict[str, str]:
    """The caller's environment without the stack's variables, so that only
    the env file given decides."""
    names = {line.split("=", 1)[0] for line in _env_lines(ENV_EXAMPLE)}
    return {k: v for k, v in os.environ.items()
            if k not in names and not k.startswith(("PBXWATCH_", "COMPOSE_"))}  # fmt: skip


def _run_compose(*args: str, env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
    command = [*_compose(), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False,
                          env=_clean_env(), timeout=120)  # fmt: skip


def _env_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _example_env() -> dict[str, str]:
    return dict(line.split("=", 1) for line in _env_lines(ENV_EXAMPLE))


_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def _interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}``,
    enough to read the file as the tool would with ``env``."""
    if isinstance(value, str):

        def one(m: re.Match[str]) -> str:
            name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
            if env.get(name):
                return env[name]
            if op.endswith("-"):
                return arg
            assert not op.endswith("?"), f"{name} unset: {arg}"
            return ""

        return _VAR.sub(one, value.replace("$$", "\0")).replace("\0", "$")
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as the tool reads it with .env.example (anchors
    and merge keys resolved by YAML, variables interpolated)."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    doc: dict[str, Any] = _interpolate(raw, _example_env())
    return doc


def _profiles() -> list[list[str]]:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    names = sorted({p for s in raw["services"].values() for p in s.get("profiles", [])})
    every = [arg for name in names for arg in ("--profile", name)]
    return [[], *(["--profile", name] for name in names), *([every] if len(names) > 1 else [])]


def _depends(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (cond or {}).get("condition", "service_started") for name, cond in deps.items()}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a named volume or a host path)."""
    out: dict[str, str] = {}
    for vol in service.get("volumes", []):
        if isinstance(vol, dict):
            out[vol["target"]] = vol.get("source", "")
        else:
            source, target = vol.split(":")[:2]
            out[target] = source
    return out


def _stack_settings(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """config/compose.yaml as `run` reads it in the pbxwatch container: the
    Dockerfile's ENV and the service's environment applied."""
    for key in [k for k in os.environ if k.startswith("PBXWATCH_")]:
        monkeypatch.delenv(key)
    for key, value in _dockerfile_env().items():
        monkeypatch.setenv(key, value)
    for key, value in compose["services"]["pbxwatch"]["environment"].items():
        monkeypatch.setenv(key, str(value))
    return load_settings(STACK_CONFIG)


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _dockerfile_env() -> dict[str, str]:
    return dict(re.findall(r"^ENV (\w+)=(\S+)$", _dockerfile(), re.M))


def _config_arg(service: dict[str, Any]) -> str:
    command = service["command"]
    return str(command[command.index("--config") + 1])


# -- the compose tool ---------------------------------------------------------


@pytest.mark.parametrize("profile", _profiles(), ids=lambda p: " ".join(p[1::2]) or "default")
def test_compose_file_validates(profile: list[str]) -> None:
    done = _run_compose(*profile, "config", "-q")
    assert done.returncode == 0, done.stderr
    assert "is not set" not in done.stderr, done.stderr


def test_compose_tool_resolves_the_start_order() -> None:
    """The tool's own reading of the file (not only PyYAML's): pbxwatch
    waits for migrate to complete and for healthy postgres and mosquitto."""
    done = _run_compose("config")
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert _depends(resolved["services"]["pbxwatch"]) == {
        "migrate": "service_completed_successfully",
        "postgres": "service_healthy",
        "mosquitto": "service_healthy",
    }
    assert _depends(resolved["services"]["migrate"]) == {"postgres": "service_healthy"}


def test_compose_refuses_a_missing_secret(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    done = _run_compose("config", "-q", env_file=empty)
    assert done.returncode != 0
    assert "in .env" in done.stderr, done.stderr


# -- secrets ------------------------------------------------------------------


def test_compose_file_holds_no_secret() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        for key, value in env.items() if isinstance(env, dict) else []:
            if re.search("SECRET|PASSWORD|TOKEN|KEY", key):
                assert str(value).startswith("${"), (name, key)
    example = _example_env()
    for key, value in example.items():
        if re.search("SECRET|PASSWORD|TOKEN|KEY", key):
            assert value.startswith("change-me"), (key, "a real secret in .env.example")
    tracked = subprocess.run(["git", "ls-files", "--", ".env", "*.env", "secrets"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert tracked == "", tracked
    assert ".env" in (ROOT / ".dockerignore").read_text(encoding="utf-8").split()


def test_stack_config_takes_secrets_from_the_environment() -> None:
    raw = yaml.safe_load(STACK_CONFIG.read_text(encoding="utf-8"))
    assert raw["ami"]["secret_env"] == "PBXWATCH_AMI_SECRET"
    assert raw["storage"]["password_env"] == "PBXWATCH_DB_PASSWORD"
    assert ":" not in raw["storage"]["url"].split("//")[1].split("@")[0], "a password in the URL"


# -- the stack would start ----------------------------------------------------


def test_migrations_run_before_run(compose: dict[str, Any]) -> None:
    services = compose["services"]
    pbxwatch, migrate = services["pbxwatch"], services["migrate"]
    assert pbxwatch["command"][0] == "run"
    assert migrate["command"][:2] == ["db", "upgrade"]
    assert _config_arg(migrate) == _config_arg(pbxwatch) == "/app/config/compose.yaml"
    assert migrate["image"] == pbxwatch["image"]
    assert migrate["build"] == pbxwatch["build"]
    assert str(migrate["restart"]) == "no"
    assert "profiles" not in migrate
    assert _depends(pbxwatch)["migrate"] == "service_completed_successfully"
    assert _depends(migrate)["postgres"] == "service_healthy"
    # the migration gets the database password the same way run does
    assert (
        migrate["environment"]["PBXWATCH_DB_PASSWORD"]
        == (pbxwatch["environment"]["PBXWATCH_DB_PASSWORD"])
    )


def test_every_awaited_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    awaited = {(dep, cond) for s in services.values() for dep, cond in _depends(s).items()}
    assert {"postgres", "mosquitto"} <= {dep for dep, cond in awaited if cond == "service_healthy"}
    for dep, cond in awaited:
        assert dep in services, dep
        target = services[dep]
        if cond == "service_healthy":
            check = target.get("healthcheck", {})
            assert not check.get("disable"), dep
            assert check.get("test"), dep
            assert check["test"][0] in {"CMD", "CMD-SHELL"}, dep
        elif cond == "service_completed_successfully":
            assert str(target.get("restart")) == "no", f"{dep} is a one-shot: restart 'no'"
        # a service that waits must not wait for one in a profile it lacks
        for name, s in services.items():
            if dep in _depends(s):
                assert set(target.get("profiles", [])) <= set(s.get("profiles", [])), (name, dep)


def test_healthchecks_probe_the_right_things(compose: dict[str, Any]) -> None:
    services = compose["services"]
    pg = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in " ".join(pg)
    assert "-h" in pg, "over TCP: the image's init server listens on the socket only"
    mq = services["mosquitto"]["healthcheck"]["test"]
    assert mq[:2] == ["CMD", "mosquitto_sub"]
    assert mq[mq.index("-t") + 1] == "$SYS/#"  # $$ in the file: no interpolation
    assert {"-C", "-W"} <= set(mq)
    conf = (ROOT / "config" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    if re.search(r"^(allow_anonymous\s+false|password_file\s)", conf, re.M):
        assert {"-u", "-P"} <= set(mq), "the broker wants a login: give the healthcheck one"
    own = " ".join(services["pbxwatch"]["healthcheck"]["test"])
    assert "urllib.request" in own
    assert "127.0.0.1:9108/metrics" in own
    assert "healthcheck" in services["simulator"]  # the image's /metrics check does not apply


def test_data_and_spill_are_on_volumes(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services, named = compose["services"], set(compose["volumes"])
    settings = _stack_settings(compose, monkeypatch)
    data_dir = str(settings.storage.data_dir)
    assert data_dir == "/var/lib/pbxwatch"
    assert _dockerfile_env()["PBXWATCH_STORAGE__DATA_DIR"] == data_dir
    assert _mounts(services["pbxwatch"]).get(data_dir) in named
    mosquitto_conf = (ROOT / "config" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    assert re.search(r"^persistence\s+true", mosquitto_conf, re.M)
    persistence = re.search(r"^persistence_location\s+(\S+)", mosquitto_conf, re.M)
    assert persistence is not None
    prom_args = services["prometheus"]["command"]
    tsdb = next(a.split("=", 1)[1] for a in prom_args if a.startswith("--storage.tsdb.path="))
    for service, path in [("postgres", "/var/lib/postgresql/data"),
                          ("mosquitto", persistence.group(1).rstrip("/")),
                          ("prometheus", tsdb), ("grafana", "/var/lib/grafana")]:  # fmt: skip
        assert _mounts(services[service]).get(path) in named, (service, path)


def test_the_migrate_service_makes_the_database_ready_for_run(tmp_path: Path) -> None:
    """The migrate service's command, then pbxwatch's own check, against a
    throw-away PostgreSQL (the stack's URL pointed at it): unmigrated, `db
    check` refuses as `run` would; after `db upgrade` it passes, and a second
    upgrade (the next `docker compose up`) changes nothing."""
    from tests import pg

    if not pg.available():
        message = "PostgreSQL missing: run scripts/debian-packages.sh"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    command = compose["services"]["migrate"]["command"]
    config = command.index("--config") + 1
    command = [*command[:config], str(STACK_CONFIG), *command[config + 1 :]]
    with pg.postgres_server() as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PBXWATCH_")}
        env |= {"PBXWATCH_STORAGE__URL": url, "PBXWATCH_DB_PASSWORD": "unused-trust-auth",
                "PBXWATCH_STORAGE__DATA_DIR": str(tmp_path)}  # fmt: skip

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "pbxwatch", *args], cwd=tmp_path,
                                  env=env, capture_output=True, text=True, check=False,
                                  timeout=120)  # fmt: skip

        check = ["db", "check", "--config", str(STACK_CONFIG)]
        before = cli(*check)
        assert before.returncode != 0
        assert "db upgrade" in before.stderr, before.stderr
        first = cli(*command)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "schema none ->" in first.stdout, first.stdout
        after = cli(*check)
        assert after.returncode == 0, after.stdout + after.stderr
        again = cli(*command)
        assert again.returncode == 0, again.stdout + again.stderr
        head = first.stdout.rsplit("-> ", 1)[1].strip()
        assert f"schema {head} -> {head}" in again.stdout, again.stdout


def test_stack_config_passes_check_config() -> None:
    done = subprocess.run([sys.executable, "-m", "pbxwatch", "check-config", str(STACK_CONFIG)],
                          cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout


def test_stack_config_names_the_stack_services(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    settings = _stack_settings(compose, monkeypatch)
    assert settings.ami.host == "asterisk"
    assert settings.mqtt.enabled
    assert settings.mqtt.host in services
    assert settings.storage.url is not None
    assert settings.storage.url.split("@", 1)[1].split(":")[0] in services
    # Prometheus scrapes the port the metrics listen on, on every interface
    host, port = settings.metrics.listen.rsplit(":", 1)
    assert host == "0.0.0.0"
    prom = yaml.safe_load(
        (ROOT / "config" / "prometheus" / "prometheus.compose.yml").read_text(encoding="utf-8")
    )
    targets = [t for job in prom["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]]  # fmt: skip
    assert f"pbxwatch:{port}" in targets
    # the simulator profile points pbxwatch at the simulator
    monkeypatch.setenv("PBXWATCH_AMI__HOST", "simulator")
    assert load_settings(STACK_CONFIG).ami.host == "simulator"


def test_image_has_the_configs_the_services_name(compose: dict[str, Any]) -> None:
    """Every /app/config/... a service names exists in the build context,
    and the links in config/ resolve inside what the Dockerfile copies."""
    dockerfile = _dockerfile()
    assert re.search(r"^COPY config /app/config$", dockerfile, re.M)
    assert re.search(r"^COPY pbxwatch \./pbxwatch$", dockerfile, re.M)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert not any(p in ignored for p in ("config", "pbxwatch", "pbxwatch/configs"))
    for name, service in compose["services"].items():
        if service.get("image") != compose["services"]["pbxwatch"]["image"]:
            continue
        path = _config_arg(service)
        assert path.startswith("/app/config/"), (name, path)
        local = ROOT / "config" / path.removeprefix("/app/config/")
        assert local.is_file(), (name, path)
    for link in (ROOT / "config").iterdir():
        if link.is_symlink():
            target = link.resolve()
            assert target.is_file(), link
            # /app/config/<link> -> /app/pbxwatch/...: copied by `COPY pbxwatch`
            assert target.is_relative_to(ROOT / "pbxwatch"), (link, target)


def test_grafana_and_prometheus_mounts_match_their_configs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    grafana = _mounts(services["grafana"])
    provider = yaml.safe_load(
        (ROOT / "config/grafana/provisioning/dashboards/pbxwatch.yml").read_text(encoding="utf-8")
    )
    path = provider["providers"][0]["options"]["path"]
    assert grafana.get(path) == "./config/grafana/dashboards"
    assert grafana.get("/etc/grafana/provisioning") == "./config/grafana/provisioning"
    prom = _mounts(services["prometheus"])
    rules = yaml.safe_load(
        (ROOT / "config" / "prometheus" / "prometheus.compose.yml").read_text(encoding="utf-8")
    )["rule_files"]
    for rule in rules:
        assert f"/etc/prometheus/{rule}" in prom, rule
