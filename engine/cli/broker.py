"""``yujing broker start|stop|status``: the project's own Kafka (one node, a cluster of three
on loopback, or one with SASL_SSL and ACLs)."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli_output import say as _say

broker_app = typer.Typer(no_args_is_help=True, help="Run a local Apache Kafka broker.")

Port = Annotated[int, typer.Option(envvar="YUJING_KAFKA_PORT", help="Client port.")]
ControllerPort = Annotated[int, typer.Option(envvar="YUJING_KAFKA_CONTROLLER_PORT")]


def _broker_config(port: int, controller_port: int):
    from engine.broker import BrokerConfig

    return BrokerConfig(port=port, controller_port=controller_port)


Nodes = Annotated[int, typer.Option(
    min=1, envvar="YUJING_KAFKA_NODES",
    help="Nodes of a cluster on loopback (node i on port + 2(i-1), its controller on the "
         "next port, under home/node-i); 1: the single broker.")]


def _cluster_config(port: int, nodes: int):
    from engine.broker_cluster import ClusterConfig

    return ClusterConfig(nodes=nodes, port=port)


Secure = Annotated[bool, typer.Option(
    "--secure", help="Add a SASL_SSL listener (SCRAM-SHA-256/512 and PLAIN users, a CA and "
    "certificate made under the home) and the authorizer with yujing's ACLs.")]
SaslPort = Annotated[int, typer.Option(envvar="YUJING_KAFKA_SASL_PORT",
                                       help="The SASL_SSL listener's port (with --secure).")]


@broker_app.command("start")
def broker_start(port: Port = 9092, controller_port: ControllerPort = 9093,
                 nodes: Nodes = 1, secure: Secure = False, sasl_port: SaslPort = 9094) -> None:
    """Fetch Kafka's jars (first time), start the broker, wait until it answers."""
    from engine import broker, broker_cluster

    if secure:
        if nodes > 1:
            raise typer.BadParameter("--secure runs a single node", param_hint="--nodes")
        _start_secure(port, controller_port, sasl_port)
        return
    if nodes > 1:
        cluster = _cluster_config(port, nodes)
        pids = broker_cluster.start_cluster(cluster)
        _say(f"{nodes} kafka nodes running on {cluster.bootstrap} (pids "
             f"{', '.join(map(str, pids))}, home {cluster.home}); topics: yujing create-topics "
             f"--bootstrap {cluster.bootstrap} --replication-factor {cluster.replication}")
        return
    cfg = _broker_config(port, controller_port)
    pid = broker.start(cfg)
    _say(f"kafka {cfg.kafka_version} running on {cfg.bootstrap} (pid {pid}, home {cfg.home})")


def _start_secure(port: int, controller_port: int, sasl_port: int) -> None:
    from engine import broker, broker_security

    cfg = _broker_config(port, controller_port).model_copy(
        update={"security": broker_security.BrokerSecurity(sasl_port=sasl_port)})
    pid = broker.start(cfg)
    users = cfg.security.users
    _say(f"kafka {cfg.kafka_version} running (pid {pid}, home {cfg.home})\n"
         f"  clients: SASL_SSL on {broker_security.listener(cfg).removeprefix('SASL_SSL://')} "
         f"(SCRAM-SHA-512, SCRAM-SHA-256, PLAIN)\n"
         f"  CA file: {broker_security.ca_file(cfg.home)}\n"
         f"  users: {', '.join(users)} ({users[0]} is a super user); each one's password in "
         f"{broker_security.password_file(cfg.home, '<user>')}\n"
         f"  internal: PLAINTEXT on {cfg.bootstrap}, loopback only, every client a super user")


@broker_app.command("stop")
def broker_stop(port: Port = 9092, controller_port: ControllerPort = 9093,
                nodes: Nodes = 1) -> None:
    """Stop the broker started from this folder."""
    from engine import broker, broker_cluster

    if nodes > 1:
        stopped = broker_cluster.stop_cluster(_cluster_config(port, nodes))
        _say(f"stopped {sum(stopped)} of {nodes} nodes")
        return
    was = broker.stop(_broker_config(port, controller_port))
    _say("stopped" if was else "was not running")


@broker_app.command("status")
def broker_status(port: Port = 9092, controller_port: ControllerPort = 9093,
                  nodes: Nodes = 1) -> None:
    """Say whether the broker runs and answers; exit 1 when it does not."""
    from engine import broker, broker_cluster

    if nodes > 1:
        found = broker_cluster.cluster_status(_cluster_config(port, nodes))
        for status in found:
            _say(status.model_dump_json())
        raise typer.Exit(0 if all(s.running and s.answering for s in found) else 1)
    status = broker.status(_broker_config(port, controller_port))
    _say(status.model_dump_json(indent=2))
    raise typer.Exit(0 if status.running and status.answering else 1)
