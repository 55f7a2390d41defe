"""The monitoring files in deploy/: the alert rules pass `promtool check rules` and fire on
their unit tests (deploy/alerts.test.yml), and the Grafana dashboard and the rules query
only series that a running server serves at /metrics.

promtool is Debian's `prometheus` package, installed by deploy/apt-install.sh so that no
prometheus service starts.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.conftest import BASE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DASHBOARD = BASE / "deploy/grafana-dashboard.json"
ALERTS = BASE / "deploy/alerts.yml"
METRIC = re.compile(r"\brt_[a-z0-9_]+\b")


@pytest.fixture(scope="module")
def promtool() -> str:
    subprocess.run([str(BASE / "deploy/apt-install.sh"), "prometheus"], check=True, timeout=900)
    found = shutil.which("promtool")
    assert found, "promtool is missing after installing Debian's prometheus package"
    return found


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets (rows included) and variables."""
    found: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            found.extend(target["expr"] for target in panel.get("targets", []))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    found.extend(v["definition"] for v in dashboard["templating"]["list"] if v.get("type") == "query")
    return found


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_the_alert_rules_pass_promtool_and_each_fires_in_its_unit_test(promtool: str) -> None:
    checked = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert checked.returncode == 0 and f"SUCCESS: {len(rules())} rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", "alerts.test.yml"], cwd=ALERTS.parent, capture_output=True, text=True)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    cases = [case for test in yaml.safe_load((ALERTS.parent / "alerts.test.yml").read_text())["tests"]
             for case in test["alert_rule_test"]]
    for rule in rules():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{rule['alert']}: no unit test in which it fires"
        assert any(not case["exp_alerts"] for case in mine), f"{rule['alert']}: no unit test in which it stays quiet"


def test_the_alerts_cover_what_an_operator_must_hear_about() -> None:
    watched = {rule["alert"]: set(METRIC.findall(rule["expr"])) for rule in rules()}
    needed = {"rt_redis_up", "rt_recoveries_refused_total", "rt_archive_dead", "rt_archive_oldest_seconds",
              "rt_archive_queued", "rt_slow_consumers_closed_total"}
    assert needed <= set().union(*watched.values()), watched


def test_the_dashboard_shows_every_signal_and_each_panel_has_a_query() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    names = set(METRIC.findall(" ".join(queries(dashboard))))
    assert {
        "rt_connections", "rt_subscriptions", "rt_messages_delivered_total", "rt_publish_seconds_bucket",
        "rt_holes_filled_total", "rt_recoveries_refused_total", "rt_slow_consumers_closed_total",
        "rt_archive_queued", "rt_archive_dead", "rt_redis_up",
    } <= names, names
    assert any("histogram_quantile(0.99" in q for q in queries(dashboard))
    assert any("rate(rt_messages_delivered_total" in q for q in queries(dashboard))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_series_the_dashboard_and_alerts_query_is_served_at_metrics(start_server: Any) -> None:
    server = start_server("uvicorn")
    assert httpx.get(server.http + "/readyz", timeout=10).status_code == 200  # sets rt_redis_up
    scrape = httpx.get(server.http + "/metrics", timeout=10)  # from loopback: allowed by default
    assert scrape.status_code == 200, scrape.text
    served: set[str] = set()
    for line in scrape.text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            served.add(name)
            if kind == "histogram":
                served |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            if kind == "counter":
                served.add(name if name.endswith("_total") else f"{name}_total")
        elif line and not line.startswith("#"):
            served.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    asked = set(METRIC.findall(" ".join(queries(json.loads(DASHBOARD.read_text())))))
    asked |= {name for rule in rules() for name in METRIC.findall(rule["expr"])}
    assert asked and not asked - served, f"queried but not served: {sorted(asked - served)}"
