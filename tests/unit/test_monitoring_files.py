"""The monitoring folder as code: Prometheus' own checker and rule tests pass on it, and the
dashboards are what their builder writes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
PROMETHEUS = MONITORING / "prometheus"
sys.path.insert(0, str(MONITORING / "grafana"))

import build_dashboards  # noqa: E402


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is not installed: `apt-get install prometheus` (.ci/run does)")
    return subprocess.run([tool, *args], cwd=PROMETHEUS, capture_output=True, text=True,
                          timeout=60)


def test_the_scrape_configuration_and_the_alerting_rules_pass_promtool_check():
    for args in (("check", "config", "prometheus.yml"),
                 ("check", "config", "prometheus-compose.yml"),
                 ("check", "rules", "yujing-rules.yml")):
        done = promtool(*args)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_every_alerting_rule_has_a_promtool_unit_test_and_they_pass():
    done = promtool("test", "rules", "yujing-rules.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    rules = (PROMETHEUS / "yujing-rules.yml").read_text()
    tests = (PROMETHEUS / "yujing-rules.test.yml").read_text()
    for name in (line.split(":", 1)[1].strip() for line in rules.splitlines()
                 if line.strip().startswith("- alert:")):
        assert f"alertname: {name}" in tests, f"{name} has no promtool test"


def test_the_dashboards_are_what_the_builder_writes_and_name_the_provisioned_datasource():
    for name, text in build_dashboards.rendered().items():
        path = MONITORING / "grafana" / "dashboards" / name
        assert path.read_text(encoding="utf-8") == text, \
            f"{path} is stale: python monitoring/grafana/build_dashboards.py"
        board = json.loads(text)
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "yujing-prometheus"
            assert panel["targets"], panel["title"]
    provisioned = (MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text()
    assert "uid: yujing-prometheus" in provisioned
