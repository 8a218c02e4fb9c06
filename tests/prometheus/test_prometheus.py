"""The shipped rules and dashboards against real Prometheus tools.

- (``promtool check`` and ``test rules``: test_rules.py here);
- the dashboard JSON is what config/grafana/generate.py makes;
- a real Prometheus (Debian binary, loopback, temp storage) scrapes a real
  ``pbxwatch run`` fed a recording by ``pbxwatch serve-recording``, and
  every query of every dashboard panel and every recording rule returns
  data.  Alert rules are judged by their inputs: every series an alert
  expression selects has data and the expression evaluates; whether it fires
  at the right moment is what ``promtool test rules`` proves.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import LAB_CONFIG, RECORDINGS
from tests.services import free_port, pbxwatch, process, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "config" / "prometheus"
GRAFANA = ROOT / "config" / "grafana"
RULES = PROM / "pbxwatch-rules.yml"
#: Grafana's variables, as a panel would see them with "All" chosen.
VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$unit": ".*", "$queue": ".*"}
SELECTOR = re.compile(r"\b((?:pbxwatch_|unit:pbxwatch_|up\b)[\w:]*)(\{[^}]*\})?")

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool missing: run scripts/test.sh"
)


# promtool check / test rules: tests/prometheus/test_rules.py


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate", GRAFANA / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dashboards_are_what_the_generator_makes() -> None:
    gen = _generator()
    boards = gen.dashboards()
    assert sorted(boards) == sorted(p.name for p in (GRAFANA / "dashboards").glob("*.json"))
    for name, board in boards.items():
        assert (GRAFANA / "dashboards" / name).read_text(encoding="utf-8") == gen.render(board), (
            f"{name} is stale: run python3 config/grafana/generate.py"
        )


def dashboard_queries() -> list[tuple[str, str]]:
    out = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for target in panel["targets"]:
                out.append((f"{board['title']} / {panel['title']}", target["expr"]))
    return out


def rules() -> list[dict[str, Any]]:
    raw = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in raw["groups"] for rule in group["rules"]]


def _fill(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


# ---------------------------------------------------------------- live


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}/api/v1/"

    def query(self, expr: str) -> dict[str, Any]:
        url = self.base + "query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return json.loads(resp.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())  # type: ignore[no-any-return]

    def result(self, expr: str) -> list[Any]:
        answer = self.query(expr)
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """serve-recording -> pbxwatch run (metrics) -> Prometheus, all real."""
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus missing: run scripts/test.sh (it installs it)")
    tmp = tmp_path_factory.mktemp("prom")
    ami, metrics, prom = free_port(), free_port(), free_port()
    config = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    config["ami"]["port"] = ami
    config["metrics"] = {"listen": f"127.0.0.1:{metrics}"}
    config["storage"] = {"data_dir": str(tmp / "data")}
    (tmp / "pbxwatch.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    fast_rules = RULES.read_text(encoding="utf-8").replace("interval: 1m", "interval: 1s")
    (tmp / "rules.yml").write_text(fast_rules, encoding="utf-8")
    (tmp / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp / "rules.yml")],
        "scrape_configs": [{"job_name": "pbxwatch",
                            "static_configs": [{"targets": [f"127.0.0.1:{metrics}"]}]}],
    }), encoding="utf-8")  # fmt: skip
    env = {"PBXWATCH_AMI_SECRET": "pbxwatch-lab-ro"}
    recording = next(r for r in RECORDINGS if r.stem == "mixed_load")
    server = pbxwatch("serve-recording", str(recording), "--port", str(ami))
    run = pbxwatch("run", "--config", str(tmp / "pbxwatch.yaml"), "--pbx-speed", "0")
    prometheus = ["prometheus", f"--config.file={tmp / 'prometheus.yml'}",
                  f"--storage.tsdb.path={tmp / 'tsdb'}",
                  f"--web.listen-address=127.0.0.1:{prom}", "--log.level=warn"]  # fmt: skip
    with (
        process(server, tmp / "server.log", env) as s,
        process(run, tmp / "run.log", env) as r,
        process(prometheus, tmp / "prometheus.log") as p,
    ):
        wait_for_port(ami, proc=s)
        wait_for_port(metrics, proc=r)
        wait_for_port(prom, proc=p)
        api = Prometheus(prom)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = api.result("sum(pbxwatch_calls_total) > 100 and sum(up) == 1")
            rules_ready = api.result("unit:pbxwatch_abandoned_share:ratio1h")
            if ready and rules_ready and len(api.result("pbxwatch_ami_up[10s]")[0]["values"]) >= 3:
                break
            time.sleep(0.5)
        else:
            pytest.fail("Prometheus never saw pbxwatch's calls: see " + str(tmp))
        time.sleep(2.0)  # a few more scrapes for rate() windows
        yield api


@pytest.mark.parametrize(
    ("where", "expr"), dashboard_queries(), ids=[q[0] for q in dashboard_queries()]
)
def test_every_dashboard_query_returns_data(live: Prometheus, where: str, expr: str) -> None:
    assert live.result(_fill(expr)), f"{where}: no data for {expr}"


@pytest.mark.parametrize("rule", rules(), ids=[r.get("record") or r["alert"] for r in rules()])
def test_every_rule_has_data(live: Prometheus, rule: dict[str, Any]) -> None:
    expr = rule["expr"]
    if "record" in rule:
        assert live.result(expr), f"recording rule {rule['record']}: no data"
        assert live.result(rule["record"]), f"{rule['record']} was never recorded"
        return
    live.result(expr)  # evaluates (empty while it does not fire)
    selectors = SELECTOR.findall(expr)
    assert selectors, f"alert {rule['alert']}: no series found in {expr}"
    for name, labels in selectors:
        assert live.result(name + labels), f"alert {rule['alert']}: no data for {name}{labels}"


def test_pbxwatch_counted_the_recording(live: Prometheus) -> None:
    """Spot check of values through the whole chain: mixed_load's calls."""
    inbound = live.result('sum(pbxwatch_calls_total{direction="inbound"})')
    assert float(inbound[0]["value"][1]) > 150
    up = live.result("pbxwatch_ami_up")
    assert float(up[0]["value"][1]) == 1
