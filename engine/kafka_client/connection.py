"""How every yujing process connects to Kafka: the bootstrap servers and the security of the
connection (TLS, SASL), as aiokafka options and as Faust's broker credentials.

A process talks to one cluster with one identity, so the connection is set once when the
command starts (``use``) and every client the process makes takes its options from
``client_options``; a command's ``--bootstrap`` still names the servers per call. The
password comes from a file or the environment, never from a flag, and never appears in a
``repr``, a log line or ``yujing config show`` (``SecretStr``).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaConnection(BaseModel):
    """The cluster and how to reach it.

    >>> KafkaConnection().client_options()
    {'bootstrap_servers': '127.0.0.1:9092', 'security_protocol': 'PLAINTEXT'}
    >>> KafkaConnection(security_protocol="SASL_PLAINTEXT", username="yujing-worker")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for KafkaConnection
      Value error, security_protocol SASL_PLAINTEXT needs kafka.username and a password \
(kafka.password_file, or the environment variable YUJING_KAFKA__PASSWORD) [...]
    ...
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bootstrap: str = "127.0.0.1:9092"
    """HOST:PORT[,HOST:PORT...] of the cluster's brokers."""
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = None
    """From the environment (``YUJING_KAFKA__PASSWORD``) only; a file: ``password_file``."""
    password_file: Path | None = None
    ca_file: Path | None = None
    """PEM certificates to trust for the brokers (default: the system's)."""
    cert_file: Path | None = None
    """PEM client certificate (mutual TLS), with ``key_file``."""
    key_file: Path | None = None

    @model_validator(mode="after")
    def _complete(self) -> KafkaConnection:
        if self.sasl and (not self.username
                          or (self.password is None and self.password_file is None)):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs kafka.username and a "
                "password (kafka.password_file, or the environment variable "
                "YUJING_KAFKA__PASSWORD)")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("kafka.cert_file and kafka.key_file go together")
        for name in ("password_file", "ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"kafka.{name}: no such file: {path}")
        return self

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def secret(self) -> str:
        """The password (the file's first line, or the environment's value)."""
        if self.password is not None:
            return self.password.get_secret_value()
        assert self.password_file is not None
        lines = self.password_file.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file else None)
        if self.cert_file and self.key_file:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context

    def client_options(self, bootstrap: str | None = None) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        return {"bootstrap_servers": bootstrap or self.bootstrap, **self.security_options()}

    def security_options(self) -> dict[str, Any]:
        """The TLS and SASL keyword arguments alone (also aiokafka's ``create_conn``)."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        if self.sasl:
            options |= {"sasl_mechanism": self.sasl_mechanism,
                        "sasl_plain_username": self.username,
                        "sasl_plain_password": self.secret()}
        return options

    def faust_credentials(self) -> Any:
        """Faust's ``broker_credentials`` (None: PLAINTEXT)."""
        import faust

        if self.sasl:
            return faust.SASLCredentials(username=self.username, password=self.secret(),
                                         ssl_context=self.ssl_context(),
                                         mechanism=self.sasl_mechanism)
        if self.tls:
            return faust.SSLCredentials(self.ssl_context())
        return None


_current = KafkaConnection()


def use(connection: KafkaConnection) -> None:
    """Make ``connection`` this process's (the CLI does, from the configuration)."""
    global _current
    _current = connection


def current() -> KafkaConnection:
    return _current


def client_options(bootstrap: str | None = None) -> dict[str, Any]:
    """aiokafka options for this process's connection, to ``bootstrap`` if given."""
    return _current.client_options(bootstrap)
