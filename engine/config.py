"""yujing's configuration: one file, the environment, then the command line.

Every command reads the same configuration, in increasing order of precedence:

1. a file, ``yujing.toml`` (or ``.yaml``), named by ``--config`` or ``YUJING_CONFIG``;
2. environment variables with the prefix ``YUJING_`` (``YUJING_KAFKA__USERNAME``: a double
   underscore goes one table down; a command's flag: ``YUJING_WORKER_BATCH_MAX``);
3. the command's flags.

The file holds the shared tables ``[kafka]`` (``engine.kafka_client.connection``) and
``[http]``, and one table per command whose keys are that command's flags (``[worker]``
``batch_max = 2000``; ``[dispatch]`` applies to every ``yujing dispatch`` command)::

    [kafka]
    bootstrap = "kafka-1:9093,kafka-2:9093"
    security_protocol = "SASL_SSL"
    username = "yujing-worker"
    password_file = "/run/secrets/kafka-password"
    ca_file = "/etc/yujing/kafka-ca.pem"

    [http]
    bind = "10.0.0.5"

    [worker]
    metrics_port = 9464

A secret is never taken from a flag or from the file (it would end up in shell histories,
process lists and configuration repositories): ``kafka.password_file`` or
``YUJING_KAFKA__PASSWORD``; ``personal_data.key_file`` or ``YUJING_PERSONAL_DATA__KEY`` (the
key personal data is hashed with, ``topics.personal_data``).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, InitSettingsSource, SettingsConfigDict

from engine.console.access import ConsoleUser
from engine.kafka_client.connection import KafkaConnection

COMMAND_TABLES = ("worker", "dispatch", "track", "console", "simulate", "create-topics",
                  "reference", "alerts", "report", "silence", "demo", "replay")
"""Tables of command flags the file may hold (named as the command is typed)."""
SHARED_TABLES = ("kafka", "http", "personal_data", "users")


class ConfigError(ValueError):
    """The configuration cannot be used: the message names the key and the cause."""


class HttpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bind: str = "127.0.0.1"
    """The address every HTTP endpoint (metrics, readiness, the console) listens on. Only
    this machine by default: ``0.0.0.0`` exposes them to every network the host is on."""


class PersonalDataSettings(BaseModel):
    """The key personal data is hashed with (``topics.personal_data``): the same in every
    process, so one driver is one token in every alert."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: SecretStr | None = None
    """From the environment (``YUJING_PERSONAL_DATA__KEY``) only; a file: ``key_file``."""
    key_file: Path | None = None

    @model_validator(mode="after")
    def _readable(self) -> PersonalDataSettings:
        if self.key_file is not None and not self.key_file.is_file():
            raise ValueError(f"personal_data.key_file: no such file: {self.key_file}")
        return self

    def secret(self) -> bytes | None:
        if self.key is not None:
            return self.key.get_secret_value().encode()
        if self.key_file is not None:
            return self.key_file.read_bytes().strip()
        return None


class YujingConfig(BaseSettings):
    """The effective configuration (``load_config`` builds it)."""

    model_config = SettingsConfigDict(env_prefix="YUJING_", env_nested_delimiter="__",
                                      extra="forbid", frozen=True)

    kafka: KafkaConnection = KafkaConnection()
    http: HttpSettings = HttpSettings()
    personal_data: PersonalDataSettings = PersonalDataSettings()
    users: list[ConsoleUser] = Field(default_factory=list)
    """The console's users (``[[users]]``: name, password_hash, role, area)."""
    commands: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per command (``worker``, ``create-topics``, …): flag name → value, from the file."""
    file: Path | None = None
    """The file read (None: none)."""


def read_file(path: Path) -> dict[str, Any]:
    """The file's tables, as read (TOML, or YAML for ``.yaml``/``.yml``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: "
                          f"{exc.strerror or exc}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        kind = "YAML" if path.suffix in (".yaml", ".yml") else "TOML"
        raise ConfigError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected tables of settings, found {type(data).__name__}")
    return data


def load_config(path: Path | None = None) -> YujingConfig:
    """The configuration from ``path`` (if any) and the environment; ``ConfigError`` names
    the first bad key."""
    data = read_file(path) if path is not None else {}
    where = str(path) if path is not None else "the environment"
    for table, secret in (("kafka", "password"), ("personal_data", "key")):
        if isinstance(data.get(table), dict) and secret in data[table]:
            raise ConfigError(f"{path}: {table}.{secret}: a secret does not go in the "
                              f"configuration file: put it in a file of its own "
                              f"({table}.{secret}_file) or in YUJING_{table.upper()}__"
                              f"{secret.upper()}")
    shared = {k: v for k, v in data.items() if k in SHARED_TABLES}
    commands: dict[str, dict[str, Any]] = {}
    for name, table in data.items():
        if name in SHARED_TABLES:
            continue
        if name not in COMMAND_TABLES:
            raise ConfigError(f"{path}: [{name}]: no such table (the file holds [kafka], "
                              f"[http], [personal_data], [[users]] and the commands' "
                              f"{', '.join(COMMAND_TABLES)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {name}: expected a table of the command's flags")
        commands[name] = {key.replace("-", "_"): value for key, value in table.items()}

    class FromFileThenEnvironment(YujingConfig):
        @classmethod
        def settings_customise_sources(cls, settings_cls: Any, init_settings: Any,
                                       env_settings: Any, dotenv_settings: Any,
                                       file_secret_settings: Any) -> tuple[Any, ...]:
            # First the strongest: the environment over the file.
            return (init_settings, env_settings,
                    InitSettingsSource(settings_cls, init_kwargs=shared))

    try:
        loaded = FromFileThenEnvironment(commands=commands, file=path)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration ({where} and YUJING_* variables): "
                          f"{_first_error(exc)}") from None
    return loaded


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    key = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "no such setting"
    shown = "" if error["type"] in ("value_error", "extra_forbidden", "missing") else (
        f" (got {error['input']!r})")
    more = len(exc.errors()) - 1
    return f"{key}: {message}{shown}" + (f" (and {more} more)" if more else "")


def shown(config: YujingConfig) -> str:
    """The configuration as a TOML file, secrets masked (``yujing config show``)."""
    lines = [f"# from {config.file or 'no file'}, the YUJING_* environment and defaults"]
    kafka = config.kafka.model_dump(mode="json")
    personal = config.personal_data.model_dump(mode="json")
    tables = [("[kafka]", _masked(kafka, "password")),
              ("[http]", config.http.model_dump(mode="json")),
              ("[personal_data]", _masked(personal, "key")),
              *((f"[{name}]", table) for name, table in sorted(config.commands.items())),
              *(("[[users]]", _masked(u.model_dump(mode="json"), "password_hash"))
                for u in config.users)]
    for header, table in tables:
        lines += ["", header]
        lines += [f"# {key} not set" if value is None else
                  f"{key} = {json.dumps(value, ensure_ascii=False)}"
                  for key, value in table.items()]
    return "\n".join(lines) + "\n"


def _masked(table: dict[str, Any], secret: str) -> dict[str, Any]:
    return {**table, secret: "********"} if table.get(secret) is not None else table
