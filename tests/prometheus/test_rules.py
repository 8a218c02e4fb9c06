"""The alert and recording rules, their promtool tests, runbooks and routing.

- ``promtool check config / check rules / test rules`` on config/prometheus;
- every rule has a promtool test, every alert one where it fires and one
  where it must not;
- every alert has a ``team`` label, Swedish and English annotations and a
  ``runbook_url`` to its own section of docs/runbooks.md;
- the Alertmanager example passes ``amtool check-config`` and routes
  ``team="it"`` to on-call IT and ``team="unit"`` by ``unit`` to the chiefs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import LAB_CONFIG

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "config" / "prometheus"
RULES = PROM / "pbxwatch-rules.yml"
RULE_TESTS = PROM / "pbxwatch-rules.test.yml"
ALERTMANAGER = ROOT / "config" / "alertmanager" / "alertmanager.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
#: The placeholder base of every runbook_url (see the rules file's header).
RUNBOOK_BASE = "https://git.example.org/kommun/pbxwatch/blob/main/docs/runbooks.md"
ANNOTATIONS = {"summary", "description", "summary_en", "description_en", "runbook_url"}
RUNBOOK_PARTS = ("What it means.", "Likely causes.", "What to check.", "How to resolve.",
                 "Who owns it.")  # fmt: skip

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool missing: run scripts/test.sh"
)
needs_amtool = pytest.mark.skipif(
    shutil.which("amtool") is None, reason="amtool missing: run scripts/test.sh"
)


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load(RULES)["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False,
                          cwd=PROM, timeout=120)  # fmt: skip


# ------------------------------------------------------------ promtool


@needs_promtool
def test_promtool_checks_the_config_and_rules() -> None:
    checks = [("check", "config", "prometheus.yml"), ("check", "config", "prometheus.compose.yml"),
              ("check", "rules", RULES.name)]  # fmt: skip
    for args in checks:
        done = _promtool(*args)
        assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_unit_tests_of_the_alert_rules() -> None:
    done = _promtool("test", "rules", RULE_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_rule_has_a_promtool_test() -> None:
    """A recording rule is queried by a promql_expr_test; an alert has a case
    where it fires and one where it must not."""
    tests = _load(RULE_TESTS)["tests"]
    exprs = [case["expr"] for t in tests for case in t.get("promql_expr_test", [])]
    fires: set[str] = set()
    quiet: set[str] = set()
    for t in tests:
        for case in t.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    missing = []
    for rule in _rules():
        if "record" in rule:
            name = re.compile(re.escape(rule["record"]) + r"(?![\w:])")
            if not any(name.search(e) for e in exprs):
                missing.append(f"recording rule {rule['record']}: no promql_expr_test")
            continue
        for cases, what in ((fires, "fires"), (quiet, "must not fire")):
            if rule["alert"] not in cases:
                missing.append(f"alert {rule['alert']}: no case where it {what}")
    assert not missing, "\n".join(missing)
    unknown = (fires | quiet) - {a["alert"] for a in _alerts()}
    assert not unknown, f"tests of alerts that do not exist: {sorted(unknown)}"


# ------------------------------------------------------------ labels, annotations


def test_every_alert_has_a_team_severity_and_both_languages() -> None:
    for rule in _alerts():
        name, labels, ann = rule["alert"], rule["labels"], rule["annotations"]
        assert labels.get("team") in ("it", "unit"), name
        assert labels.get("severity") in ("critical", "warning"), name
        assert set(ann) == ANNOTATIONS, name
        for key in ("summary", "description"):
            assert ann[key].strip(), (name, key)
            assert ann[f"{key}_en"].strip(), (name, key)
            assert ann[key] != ann[f"{key}_en"], f"{name}: {key} is not translated"


def test_unit_alerts_carry_the_unit_label() -> None:
    """team=unit is routed by `unit`: every firing expectation has it."""
    unit_alerts = {r["alert"] for r in _alerts() if r["labels"]["team"] == "unit"}
    seen = set()
    for t in _load(RULE_TESTS)["tests"]:
        for case in t.get("alert_rule_test", []):
            if case["alertname"] in unit_alerts:
                for alert in case.get("exp_alerts") or []:
                    assert "unit" in alert["exp_labels"], case
                    seen.add(case["alertname"])
    assert seen == unit_alerts


def _slug(heading: str) -> str:
    """The anchor GitHub, GitLab and Gitea make of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _runbook_sections() -> dict[str, str]:
    text = RUNBOOKS.read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {_slug(title): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_every_alert_has_a_runbook_section() -> None:
    sections = _runbook_sections()
    names = [rule["alert"] for rule in _alerts()]
    for name in names:
        url = next(r["annotations"]["runbook_url"] for r in _alerts() if r["alert"] == name)
        assert url == f"{RUNBOOK_BASE}#{name.lower()}", name
        body = sections.get(name.lower())
        assert body is not None, f"docs/runbooks.md has no section ## {name}"
        for part in RUNBOOK_PARTS:
            assert f"**{part}**" in body, f"{name}: no '{part}' in its runbook section"
    assert sorted(sections) == sorted(n.lower() for n in names), "a runbook for no alert"


# ------------------------------------------------------------ Alertmanager


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["amtool", *args], capture_output=True, text=True, check=False,
                          timeout=60)  # fmt: skip


@needs_amtool
def test_alertmanager_example_is_valid() -> None:
    done = _amtool("check-config", str(ALERTMANAGER))
    assert done.returncode == 0, done.stdout + done.stderr


def _receiver(*labels: str) -> str:
    done = _amtool("config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


@needs_amtool
def test_alertmanager_routes_it_to_on_call_and_units_to_their_chiefs() -> None:
    for rule in _alerts():
        if rule["labels"]["team"] == "it":
            assert _receiver(f"alertname={rule['alert']}", "team=it") == "it-oncall"
    for unit in _load(LAB_CONFIG)["directory"]["units"]:
        labels = ("alertname=CallbacksOverdue", "team=unit", f"unit={unit}")
        assert _receiver(*labels) == f"chief-{unit}", unit
    assert _receiver("alertname=AbandonRateHigh", "team=unit", "unit=none") == "unit-chiefs"
