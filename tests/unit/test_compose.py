"""docker-compose.yml, which no machine here can run: valid for docker-compose, its broker set
like engine/broker.py's single node, its Prometheus scraping the stack's services with the same
jobs and rules as monitoring/prometheus/prometheus.yml."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from engine.broker import KAFKA_VERSION, BrokerConfig, _server_properties

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
# Where the compose broker differs by design: its listeners, node and log directory.
HOST_SPECIFIC = {"process.roles", "node.id", "listeners", "advertised.listeners",
                 "controller.listener.names", "listener.security.protocol.map",
                 "controller.quorum.voters", "log.dirs"}


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_docker_compose_accepts_the_file_with_and_without_the_simulator_profile():
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is not installed: `apt-get install docker-compose` "
                    "(make tools does)")
    for extra in ((), ("--profile", "simulator")):
        done = subprocess.run([tool, "-f", str(COMPOSE), *extra, "config", "-q"],
                              capture_output=True, text=True, timeout=60, cwd=REPO)
        assert done.returncode == 0, done.stderr


def test_the_compose_broker_is_set_like_engine_broker_single_node():
    kafka = compose()["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    env = {key[len("KAFKA_"):].lower().replace("_", "."): str(value)
           for key, value in kafka["environment"].items() if key.startswith("KAFKA_")}
    ours = dict(line.split("=", 1) for line in _server_properties(BrokerConfig()).splitlines()
                if line and not line.startswith("#"))
    for key, value in ours.items():
        if key in HOST_SPECIFIC:
            continue
        assert env.get(key) == value, f"{key}: compose has {env.get(key)!r}, broker.py {value!r}"


def test_the_stack_s_prometheus_scrapes_its_services_with_the_local_jobs_and_rules():
    services = compose()["services"]
    local = yaml.safe_load((REPO / "monitoring/prometheus/prometheus.yml").read_text())
    stacked = yaml.safe_load((REPO / "monitoring/prometheus/prometheus-compose.yml").read_text())
    assert local["rule_files"] == stacked["rule_files"]
    local_jobs = {job["job_name"]: job["static_configs"][0]["targets"][0].rsplit(":", 1)[1]
                  for job in local["scrape_configs"]}
    for job in stacked["scrape_configs"]:
        host, port = job["static_configs"][0]["targets"][0].rsplit(":", 1)
        assert local_jobs[job["job_name"]] == port
        assert f"--metrics-port', '{port}'" in str(services[host]["command"]).replace('"', "'")
    mounted = " ".join(services["prometheus"]["volumes"])
    assert "prometheus-compose.yml:/etc/prometheus/prometheus.yml" in mounted
    assert "yujing-rules.yml:/etc/prometheus/yujing-rules.yml" in mounted
    assert re.search(r"url: http://prometheus:9090", (
        REPO / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text())


@pytest.mark.slow
def test_every_yujing_service_s_command_is_one_the_cli_takes():
    # The image's entrypoint is `yujing`: each command's flags must be ones it takes (their
    # values are checked when it runs: --help comes first).
    import sys

    services = compose()["services"]
    commands = {name: service["command"] for name, service in services.items()
                if service.get("image") == "yujing:local" and "entrypoint" not in service}
    assert set(commands) == {"topics", "worker", "dispatch", "track"}
    for name, command in commands.items():
        done = subprocess.run([sys.executable, "-m", "engine.cli", *command, "--help"],
                              capture_output=True, text=True, timeout=60, cwd=REPO)
        assert done.returncode == 0, (name, done.stdout, done.stderr)
    simulator = services["simulator"]["command"][0]
    assert simulator.startswith("exec yujing simulate --bootstrap kafka:9092")
    head = simulator.split("--start")[0].split()[2:]
    done = subprocess.run([sys.executable, "-m", "engine.cli", *head, "--help"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
