"""The shipped rules and dashboards against real Prometheus tools.

- (``promtool check`` and ``test rules``: test_rules.py here);
- the dashboard JSON is what config/grafana/generate.py makes;
- a real Prometheus (Debian binary, loopback, temp storage) scrapes a real
  ``pbxwatch run`` following a simulated working day (``pbxwatch simulate``
  at 3,600 x over TCP AMI), and runs every query of every dashboard panel:
  none errs, and each has data (a value that is neither 0 nor NaN) unless
  it is in ``EXPECTED_EMPTY`` with the reason; every recording rule has data.
  Alert rules are judged by their inputs: every series an alert expression
  selects has data and the expression evaluates; whether it fires at the
  right moment is what ``promtool test rules`` proves.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import LAB_CONFIG
from tests.grafana import generator
from tests.live import RUN_ENV
from tests.services import free_port, pbxwatch, process, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "config" / "prometheus"
GRAFANA = ROOT / "config" / "grafana"
RULES = PROM / "pbxwatch-rules.yml"
#: Grafana's variables, as a panel would see them with "All" chosen; the
#: simulated day takes ~10 s of host time, so a minute holds all of it.
VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$unit": ".*",
    "$queue": ".*",
    "$pbx": ".*",
}
DAY = dt.date(2026, 11, 24)  # a Tuesday, no holiday
SPEED = 3600  # PBX seconds per host second: the day in about 10 s
SELECTOR = re.compile(r"\b((?:pbxwatch_|unit:pbxwatch_|up\b)[\w:]*)(\{[^}]*\})?")

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool missing: run scripts/test.sh"
)


# promtool check / test rules: tests/prometheus/test_rules.py


def test_dashboards_are_what_the_generator_makes() -> None:
    gen = generator()
    boards = gen.dashboards()
    assert sorted(boards) == sorted(p.name for p in (GRAFANA / "dashboards").glob("*.json"))
    for name, board in boards.items():
        assert (GRAFANA / "dashboards" / name).read_text(encoding="utf-8") == gen.render(board), (
            f"{name} is stale: run .venv/bin/python config/grafana/generate.py"
        )


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(board / panel / legend, panel type, expression) of every panel target."""
    out = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for target in panel["targets"]:
                where = f"{board['title']} / {panel['title']} / {target['legendFormat']}"
                out.append((where.rstrip(" /"), panel["type"], target["expr"]))
    return out


#: Panel queries with no data after one simulated working day, and why.
#: "No data" is no series, or only 0 and NaN: a panel that shows nothing.
#: The test fails on an empty query not listed here, and on a listed one
#: that has data (the list would be stale).
_OVER = "the day is over when the stat is read: "
_HEALTHY = "a healthy run: "
EXPECTED_EMPTY: dict[str, str] = {
    "Live queues / Callers waiting / {{queue}}": _OVER + "nobody waits after closing",
    "Live queues / Longest wait / {{queue}}": _OVER + "nobody waits after closing",
    "Live queues / Unstaffed now / {{queue}}": _OVER + "outside phone hours nothing is unstaffed",
    "pbxwatch health / Calls in progress": _OVER + "every call has ended",
    "pbxwatch health / Alert outbox backlog": "MQTT is off in this test: no outbox to wait in",
    "pbxwatch health / Alerts to MQTT / published": "MQTT is off in this test",
    "pbxwatch health / Alerts to MQTT / outbox": "MQTT is off in this test",
    "pbxwatch health / AMI gaps in the range": _HEALTHY + "the AMI connection never breaks",
    "pbxwatch health / PBX time unseen in gaps": _HEALTHY + "no gap, so no time unseen",
    "pbxwatch health / PBX clock steps in the range": "one day, no night: the simulated "
    "clock never steps",
    "pbxwatch health / Bad AMI input in the range": _HEALTHY + "the simulator's frames are "
    "all well formed",
    "pbxwatch health / Bad AMI input by kind / {{kind}}": _HEALTHY + "no bad input",
    "pbxwatch health / Reconnects and errors / AMI reconnects": _HEALTHY + "one login",
    "pbxwatch health / Reconnects and errors / event errors": _HEALTHY + "no handler fails",
    "pbxwatch health / Reconnects and errors / sink errors": _HEALTHY + "no sink fails",
    "pbxwatch health / Reconnects and errors / store write errors": _HEALTHY + "SQLite "
    "takes every batch",
    "pbxwatch health / Rows waiting and spilled / spilled": _HEALTHY + "the store keeps up, "
    "nothing spills",
    "pbxwatch health / PBXs without an owner": "no cluster: the one instance owns its PBX",
    "pbxwatch health / Takeovers in the range": "no cluster: no lease is ever taken over",
}
#: Empty or not by the scrapes' timing: at 3,600 x a caller's minute in the
#: queue lasts 17 ms of host time, and a scrape each second seldom sees one.
TIMING: dict[str, str] = {
    "Live queues / Callers waiting over time / {{queue}}": "waits too short for the scrapes",
    "Live queues / Longest wait over time / {{queue}}": "waits too short for the scrapes",
}


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

    def values(self, expr: str, start: float) -> list[float]:
        """Every value of a range query from ``start`` to now, a second apart
        (what a graph panel draws)."""
        params = {"query": expr, "start": start, "end": time.time(), "step": 1}
        url = self.base + "query_range?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as resp:
            answer = json.loads(resp.read())
        assert answer["status"] == "success", (expr, answer)
        return [float(v) for series in answer["data"]["result"] for _, v in series["values"]]


@dataclass
class Live:
    api: Prometheus
    made: list[dict[str, Any]]  # the simulator's own record of the day's calls
    start: float  # host time pbxwatch started


def _configs(tmp: Path, ami: int, metrics: int) -> tuple[Path, Path]:
    config = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    config["ami"].update(port=ami, username="u", secret_env="SIM_SECRET")
    config["metrics"] = {"listen": f"127.0.0.1:{metrics}"}
    config["storage"] = {"data_dir": str(tmp / "data")}
    run = tmp / "pbxwatch.yaml"
    run.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    fast_rules = RULES.read_text(encoding="utf-8").replace("interval: 1m", "interval: 1s")
    (tmp / "rules.yml").write_text(fast_rules, encoding="utf-8")
    prom = tmp / "prometheus.yml"
    prom.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp / "rules.yml")],
        "scrape_configs": [{"job_name": "pbxwatch",
                            "static_configs": [{"targets": [f"127.0.0.1:{metrics}"]}]}],
    }), encoding="utf-8")  # fmt: skip
    return run, prom


def _counted(api: Prometheus) -> float:
    got = api.result("sum(pbxwatch_calls_total)")
    return float(got[0]["value"][1]) if got else 0.0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """pbxwatch simulate (one working day) -> pbxwatch run -> Prometheus."""
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus missing: run scripts/test.sh (it installs it)")
    tmp = tmp_path_factory.mktemp("prom")
    ami, metrics, prom = free_port(), free_port(), free_port()
    run_config, prom_config = _configs(tmp, ami, metrics)
    record = tmp / "record.jsonl"
    sim = pbxwatch("simulate", "--config", str(LAB_CONFIG), "--port", str(ami), "--username", "u",
                   "--secret-env", "SIM_SECRET", "--speed", str(SPEED), "--start", DAY.isoformat(),
                   "--days", "1", "--wait-for-client", "--record", str(record))  # fmt: skip
    run = pbxwatch("run", "--config", str(run_config), "--pbx-speed", str(SPEED))
    prometheus = ["prometheus", f"--config.file={prom_config}",
                  f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom}",
                  "--log.level=warn"]  # fmt: skip
    with (
        process(prometheus, tmp / "prometheus.log") as p,
        process(sim, tmp / "sim.log", RUN_ENV) as s,
    ):
        wait_for_port(prom, proc=p)
        wait_for_port(ami, proc=s)
        start = time.time()
        with process(run, tmp / "run.log", RUN_ENV) as r:
            wait_for_port(metrics, proc=r)
            api = Prometheus(prom)
            deadline = time.monotonic() + 60
            while not record.exists() and time.monotonic() < deadline:  # written at the day's end
                assert r.poll() is None, (tmp / "run.log").read_text()
                time.sleep(0.5)
            assert record.exists(), f"the simulated day did not end: see {tmp}"
            made = [json.loads(line) for line in record.read_text().splitlines()]
            while _counted(api) < len(made) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert _counted(api) == len(made), f"Prometheus never saw the whole day: see {tmp}"
            time.sleep(3.0)  # a few more scrapes and rule evaluations
            yield Live(api, made, start)


QUERIES = dashboard_queries()


@pytest.mark.parametrize(("where", "kind", "expr"), QUERIES, ids=[q[0] for q in QUERIES])
def test_every_dashboard_query_runs_and_has_data(
    live: Live, where: str, kind: str, expr: str
) -> None:
    """A graph over the whole run (range query), a stat or table now (instant)."""
    if kind == "timeseries":
        values = live.api.values(_fill(expr), live.start)
    else:
        values = [float(r["value"][1]) for r in live.api.result(_fill(expr))]
    has_data = any(v != 0 and not math.isnan(v) for v in values)  # a query that errs failed
    if where in TIMING:
        return
    if where in EXPECTED_EMPTY:
        assert not has_data, f"{where} has data now: remove it from EXPECTED_EMPTY"
    else:
        assert has_data, f"{where}: no data for {expr} -> {values[:20]}"


def test_expected_empty_names_real_panels() -> None:
    assert set(EXPECTED_EMPTY) | set(TIMING) <= {where for where, _, _ in QUERIES}


@pytest.mark.parametrize("rule", rules(), ids=[r.get("record") or r["alert"] for r in rules()])
def test_every_rule_has_data(live: Live, rule: dict[str, Any]) -> None:
    expr = rule["expr"]
    if "record" in rule:
        assert live.api.result(expr), f"recording rule {rule['record']}: no data"
        assert live.api.result(rule["record"]), f"{rule['record']} was never recorded"
        return
    live.api.result(expr)  # evaluates (empty while it does not fire)
    selectors = SELECTOR.findall(expr)
    assert selectors, f"alert {rule['alert']}: no series found in {expr}"
    for name, labels in selectors:
        assert live.api.result(name + labels), f"alert {rule['alert']}: no data for {name}{labels}"


def test_pbxwatch_counted_the_simulated_day(live: Live) -> None:
    """Spot checks through the whole chain: every call the simulator made,
    the queue counters, the process collector, no ``_created`` series."""
    api = live.api
    assert _counted(api) == len(live.made)
    inbound = api.result('sum(pbxwatch_calls_total{direction="inbound"})')
    assert float(inbound[0]["value"][1]) > 100
    assert float(api.result("pbxwatch_ami_up")[0]["value"][1]) == 1
    assert api.result('process_resident_memory_bytes{job="pbxwatch"}')
    assert api.result('{__name__=~"pbxwatch_.*_created"}') == []
    offered = api.result('pbxwatch_queue_offered_total{queue="kontaktcenter"}')
    assert float(offered[0]["value"][1]) > 10
