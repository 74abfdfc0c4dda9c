"""The secured broker's configuration, SCRAM arguments and ACL set, without a broker."""

from __future__ import annotations

import base64
import hashlib
import re
import stat

from engine import broker, broker_security
from engine.broker_security import (
    DISPATCH,
    TRACK,
    WORKER,
    BrokerSecurity,
    Op,
    acl_set,
    scram_arguments,
)
from topics.registry import ALERTS, DEADLETTER, EVENT_TOPICS, FEEDBACK


def secured(tmp_path) -> broker.BrokerConfig:
    return broker.BrokerConfig(port=29101, controller_port=29102, home=tmp_path,
                               security=BrokerSecurity(sasl_port=29103))


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines()
             if line.strip() and not line.startswith("#"))
    found: dict[str, str] = {}
    for key, value in pairs:
        assert key not in found, f"{key} set twice"
        found[key] = value
    return found


def test_plain_broker_properties_unchanged(tmp_path):
    props = properties(broker._server_properties(broker.BrokerConfig(home=tmp_path)))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert "authorizer.class.name" not in props
    assert not (tmp_path / "security").exists()


def test_secured_broker_properties(tmp_path):
    cfg = secured(tmp_path)
    props = properties(broker._server_properties(cfg))
    assert props["listeners"] == ("PLAINTEXT://127.0.0.1:29101,CONTROLLER://127.0.0.1:29102,"
                                  "SASL_SSL://127.0.0.1:29103")
    assert props["advertised.listeners"] == ("PLAINTEXT://127.0.0.1:29101,"
                                             "SASL_SSL://127.0.0.1:29103")
    assert props["listener.security.protocol.map"] == (
        "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL")
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN"
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:ANONYMOUS;User:yujing-admin"
    assert props["ssl.keystore.type"] == "PEM"
    keystore = tmp_path / "security" / "broker-keystore.pem"
    assert props["ssl.keystore.location"] == str(keystore)
    assert re.findall(r"-----BEGIN (\w+ ?\w*)-----", keystore.read_text()) == [
        "PRIVATE KEY", "CERTIFICATE", "CERTIFICATE"]
    # PLAIN knows every user, with the password of its file.
    jaas = props["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    for user in cfg.security.users:
        assert f'user_{user}="{broker_security.password(tmp_path, user)}"' in jaas
    for name in ("ca.key", "broker-keystore.pem", "passwords/yujing-worker.password"):
        assert stat.S_IMODE((tmp_path / "security" / name).stat().st_mode) == 0o600, name


def test_tls_and_passwords_made_once(tmp_path):
    cfg = secured(tmp_path)
    broker._server_properties(cfg)
    ca = broker_security.ca_file(tmp_path).read_bytes()
    secret = broker_security.password(tmp_path, WORKER)
    broker._server_properties(cfg)
    assert broker_security.ca_file(tmp_path).read_bytes() == ca
    assert broker_security.password(tmp_path, WORKER) == secret


def test_scram_arguments_are_salted_passwords(tmp_path):
    cfg = secured(tmp_path)
    args = scram_arguments(cfg)
    users = cfg.security.users
    assert args[::2] == ["--add-scram"] * (2 * len(users))
    for user in users:
        assert broker_security.password(tmp_path, user) not in " ".join(args)
    worker = [a for a in args[1::2] if f"name={WORKER}," in a]
    assert [a.split("=", 1)[0] for a in worker] == ["SCRAM-SHA-256", "SCRAM-SHA-512"]
    fields = dict(re.findall(r'(\w+)="?([^",\]]+)', worker[1].split("=", 1)[1]))
    salted = hashlib.pbkdf2_hmac("sha512", broker_security.password(tmp_path, WORKER).encode(),
                                 base64.b64decode(fields["salt"]), int(fields["iterations"]))
    assert base64.b64decode(fields["saltedpassword"]) == salted


def allowed(principal: str, security: BrokerSecurity | None = None) -> dict[str, set[Op]]:
    """``principal``'s topic operations by topic name (prefixed names end with ``*``)."""
    found: dict[str, set[Op]] = {}
    for rule in acl_set(security or BrokerSecurity())[principal]:
        if rule.resource == "topic":
            name = rule.name + ("*" if rule.pattern == "prefixed" else "")
            found.setdefault(name, set()).update(rule.operations)
    return found


def test_department_may_only_write_feedback():
    assert allowed("dept-fire") == {FEEDBACK.name: {Op.WRITE}}
    assert [r.resource for r in acl_set(BrokerSecurity())["dept-fire"]] == ["topic"]


def test_worker_acls():
    worker = allowed(WORKER)
    for topic in EVENT_TOPICS:
        assert Op.READ in worker[topic] and Op.WRITE not in worker[topic]
    assert Op.WRITE in worker[ALERTS.name] and Op.READ not in worker[ALERTS.name]
    assert Op.READ not in worker[DEADLETTER.name]  # restricted: original bytes
    assert {Op.CREATE, Op.READ, Op.WRITE} <= worker["yujing-*"]
    groups = [r for r in acl_set(BrokerSecurity())[WORKER] if r.resource == "group"]
    assert [(g.name, g.pattern) for g in groups] == [("yujing", "literal")]
    other = allowed(WORKER, BrokerSecurity(worker_app_id="city-a"))
    assert "city-a-*" in other and "yujing-*" not in other


def test_dispatch_and_track_acls():
    dispatch, track = allowed(DISPATCH), allowed(TRACK)
    assert Op.WRITE not in dispatch[ALERTS.name] and Op.READ in dispatch[FEEDBACK.name]
    assert Op.WRITE in dispatch["dispatch.orders"] and Op.WRITE in dispatch["incidents"]
    assert Op.WRITE in track["performance.scorecards"]
    assert all(Op.WRITE not in ops for name, ops in track.items()
               if name != "performance.scorecards")
    assert not any(name.startswith("events.") for name in track)


def test_groups_are_the_services_own():
    import dataclasses

    from engine.dispatch.service import DispatchSettings
    from engine.worker.settings import WorkerSettings

    groups = {principal: [r.name for r in rules if r.resource == "group"]
              for principal, rules in acl_set(BrokerSecurity()).items()}
    assert groups[WORKER] == [WorkerSettings().app_id]
    dispatch_group = {f.name: f.default for f in dataclasses.fields(DispatchSettings)}["group_id"]
    assert groups[DISPATCH] == [dispatch_group]
    assert groups[TRACK] == []  # it reads whole topics outside any group
