"""The whole loop over SASL_SSL with the ACLs in force, every part a real process with its own
principal, configured the way an operator would (``YUJING_KAFKA__*``, the password from a
file): an event → the worker's alert → dispatch's work order → a department's
acknowledgement and resolution (written as ``dept-fire``) → the tracker's scorecard. A wrong
password and an untrusted certificate each stop a service at once with one line."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.kafkakit import (
    REPO,
    dumps,
    produce,
    quick_ack_routes,
    read_until,
    run,
    wait_for_log,
    worker_process,
    yujing_process,
)
from tests.integration.secure_kit import Principal, SecureBroker
from tests.rulekit import FACILITY, rule_text

pytestmark = pytest.mark.broker


def as_principal(secure: SecureBroker, principal: Principal, ca_file: Path | None = None
                 ) -> dict[str, str]:
    """The environment a process of ``principal`` runs with."""
    return {"YUJING_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "YUJING_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
            "YUJING_KAFKA__USERNAME": principal.username,
            "YUJING_KAFKA__PASSWORD_FILE": str(principal.password_file),
            "YUJING_KAFKA__CA_FILE": str(ca_file or secure.ca_file)}


def latest(records: list[dict], field: str) -> dict[str, dict]:
    return {record[field]: record for record in records}


def test_event_to_scorecard_over_sasl_ssl_with_acls(secure_kafka: SecureBroker, tmp_path):
    secure = secure_kafka
    run_id = "s" + uuid.uuid4().hex[:8]
    model = f"e2e.{run_id}.level"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "level.yaml").write_text(rule_text(
        id=model, source=FACILITY, kind="threshold", severity="red",
        condition="level_pct >= 95", clear="level_pct < 90",
        summary="tank {tank_id} at {level_pct}%"), encoding="utf-8")
    routes = quick_ack_routes(tmp_path / "routes.yaml", f"e2e.{run_id}.*", "1h")
    tank = f"{run_id}-T"
    admin = secure.client_options(secure.admin)
    department = secure.client_options(secure.department)

    def event(n: int, **fields):
        return (FACILITY, tank.encode(), dumps({
            "event_id": f"{run_id}-{n}", "ts": time.time(), "tank_id": tank,
            "facility_id": f"{run_id}-F", "grid_id": f"{run_id}-G", "district": "xihu",
            **fields}))

    def ours(record):
        return run_id in str(record)

    logs = {name: tmp_path / f"{name}.log" for name in ("worker", "dispatch", "track")}
    with worker_process(secure.bootstrap, rules, "yujing", logs["worker"],
                        env=as_principal(secure, secure.worker)) as worker, \
            yujing_process(logs["dispatch"], "dispatch", "run", "--bootstrap", secure.bootstrap,
                           "--routes", str(routes), "--metrics-port", "0",
                           env=as_principal(secure, secure.dispatch)), \
            yujing_process(logs["track"], "track", "--bootstrap", secure.bootstrap,
                           "--every", "1s", "--metrics-port", "0",
                           env=as_principal(secure, secure.track)):
        wait_for_log(logs["worker"], "reference topics read to their end", worker)
        run(produce(secure.bootstrap, [event(1, level_pct=97.0)], client=admin))

        orders = run(read_until(secure.bootstrap, "dispatch.orders", wanted=ours,
                                done=lambda got: bool(got), timeout=90, client=admin))
        order = orders[-1]
        assert order["key"] == tank and model in order["model_ids"], orders
        for status in ("acknowledged", "resolved"):
            run(produce(secure.bootstrap, [("dispatch.feedback", order["order_id"].encode(),
                                            dumps({"order_id": order["order_id"],
                                                   "status": status,
                                                   "department": order["department"],
                                                   "at": time.time(), "by": "fire desk"}))],
                        client=department))
        run(produce(secure.bootstrap, [event(2, level_pct=80.0)], client=admin))

        def scored(got):
            return latest(got, "name").get(model, {}).get("resolved") == 1
        cards = latest(run(read_until(secure.bootstrap, "performance.scorecards", wanted=ours,
                                      done=scored, timeout=90, client=admin)), "name")

    alerts = run(read_until(secure.bootstrap, "alerts", wanted=ours,
                            done=lambda got: len(got) >= 2, timeout=30, client=admin))
    text = {name: log.read_text(errors="replace") for name, log in logs.items()}
    assert sorted((a["key"], a["state"]) for a in alerts) == [
        (tank, "firing"), (tank, "resolved")], text["worker"][-3000:]
    card = cards[model]
    assert (card["orders"], card["acknowledged"], card["resolved"]) == (1, 1, 1), text
    for principal in (secure.worker, secure.dispatch, secure.track):
        password = principal.password
        assert not any(password in log for log in text.values()), "a password was logged"
    assert not any("AuthorizationFailed" in log for log in text.values()), text


def _worker_exits(secure: SecureBroker, tmp_path: Path, env: dict[str, str]
                  ) -> tuple[subprocess.CompletedProcess[str], float]:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "level.yaml").write_text(rule_text(
        id="e2e.refused.level", source=FACILITY, kind="threshold",
        condition="level_pct >= 95"), encoding="utf-8")
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "engine.cli", "worker", "--rules", str(rules),
                           "--bootstrap", secure.bootstrap, "--app-id", "yujing",
                           "--metrics-port", "0"],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={"PATH": "/usr/bin:/bin", **env})
    return done, time.monotonic() - began


def test_a_wrong_password_stops_the_worker_at_once_with_one_line(secure_kafka, tmp_path):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    env = as_principal(secure_kafka, secure_kafka.worker) | {
        "YUJING_KAFKA__PASSWORD_FILE": str(wrong)}
    done, took = _worker_exits(secure_kafka, tmp_path, env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith(f"error: Kafka at {secure_kafka.bootstrap} refused user "
                                  "'yujing-worker' (SCRAM-SHA-512): wrong user name or "
                                  "password?"), done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) == 1 and "not-the-password" not in done.stderr
    assert took < 30, took  # not a retry loop (the process starts in a few seconds)


def test_an_untrusted_certificate_stops_the_worker_at_once_with_one_line(secure_kafka,
                                                                         tmp_path):
    other_key, other_ca = tmp_path / "other-key.pem", tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(other_key), "-out", str(other_ca), "-subj", "/CN=another CA",
                    "-days", "1"], check=True, capture_output=True)
    env = as_principal(secure_kafka, secure_kafka.worker, ca_file=other_ca)
    done, took = _worker_exits(secure_kafka, tmp_path, env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith(f"error: the certificate of Kafka at "
                                  f"{secure_kafka.bootstrap} is not trusted ("), done.stderr
    assert "kafka.ca_file names the CA that signed it" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert took < 30, took
