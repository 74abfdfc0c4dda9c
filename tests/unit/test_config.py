"""One configuration for every command (engine.config): a file, then YUJING_* variables, then
flags; a bad key is one line naming it; secrets never shown; endpoints on loopback by default."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine import metrics
from engine.cli import app
from engine.config import ConfigError, load_config
from engine.kafka_client.connection import KafkaConnection

REPO = Path(__file__).resolve().parents[2]


def yujing(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env or {})
    return result.exit_code, result.output


def write(tmp_path: Path, text: str, name: str = "yujing.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch):
    for name in ("YUJING_CONFIG", "YUJING_BOOTSTRAP", "YUJING_KAFKA__PASSWORD",
                 "YUJING_REPLAY_RULES", "YUJING_HTTP__BIND"):
        monkeypatch.delenv(name, raising=False)


def test_a_flag_beats_the_environment_which_beats_the_file(tmp_path):
    config = write(tmp_path, '[replay]\nrules = ["rules-from-file"]\n')
    events = write(tmp_path, "", "events.jsonl")
    said = {}
    for case, env, flags in (("file", {}, []),
                             ("env", {"YUJING_REPLAY_RULES": "rules-from-env"}, []),
                             ("flag", {"YUJING_REPLAY_RULES": "rules-from-env"},
                              ["--rules", "rules-from-flag"])):
        code, out = yujing("--config", str(config), "replay", str(events), *flags, env=env)
        assert code == 1
        said[case] = out
    assert "no valid rule file in rules-from-file" in said["file"]
    assert "no valid rule file in rules-from-env" in said["env"]
    assert "no valid rule file in rules-from-flag" in said["flag"]


def test_the_file_may_be_named_by_yujing_config_and_be_yaml(tmp_path):
    config = write(tmp_path, "replay:\n  rules: [rules-from-yaml]\n", "yujing.yaml")
    events = write(tmp_path, "", "events.jsonl")
    code, out = yujing("replay", str(events), env={"YUJING_CONFIG": str(config)})
    assert code == 1 and "no valid rule file in rules-from-yaml" in out


@pytest.mark.parametrize(("text", "named"), [
    ("[worker]\nbatch_maxx = 3\n", "worker.batch_maxx: no such setting for yujing worker"),
    ("[wroker]\nbatch_max = 3\n", "[wroker]: no such table"),
    ('[kafka]\nsecurity_protocol = "SASL"\n', "kafka.security_protocol: Input should be"),
    ('[kafka]\nsecurity_protocol = "SASL_SSL"\n', "needs kafka.username and a password"),
    ('[kafka]\nsecurity_protocol = "SSL"\nca_file = "/nowhere/ca.pem"\n',
     "kafka.ca_file: no such file: /nowhere/ca.pem"),
    ('[kafka]\nusername = "u"\npassword = "hunter2"\n',
     "kafka.password: a secret does not go in the"),
    ('[kafka]\nbootstrapp = "x:1"\n', "kafka.bootstrapp: no such setting"),
    ("[worker\n", "not valid TOML"),
])
def test_bad_configuration_is_one_line_naming_the_key(tmp_path, text, named):
    config = write(tmp_path, text)
    code, out = yujing("--config", str(config), "validate", str(REPO / "rules/hazchem"))
    assert code == 2
    assert out.startswith("error: ") and named in out, out
    assert "hunter2" not in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1


def test_a_bad_environment_variable_is_named_too(tmp_path):
    code, out = yujing("validate", env={"YUJING_KAFKA__SECURITY_PROTOCOL": "TLS"})
    assert code == 2 and "kafka.security_protocol" in out and "'TLS'" in out


def test_config_show_prints_the_effective_values_and_masks_the_password(tmp_path):
    secret = write(tmp_path, "s3cret-from-file\n", "password")
    config = write(tmp_path, f'[kafka]\nbootstrap = "k1:9093"\nsecurity_protocol = '
                             f'"SASL_PLAINTEXT"\nusername = "yujing-worker"\n'
                             f'password_file = "{secret}"\n[worker]\nbatch_max = 77\n')
    code, out = yujing("--config", str(config), "config", "show",
                       env={"YUJING_KAFKA__BOOTSTRAP": "k2:9093",
                            "YUJING_KAFKA__PASSWORD": "s3cret-from-env"})
    assert code == 0, out
    assert 'bootstrap = "k2:9093"' in out  # the environment over the file
    assert 'username = "yujing-worker"' in out and "batch_max = 77" in out
    assert 'password = "********"' in out
    assert "s3cret" not in out


def test_the_password_comes_from_its_file_or_the_environment_and_is_never_shown(tmp_path):
    secret = write(tmp_path, "from-the-file\n", "password")
    connection = KafkaConnection(security_protocol="SASL_PLAINTEXT", username="u",
                                 password_file=secret, sasl_mechanism="SCRAM-SHA-256")
    options = connection.client_options("b:9092")
    assert options["sasl_plain_password"] == "from-the-file"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    with_env = KafkaConnection(security_protocol="SASL_PLAINTEXT", username="u",
                               password="from-env")  # type: ignore[arg-type]
    assert with_env.client_options()["sasl_plain_password"] == "from-env"
    assert "from-env" not in repr(with_env) and "from-env" not in str(with_env.model_dump())


def test_no_command_takes_a_password_flag():
    from typer.main import get_command

    from engine.cli.configured import _leaves

    for path, command in _leaves(get_command(app)):
        names = {opt for p in command.params for opt in getattr(p, "opts", [])}
        assert not any("password" in n or "secret" in n for n in names), (path, names)


def test_tls_settings_make_an_ssl_context_trusting_the_ca_file(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-subj", "/CN=yujing-test-ca", "-days", "1"],
                   check=True, capture_output=True)
    connection = KafkaConnection(security_protocol="SSL", ca_file=cert, cert_file=cert,
                                 key_file=key)
    options = connection.client_options()
    context = options["ssl_context"]
    assert options["security_protocol"] == "SSL"
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName",
                                                                  "yujing-test-ca"),),)]
    credentials = connection.faust_credentials()
    assert type(credentials).__name__ == "SSLCredentials"


def test_sasl_over_tls_gives_faust_sasl_credentials_with_the_mechanism(tmp_path):
    connection = KafkaConnection(security_protocol="SASL_SSL", username="w",
                                 password="p")  # type: ignore[arg-type]
    credentials = connection.faust_credentials()
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.username == "w" and "p" not in repr(credentials)


def test_the_file_and_environment_load_without_the_command_line(tmp_path, monkeypatch):
    config = write(tmp_path, '[http]\nbind = "10.0.0.5"\n[kafka]\nbootstrap = "a:1"\n')
    monkeypatch.setenv("YUJING_HTTP__BIND", "10.0.0.6")
    loaded = load_config(config)
    assert (loaded.http.bind, loaded.kafka.bootstrap) == ("10.0.0.6", "a:1")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_metrics_listen_on_loopback_unless_told_otherwise():
    port = _free_port()
    server = metrics.serve(port, registry=metrics.TRACKING)
    assert server is not None
    try:
        assert server.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            assert reply.status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_every_service_command_binds_metrics_to_the_configured_address(tmp_path):
    from typer.main import get_command

    from engine.cli.configured import default_map

    config = load_config(write(tmp_path, '[http]\nbind = "10.0.0.5"\n'))
    defaults = default_map(get_command(app), config)
    assert defaults["worker"]["metrics_host"] == "10.0.0.5"
    assert defaults["track"]["metrics_host"] == "10.0.0.5"
    assert defaults["dispatch"]["run"]["metrics_host"] == "10.0.0.5"
    for command in (["worker"], ["track"], ["dispatch", "run"]):
        done = subprocess.run([sys.executable, "-m", "engine.cli", *command, "--help"],
                              capture_output=True, text=True, cwd=REPO, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
        assert "--metrics-host" in done.stdout and "127.0.0.1" in done.stdout, done.stdout


@pytest.mark.slow
def test_simulate_sends_to_the_configured_kafka_unless_told_to_write_a_file(tmp_path):
    port = _free_port()  # nothing listens there
    config = write(tmp_path, f'[kafka]\nbootstrap = "127.0.0.1:{port}"\n')
    base = [sys.executable, "-m", "engine.cli", "--config", str(config), "simulate",
            "--duration", "10m", "--department", "police"]
    env = {"PATH": "/usr/bin:/bin", "YUJING_BOOTSTRAP": f"127.0.0.1:{port}"}
    to_kafka = subprocess.run(base, capture_output=True, text=True, cwd=REPO, timeout=120,
                              env={"PATH": "/usr/bin:/bin"})
    assert to_kafka.returncode == 2
    assert f"cannot reach Kafka at 127.0.0.1:{port}" in to_kafka.stderr, to_kafka.stderr
    events = tmp_path / "events.jsonl"
    to_file = subprocess.run([*base, "--out", str(events)], capture_output=True, text=True,
                             cwd=REPO, timeout=120, env=env)
    assert to_file.returncode == 0 and to_file.stdout.startswith("wrote "), to_file.stderr
    assert events.stat().st_size > 0


def test_a_time_zone_that_does_not_exist_is_one_line_naming_yujing_tz():
    done = subprocess.run([sys.executable, "-m", "engine.cli", "config", "show"],
                          capture_output=True, text=True, cwd=REPO, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "YUJING_TZ": "Mars/Olympus"})
    assert done.returncode == 2
    assert done.stderr == "error: YUJING_TZ='Mars/Olympus' is not a time zone (e.g. " \
                          "Asia/Shanghai)\n"


def test_the_personal_data_key_comes_from_its_file_and_is_never_shown(tmp_path, monkeypatch):
    from topics import personal_data

    monkeypatch.setattr(personal_data, "_key_configured", None)
    personal_data.configured_key.cache_clear()
    key_file = write(tmp_path, "the-city-s-key\n", "key")
    config = write(tmp_path, f'[personal_data]\nkey_file = "{key_file}"\n')
    try:
        code, out = yujing("--config", str(config), "config", "show")
        assert code == 0 and f'key_file = "{key_file}"' in out
        assert personal_data.configured_key() == b"the-city-s-key"
        assert personal_data.hash_token("D1") == personal_data.hash_token(
            "D1", key=b"the-city-s-key") != personal_data.hash_token(
            "D1", key=personal_data.DEVELOPMENT_KEY)
        code, out = yujing("config", "show", env={"YUJING_PERSONAL_DATA__KEY": "from-env"})
        assert code == 0 and 'key = "********"' in out and "from-env" not in out
    finally:
        personal_data.configured_key.cache_clear()
