"""Bad configuration gives an error that names the offending key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pbxwatch.cli import main
from pbxwatch.settings import ConfigError, load_settings
from tests.conftest import LAB_CONFIG


def _write(tmp_path: Path, data: object) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


def _lab() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))


def test_lab_and_example_configs_are_valid() -> None:
    load_settings(LAB_CONFIG)
    load_settings(LAB_CONFIG.parent / "pbxwatch.example.yaml")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda c: c["directory"]["people"]["1001"].update(unit="nope"), "people.1001.unit"),
        (lambda c: c["ami"].update(port=70000), "ami.port"),
        (lambda c: c["ami"].update(secret="hunter2"), "ami.secret"),
        (lambda c: c["calls"].update(ring_period_second=6), "calls.ring_period_second"),
        (lambda c: c.update(timezone="Mars/Olympus"), "timezone"),
        (
            lambda c: c["directory"]["units"]["bygglov"]["phone_hours"].update(days=["mån"]),
            "directory.units.bygglov.phone_hours.days",
        ),
        (
            lambda c: c["directory"]["queues"]["bygglov"].update(dids=["0855001001"]),
            "queues.bygglov.dids",
        ),
    ],
)
def test_error_names_the_key(tmp_path: Path, change, key: str) -> None:  # type: ignore[no-untyped-def]
    cfg = _lab()
    change(cfg)
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, cfg))
    assert key in str(err.value)


def test_secret_in_yaml_gets_a_hint(tmp_path: Path) -> None:
    cfg = _lab()
    cfg["ami"]["secret"] = "hunter2"
    with pytest.raises(ConfigError, match="secret_env"):
        load_settings(_write(tmp_path, cfg))


def test_check_config_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(LAB_CONFIG)]) == 0
    cfg = _lab()
    del cfg["site"]
    assert main(["check-config", str(_write(tmp_path, cfg))]) == 2
    assert "site: Field required" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: [unclosed", encoding="utf-8")
    assert main(["check-config", str(bad)]) == 2
    assert main(["check-config", str(tmp_path / "missing.yaml")]) == 2


def test_secret_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings(LAB_CONFIG)
    monkeypatch.delenv("PBXWATCH_AMI_SECRET", raising=False)
    with pytest.raises(ConfigError, match="PBXWATCH_AMI_SECRET"):
        s.ami.secret()
    monkeypatch.setenv("PBXWATCH_AMI_SECRET", "from-env")
    assert s.ami.secret().get_secret_value() == "from-env"
    f = tmp_path / "secret"
    f.write_text("from-file\n", encoding="utf-8")
    assert s.ami.model_copy(update={"secret_file": f}).secret().get_secret_value() == "from-file"


def test_environment_overrides_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PBXWATCH_AMI__HOST", "pbx.internal")
    assert load_settings(LAB_CONFIG).ami.host == "pbx.internal"


def _many(cfg: dict) -> dict:  # type: ignore[type-arg]
    """The lab config as three PBXs: socialtjanst's, bygglov's and the rest."""
    ami, inbound = cfg.pop("ami"), cfg.pop("inbound")
    cfg["pbxs"] = [
        {"id": "main", "ami": ami, "inbound": inbound},
        {"id": "north", "ami": {**ami, "port": 5039}, "inbound": inbound,
         "units": ["bygglov"], "timezone": "Europe/Helsinki"},
        {"id": "south", "ami": {**ami, "port": 5040}, "inbound": inbound,
         "extensions": ["1001"]},
    ]  # fmt: skip
    return cfg


def test_a_single_ami_is_the_pbx_main() -> None:
    s = load_settings(LAB_CONFIG)
    assert s.pbx_ids() == ["main"]
    (view,) = s.pbx_views()
    assert view is s
    assert view.pbx_id == "main"
    assert s.source_name() == "ami:127.0.0.1:5038"  # as stored before pbxs existed


def test_pbxs_are_views_with_their_part_of_the_directory(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, _many(_lab())))
    assert s.pbx_ids() == ["main", "north", "south"]
    main_, north, south = s.pbx_views()
    assert [v.pbx_id for v in (main_, north, south)] == ["main", "north", "south"]
    assert main_.source_name() == "ami:127.0.0.1:5038"
    assert north.source_name() == "pbx:north"
    assert north.ami.port == 5039
    assert main_.directory.people == s.directory.people  # no units, no extensions: all of it
    assert {p.unit for p in north.directory.people.values()} == {"bygglov"}
    assert set(north.directory.queues) == {
        n for n, q in s.directory.queues.items() if q.unit == "bygglov"
    }
    assert set(south.directory.people) == {"1001"}
    assert not south.directory.queues
    assert north.timezone == "Europe/Helsinki"
    assert south.timezone == s.timezone
    assert north.directory.units == s.directory.units  # a unit may span PBXs
    north.directory_model()  # the core's directory builds from a view


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda c: c["pbxs"][1].update(id="main"), "pbxs.1.id"),
        (lambda c: c["pbxs"][1].update(id="Norr"), "pbxs.1.id"),
        (lambda c: c["pbxs"][2]["ami"].update(port=5039), "pbxs.2.ami"),
        (lambda c: c["pbxs"][1].update(units=["nope"]), "pbxs.1.units"),
        (lambda c: c["pbxs"][2].update(extensions=["9999"]), "pbxs.2.extensions"),
        (lambda c: c["pbxs"][1].update(timezone="Mars/Olympus"), "pbxs.1.timezone"),
        (lambda c: c["pbxs"][1].update(inbound={}), "pbxs.1.inbound"),
        (lambda c: c["pbxs"][0].update(trunks=[]), "pbxs.0.trunks"),
        (lambda c: c.update(ami={"port": 5038}), "ami"),
    ],
)
def test_a_bad_pbx_is_refused_naming_the_key(  # type: ignore[no-untyped-def]
    tmp_path: Path, change, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _many(_lab())
    change(cfg)
    if key == "pbxs.1.inbound":  # DIDs are inbound too: take bygglov's away
        for q in cfg["directory"]["queues"].values():
            q["dids"] = []
        for p in cfg["directory"]["people"].values():
            p["dids"] = []
    path = _write(tmp_path, cfg)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert key in str(err.value)
    assert main(["check-config", str(path)]) == 2
    assert key in capsys.readouterr().err
