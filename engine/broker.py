"""A local single-node Apache Kafka broker (KRaft, combined broker+controller).

No Docker on dev/CI machines, but Maven Central is reachable: the broker is the `kafka_2.13`
jars (fetched by mvn from engine/kafka/pom.xml) run as a detached JVM that outlives the CLI.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from engine import broker_security
from engine.broker_security import BrokerSecurity

KAFKA_VERSION = "4.4.0"
KAFKA_DIR = Path(__file__).resolve().parent / "kafka"  # pom.xml and log4j2.properties


class BrokerConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9093
    home: Path = Field(
        default_factory=lambda: Path(os.environ.get("YUJING_HOME") or Path.cwd() / ".yujing/kafka")
    )
    jar_cache: Path = Path()  # default set below: it depends on kafka_version
    kafka_version: str = KAFKA_VERSION
    heap: str = "1g"  # -Xmx, at least 256m: the JVM starts with -Xms256m
    node_id: int = 1
    voters: str = ""
    """``controller.quorum.voters`` of a cluster (``1@h:c1,2@h:c2,...``); empty: this node alone."""
    replication: int = 1
    """Replication factor of the internal topics and of topics created without one."""
    security: BrokerSecurity | None = None
    """A SASL_SSL listener, SCRAM users and ACLs besides the PLAINTEXT one (None: plain only);
    see ``engine.broker_security``."""

    @model_validator(mode="after")
    def _paths(self) -> BrokerConfig:
        if "jar_cache" not in self.model_fields_set:
            env = os.environ.get("YUJING_JAR_CACHE")
            base = Path.home() / ".cache" / "yujing" / "kafka-jars" / self.kafka_version
            self.jar_cache = Path(env) if env else base
        # Absolute: the JVM runs with cwd=home, and log.dirs must not depend on the caller's cwd.
        self.home, self.jar_cache = self.home.absolute(), self.jar_cache.absolute()
        return self

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"


class BrokerStatus(BaseModel):
    running: bool
    pid: int | None
    bootstrap: str
    answering: bool
    kafka_version: str


def _ensure_tools() -> None:
    """Install mvn/java from Debian when missing and we may (root); else say what is needed."""
    missing = [t for t in ("mvn", "java") if shutil.which(t) is None]
    apt = "apt-get install -y maven openjdk-17-jre-headless"
    if missing and os.geteuid() != 0:
        raise RuntimeError(f"{' and '.join(missing)} not found: install them, e.g. `{apt}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in ("apt-get update", apt) if missing else ():
        subprocess.run(cmd.split(), check=True, env=env)


def ensure_jars(cfg: BrokerConfig) -> Path:
    """Put Kafka and its runtime jars in cfg.jar_cache (once) and return that folder."""
    # A changed pom (e.g. a log4j bump) must refresh the cache, not only a changed version.
    pom = (KAFKA_DIR / "pom.xml").read_bytes()
    key = hashlib.sha256(pom + cfg.kafka_version.encode()).hexdigest()
    marker = cfg.jar_cache / ".complete"  # written last, so a half download is redone
    cfg.jar_cache.parent.mkdir(parents=True, exist_ok=True)
    lock = cfg.jar_cache.parent / f".{cfg.jar_cache.name}.lock"
    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # two starters at once must not interleave downloads
        if marker.is_file() and marker.read_text().strip() == key:
            return cfg.jar_cache
        _ensure_tools()
        shutil.rmtree(cfg.jar_cache, ignore_errors=True)  # no stale jars on the classpath
        cmd = [
            "mvn", "-B", "-q", "-f", str(KAFKA_DIR / "pom.xml"),
            "dependency:copy-dependencies", "-DincludeScope=runtime",
            f"-DoutputDirectory={cfg.jar_cache}", f"-Dkafka.version={cfg.kafka_version}",
        ]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not any(cfg.jar_cache.glob("kafka_2.13-*.jar")):
            tail = "\n".join((res.stdout + res.stderr).splitlines()[-30:])
            raise RuntimeError(f"mvn could not fetch Kafka {cfg.kafka_version} jars:\n{tail}")
        marker.write_text(key + "\n")
    return cfg.jar_cache


def _read_pid(cfg: BrokerConfig) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(cfg.pid_file.read_text())
    return None


def _alive(pid: int) -> bool:
    """True if pid is a live Kafka JVM: not a zombie, not a reused pid."""
    with contextlib.suppress(OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    try:
        os.kill(pid, 0)
        comm, rest = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (ProcessLookupError, FileNotFoundError):
        return False
    except OSError:
        return True  # no /proc here: trust kill(0)
    # Zombies linger when nobody reaps them (e.g. PID 1 in a container); cmdline may read
    # empty for a moment while the JVM maps its heap.
    java = comm.endswith("(java") and (not cmdline or b"kafka.Kafka" in cmdline)
    return java and not rest.startswith("Z")


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


def _answering(cfg: BrokerConfig, timeout: float = 5.0) -> bool:
    """Ask the broker for cluster metadata with aiokafka, the client Faust uses."""
    if not _port_open(cfg.host, cfg.port):
        return False

    async def probe() -> bool:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap)
        try:
            await asyncio.wait_for(admin.start(), timeout)
            info = await asyncio.wait_for(admin.describe_cluster(), timeout)
            return bool(info.get("brokers"))  # empty until the broker is registered/unfenced
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    # Own thread and loop: callers may be inside a running event loop (async tests, Faust).
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(probe())).result()


def _log_tail(cfg: BrokerConfig, lines: int = 40) -> str:
    out: list[str] = []
    for name in ("broker.out", "server.log"):
        with contextlib.suppress(OSError):
            text = (cfg.home / "logs" / name).read_text(errors="replace").splitlines()
            out += [f"--- {name}", *text[-lines:]]
    return "\n".join(out)


def _server_properties(cfg: BrokerConfig) -> str:
    h, p, c = cfg.host, cfg.port, cfg.controller_port
    voters = cfg.voters or f"{cfg.node_id}@{h}:{c}"
    rf, isr = cfg.replication, min(2, cfg.replication)
    sasl = f",{broker_security.listener(cfg)}" if cfg.security else ""
    secured = broker_security.server_properties(cfg) if cfg.security else ""
    return f"""# Written by engine/broker.py on every start; edits here are lost.
process.roles=broker,controller
node.id={cfg.node_id}
listeners=PLAINTEXT://{h}:{p},CONTROLLER://{h}:{c}{sasl}
advertised.listeners=PLAINTEXT://{h}:{p}{sasl}
controller.listener.names=CONTROLLER
{"" if secured else "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"}
# Static voters: no --standalone at format time, and a port change stays harmless.
controller.quorum.voters={voters}
log.dirs={cfg.home / "data"}
num.partitions=1
# Topics come from `yujing create-topics` with the registry's partitions and policies: a
# topic a client's first request created would be kept with one partition, unnoticed.
auto.create.topics.enable=false
# Internal topics on every node of a cluster up to three (one node: replication factor 1).
default.replication.factor={rf}
min.insync.replicas={isr}
offsets.topic.replication.factor={rf}
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={isr}
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={isr}
# Few partitions for internal topics: creating 50 of each is slow on 2 cores.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.num.partitions=1
# A lone Faust worker joins at once; the log cleaner gets 32 of its default 128 MiB of heap.
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=33554432
{secured}"""


def _java(cfg: BrokerConfig, jars: Path, main: str, *args: str) -> list[str]:
    return [
        "java", "-Xms256m", f"-Xmx{cfg.heap}",
        "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={cfg.home / 'logs'}",
        "-cp", f"{jars}/*", main, *args,
    ]  # fmt: skip


def _format_storage(cfg: BrokerConfig, jars: Path, props: Path) -> None:
    if (cfg.home / "data" / "meta.properties").is_file():
        if cfg.security:
            broker_security.check_formatted_users(cfg)
        return
    id_file = cfg.home / "cluster.id"
    if not id_file.is_file():  # the format of `StorageTool random-uuid`, without a JVM start
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        id_file.write_text(("A" + cid[1:] if cid[0] == "-" else cid) + "\n")
    cid = id_file.read_text().strip()
    scram = broker_security.scram_arguments(cfg) if cfg.security else []
    cmd = _java(cfg, jars, "kafka.tools.StorageTool", "format", "-t", cid, "-c", str(props),
                *scram)
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"Kafka storage format failed:\n{res.stdout}{res.stderr}")
    if cfg.security:
        broker_security.users_file(cfg.home).write_text("\n".join(cfg.security.users) + "\n")


def status(cfg: BrokerConfig) -> BrokerStatus:
    pid = _read_pid(cfg)
    running = pid is not None and _alive(pid)
    return BrokerStatus(
        running=running,
        pid=pid if running else None,
        bootstrap=cfg.bootstrap,
        answering=running and _answering(cfg),
        kafka_version=cfg.kafka_version,
    )


def start(cfg: BrokerConfig, timeout: float = 90.0) -> int:
    """Start the broker (or find it running) and return its pid once it answers (a secured
    one: with its ACLs applied)."""
    deadline = time.monotonic() + timeout
    pid = _read_pid(cfg)
    if pid is not None and _alive(pid):
        if not _answering(cfg):
            pid = wait_answering(cfg, pid, deadline)
        if cfg.security and not _port_open(cfg.host, cfg.security.sasl_port):
            raise RuntimeError(f"the broker of {cfg.home} (pid {pid}) runs without a SASL_SSL "
                               f"listener on {cfg.security.sasl_port}: stop it first")
    else:
        pid = wait_answering(cfg, launch(cfg), deadline)
    if cfg.security:
        broker_security.apply_acls(cfg)
    return pid


def launch(cfg: BrokerConfig) -> int:
    """Start the broker's JVM without waiting for it (a node of a cluster answers only once a
    majority of the voters runs); return its pid."""
    cfg.pid_file.unlink(missing_ok=True)
    sasl_port = [cfg.security.sasl_port] if cfg.security else []
    for port in (cfg.port, cfg.controller_port, *sasl_port):
        if _port_open(cfg.host, port):
            raise RuntimeError(f"{cfg.host}:{port} is in use, not by a broker of {cfg.home}")
    jars = ensure_jars(cfg)
    (cfg.home / "logs").mkdir(parents=True, exist_ok=True)
    props = cfg.home / "server.properties"
    props.unlink(missing_ok=True)
    # Private: a secured broker's holds the PLAIN users' passwords.
    fd = os.open(props, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(_server_properties(cfg))
    _format_storage(cfg, jars, props)
    with (cfg.home / "logs" / "broker.out").open("ab") as out:
        pid = subprocess.Popen(
            _java(cfg, jars, "kafka.Kafka", str(props)),
            cwd=cfg.home, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: survives the CLI and its Ctrl-C
        ).pid  # fmt: skip
    cfg.pid_file.write_text(f"{pid}\n")
    return pid


def wait_answering(cfg: BrokerConfig, pid: int, deadline: float) -> int:
    """Until the broker of ``pid`` answers (return ``pid``), exits or ``deadline`` passes."""
    while time.monotonic() < deadline:
        if not _alive(pid):  # _alive() also reaps our exited child
            cfg.pid_file.unlink(missing_ok=True)
            raise RuntimeError(f"Kafka broker exited during start-up:\n{_log_tail(cfg)}")
        if _answering(cfg):
            return pid
        time.sleep(0.5)
    raise TimeoutError(f"Kafka broker not answering after the deadline:\n{_log_tail(cfg)}")


def stop(cfg: BrokerConfig, timeout: float = 30.0) -> bool:
    """SIGTERM the broker (a clean controlled shutdown), SIGKILL it after timeout."""
    pid = _read_pid(cfg)
    was_running = pid is not None and _alive(pid)
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if pid is None or not _alive(pid):
            break
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        end = time.monotonic() + wait
        while time.monotonic() < end and _alive(pid):
            time.sleep(0.2)
    cfg.pid_file.unlink(missing_ok=True)
    return was_running


def wipe(cfg: BrokerConfig) -> None:
    """Stop the broker and delete its data, so the next start() is a fresh cluster."""
    stop(cfg)
    for name in ("data", "logs"):
        shutil.rmtree(cfg.home / name, ignore_errors=True)
    for name in ("cluster.id", "server.properties"):
        (cfg.home / name).unlink(missing_ok=True)
