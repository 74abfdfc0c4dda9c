"""The local broker secured: a SASL_SSL listener, SCRAM users, TLS material and ACLs.

``BrokerConfig(security=BrokerSecurity())`` makes ``engine.broker`` start a broker with, beside
its PLAINTEXT listener on 127.0.0.1 (controller link and inter-broker traffic; its principal
``User:ANONYMOUS`` is a super user because the KRaft controller must accept the broker's
registration before any ACL exists), a SASL_SSL listener for clients:

- SCRAM-SHA-256 and SCRAM-SHA-512 for every user, created when the storage is formatted (KRaft
  keeps SCRAM credentials in its metadata log); PLAIN too, from the listener's JAAS entry.
- A CA and a broker certificate for ``localhost``/``127.0.0.1`` made with the ``openssl`` CLI
  under ``home/security`` (kept across restarts, so clients keep trusting the same CA).
- Passwords generated once, one file (mode 0600) per user under ``home/security/passwords``.
- ``StandardAuthorizer`` with nothing allowed without an ACL; ``acl_set`` below is what each
  principal may do, applied by ``apply_acls`` at every start.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import os
import secrets
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from engine.kafka_client.connection import KafkaConnection, SaslMechanism
from topics.registry import (
    ALERTS,
    DEADLETTER,
    EVENT_TOPICS,
    FEEDBACK,
    INCIDENTS,
    ORDERS,
    REFERENCE_TOPICS,
    SCORECARDS,
    SILENCES,
)

if TYPE_CHECKING:
    from engine.broker import BrokerConfig

SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
SCRAM_ITERATIONS = 8192
CERT_DAYS = 365

ADMIN = "yujing-admin"
WORKER = "yujing-worker"
DISPATCH = "yujing-dispatch"
TRACK = "yujing-track"
DISPATCH_GROUP = "yujing-dispatch"
"""The dispatch service's consumer group (``DispatchSettings.group_id``)."""


class BrokerSecurity(BaseModel):
    """What a secured broker adds to ``BrokerConfig``."""

    sasl_port: int = 9094
    """The SASL_SSL client listener's port (on ``BrokerConfig.host``)."""
    admin: str = ADMIN
    """Super user: creates topics, applies the ACLs, runs the operator's commands."""
    worker_app_id: str = "yujing"
    """The worker's Faust app id: its consumer group, and the prefix of its own topics."""
    departments: list[str] = ["dept-fire"]
    """Principals of department systems that may only send feedback."""

    @property
    def users(self) -> list[str]:
        return [self.admin, WORKER, DISPATCH, TRACK, *self.departments]


class Op(IntEnum):
    """Kafka's ``AclOperation`` codes (the wire protocol's numbers)."""

    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8
    DESCRIBE_CONFIGS = 10


_RESOURCE_TYPES = {"topic": 2, "group": 3}
_PATTERN_TYPES = {"literal": 3, "prefixed": 4}
_ALLOW = 3


class AclRule(BaseModel):
    """One principal allowed ``operations`` on the resources a name or prefix designates."""

    resource: Literal["topic", "group"]
    name: str
    pattern: Literal["literal", "prefixed"] = "literal"
    operations: tuple[Op, ...]


READS = (Op.READ, Op.DESCRIBE, Op.DESCRIBE_CONFIGS)
WRITES = (Op.WRITE, Op.DESCRIBE, Op.DESCRIBE_CONFIGS)
READ_WRITE = (Op.READ, Op.WRITE, Op.DESCRIBE, Op.DESCRIBE_CONFIGS)
GROUP = (Op.READ, Op.DESCRIBE)


def _topics(names: list[str], operations: tuple[Op, ...]) -> list[AclRule]:
    return [AclRule(resource="topic", name=n, operations=operations) for n in names]


def acl_set(security: BrokerSecurity) -> dict[str, list[AclRule]]:
    """Every principal's ACLs (the admin is a super user and needs none).

    Department topics are named one by one from the registry, not as the prefix ``events.``:
    that prefix also covers ``events.deadletter``, which keeps rejected records' original bytes
    and is restricted to the processes that write it (and the admin)."""
    app = security.worker_app_id
    worker = [
        *_topics(list(EVENT_TOPICS), READS),
        *_topics([*REFERENCE_TOPICS, SILENCES.name], READS),
        *_topics([ALERTS.name, DEADLETTER.name], WRITES),
        # Faust's own topics (repartition, changelogs, __assignor-__leader) and yujing's
        # re-keying topic are all named "<app id>-...", and the worker creates them itself.
        AclRule(resource="topic", name=f"{app}-", pattern="prefixed",
                operations=(*READ_WRITE, Op.CREATE)),
        AclRule(resource="group", name=app, operations=GROUP),  # Faust's group is the app id
    ]
    dispatch = [
        *_topics([ALERTS.name, FEEDBACK.name], READS),
        # Its state: written as it dispatches, read whole when it restarts.
        *_topics([ORDERS.name, INCIDENTS.name], READ_WRITE),
        *_topics([DEADLETTER.name], WRITES),  # feedback it cannot read
        AclRule(resource="group", name=DISPATCH_GROUP, operations=GROUP),
    ]
    track = [
        *_topics([ALERTS.name, ORDERS.name, FEEDBACK.name], READS),
        # Read back at start to remove the scorecards of names that are gone.
        *_topics([SCORECARDS.name], READ_WRITE),
    ]
    department = [AclRule(resource="topic", name=FEEDBACK.name, operations=(Op.WRITE,))]
    return {WORKER: worker, DISPATCH: dispatch, TRACK: track,
            **{name: department for name in security.departments}}


# -- files under home/security -------------------------------------------------------------


def security_dir(home: Path) -> Path:
    return home / "security"


def ca_file(home: Path) -> Path:
    """The CA clients trust (``ssl_context`` / ``ssl.truststore``)."""
    return security_dir(home) / "ca.pem"


def password_file(home: Path, user: str) -> Path:
    return security_dir(home) / "passwords" / f"{user}.password"


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file nobody else can read, not even for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def password(home: Path, user: str) -> str:
    """``user``'s password, generated the first time it is asked for."""
    path = password_file(home, user)
    if not path.is_file():
        _private_dir(path.parent)
        _write_private(path, secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def _openssl(*args: str, cwd: Path) -> None:
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed:\n{res.stderr}")


def ensure_tls(home: Path, host: str) -> Path:
    """A CA and a broker certificate signed by it (SAN localhost, 127.0.0.1 and ``host``), made
    once; return the broker's PEM keystore (its key, its certificate, the CA)."""
    folder = _private_dir(security_dir(home))
    keystore = folder / "broker-keystore.pem"
    if keystore.is_file() and ca_file(home).is_file():
        return keystore
    san = ["DNS:localhost", "IP:127.0.0.1"]
    try:
        san.append(f"IP:{ipaddress.ip_address(host)}")
    except ValueError:
        san.append(f"DNS:{host}")
    # Extensions a strict verifier (Python 3.13's VERIFY_X509_STRICT, Java) asks for.
    (folder / "ca.ext").write_text(
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\n")
    (folder / "broker.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
        f"subjectAltName={','.join(dict.fromkeys(san))}\n")
    old = os.umask(0o077)  # the keys are born private
    try:
        for name, subject in (("ca", "/CN=yujing local CA"), ("broker", "/CN=localhost")):
            _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                     "-out", f"{name}.csr", "-subj", subject, cwd=folder)
        _openssl("x509", "-req", "-in", "ca.csr", "-signkey", "ca.key", "-out", "ca.pem",
                 "-days", str(CERT_DAYS), "-extfile", "ca.ext", cwd=folder)
        _openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", "broker.crt", "-days", str(CERT_DAYS),
                 "-extfile", "broker.ext", cwd=folder)
    finally:
        os.umask(old)
    ca_file(home).chmod(0o644)  # a certificate, for every client to read
    # Kafka's PEM keystore: the (PKCS#8, unencrypted) key, then the chain up to the CA.
    _write_private(keystore, "".join((folder / n).read_text()
                                     for n in ("broker.key", "broker.crt", "ca.pem")))
    for name in ("ca.csr", "broker.csr", "ca.ext", "broker.ext", "ca.srl"):
        (folder / name).unlink(missing_ok=True)
    return keystore


# -- server.properties and storage format --------------------------------------------------


def listener(cfg: BrokerConfig) -> str:
    assert cfg.security is not None
    return f"SASL_SSL://{cfg.host}:{cfg.security.sasl_port}"


def server_properties(cfg: BrokerConfig) -> str:
    """What a secured broker's server.properties adds to (and overrides in) the plain one."""
    security = cfg.security
    assert security is not None
    keystore = ensure_tls(cfg.home, cfg.host)
    plain_users = " ".join(f'user_{u}="{password(cfg.home, u)}"' for u in security.users)
    plain_jaas = (f'org.apache.kafka.common.security.plain.PlainLoginModule required '
                  f'{plain_users};')
    scram_jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    lines = [
        "# -- security (engine/broker_security.py)",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
        "SASL_SSL:SASL_SSL",
        "inter.broker.listener.name=PLAINTEXT",
        "sasl.enabled.mechanisms=" + ",".join((*SCRAM_MECHANISMS, "PLAIN")),
        *(f"listener.name.sasl_ssl.{m.lower()}.sasl.jaas.config={scram_jaas}"
          for m in SCRAM_MECHANISMS),
        # PLAIN checks passwords against this JAAS entry: the file is mode 0600.
        f"listener.name.sasl_ssl.plain.sasl.jaas.config={plain_jaas}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={keystore}",
        "ssl.client.auth=none",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        # ANONYMOUS: the PLAINTEXT controller link and broker listener on 127.0.0.1 (see the
        # module's docstring).
        f"super.users=User:ANONYMOUS;User:{security.admin}",
    ]
    return "\n".join(lines) + "\n"


def scram_arguments(cfg: BrokerConfig) -> list[str]:
    """``kafka-storage format`` arguments creating every user for both SCRAM mechanisms, given
    as salted passwords: the plain passwords never appear on a command line."""
    assert cfg.security is not None
    args: list[str] = []
    for user in cfg.security.users:
        secret = password(cfg.home, user).encode()
        for mechanism in SCRAM_MECHANISMS:
            digest = "sha256" if mechanism.endswith("256") else "sha512"
            salt = secrets.token_bytes(16)
            salted = hashlib.pbkdf2_hmac(digest, secret, salt, SCRAM_ITERATIONS)
            b64 = base64.b64encode
            args += ["--add-scram", f'{mechanism}=[name={user},iterations={SCRAM_ITERATIONS},'
                     f'salt="{b64(salt).decode()}",saltedpassword="{b64(salted).decode()}"]']
    return args


def users_file(home: Path) -> Path:
    """The users the storage was formatted with (SCRAM users exist only from format time)."""
    return security_dir(home) / "scram-users"


def check_formatted_users(cfg: BrokerConfig) -> None:
    """Refuse a store formatted without some of the users: they could never log in."""
    assert cfg.security is not None
    path = users_file(cfg.home)
    have = set(path.read_text().split()) if path.is_file() else set()
    missing = [u for u in cfg.security.users if u not in have]
    if missing:
        raise RuntimeError(
            f"the broker's data in {cfg.home / 'data'} was formatted without the SCRAM users "
            f"{', '.join(missing)}: stop the broker and delete {cfg.home / 'data'} (or use "
            f"another home) to start it secured")


# -- clients and ACLs ----------------------------------------------------------------------


def connection_as(cfg: BrokerConfig, user: str, mechanism: SaslMechanism = "SCRAM-SHA-512"
                  ) -> KafkaConnection:
    """The connection to the SASL_SSL listener as ``user``, as a yujing process configures it
    (``[kafka]``: the password from its file, the generated CA trusted)."""
    password(cfg.home, user)  # made at the first start; here for certain
    return KafkaConnection(bootstrap=listener(cfg).removeprefix("SASL_SSL://"),
                           security_protocol="SASL_SSL", sasl_mechanism=mechanism,
                           username=user, password_file=password_file(cfg.home, user),
                           ca_file=ca_file(cfg.home))


def acl_bindings(security: BrokerSecurity) -> Iterator[tuple[int, str, int, str, str, int, int]]:
    """``acl_set`` as CreateAcls v1 creations: (resource type, name, pattern type, principal,
    host, operation, permission)."""
    for principal, rules in acl_set(security).items():
        for rule in rules:
            for op in rule.operations:
                yield (_RESOURCE_TYPES[rule.resource], rule.name, _PATTERN_TYPES[rule.pattern],
                       f"User:{principal}", "*", int(op), _ALLOW)


async def _create_acls(cfg: BrokerConfig) -> int:
    # aiokafka 0.14 has the CreateAcls request but no admin method for it: send it ourselves
    # (v1, the newest aiokafka knows, which Kafka 4.4 takes) as the admin user, over SASL_SSL.
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.protocol.admin import CreateAclsRequest_v1
    from aiokafka.protocol.api import Request

    assert cfg.security is not None
    creations = list(acl_bindings(cfg.security))

    class CreateAcls(Request[CreateAclsRequest_v1]):
        API_KEY = 30

        def build(self, request_struct_class: type[CreateAclsRequest_v1]
                  ) -> CreateAclsRequest_v1:
            return request_struct_class(creations)

    admin = AIOKafkaAdminClient(**connection_as(cfg, cfg.security.admin).client_options(),
                                request_timeout_ms=30000)
    await admin.start()
    try:
        response = await admin._send_request(CreateAcls())
    finally:
        await admin.close()
    failed = [(c, r) for c, r in zip(creations, response.creation_responses, strict=True)
              if r[0] != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} ACLs refused, e.g. {failed[0]}")
    return len(creations)


def apply_acls(cfg: BrokerConfig) -> int:
    """Create every ACL of ``acl_set`` (creating one that exists changes nothing); return how
    many bindings were sent."""
    # Own thread and loop: the caller may be inside a running event loop (async tests).
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(_create_acls(cfg))).result()
