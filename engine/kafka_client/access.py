"""Whether the cluster lets this process in: its certificate trusted, the credentials taken.

aiokafka's clients log a refused password or an untrusted certificate and then report only
"Unable to bootstrap", and Faust's consumer retries such a connection for ever. Neither is
transient, so every command asks once, the way a client connects, and stops with one line
saying which it is (``AccessRefused``); a broker that does not answer is left to the commands'
own handling (services wait for it, one-shot commands say they cannot reach it).
"""

from __future__ import annotations

import asyncio
import ssl

from aiokafka.conn import create_conn
from aiokafka.errors import AuthenticationFailedError, KafkaError, SaslAuthenticationFailed
from aiokafka.protocol.metadata import MetadataRequest

from engine.kafka_client.connection import KafkaConnection, current
from engine.kafka_client.probe import hosts


class AccessRefused(Exception):
    """The cluster answered and refused this process: not worth retrying."""


async def check_access(bootstrap: str | None = None, connection: KafkaConnection | None = None,
                       timeout_s: float = 10.0) -> bool:
    """Connect to each bootstrap server in turn until one lets this process in (True); False
    when none answers. Raises ``AccessRefused`` when one answers and refuses the
    certificate or the credentials."""
    connection = connection or current()
    options = connection.security_options()
    for host, port in hosts(bootstrap or connection.bootstrap):
        conn = None
        try:
            async with asyncio.timeout(timeout_s):
                conn = await create_conn(host, port, client_id="yujing-access",
                                         request_timeout_ms=int(timeout_s * 1000), **options)
                await conn.send(MetadataRequest([]))
            return True
        except ssl.SSLCertVerificationError as exc:
            raise AccessRefused(
                f"the certificate of Kafka at {host}:{port} is not trusted "
                f"({exc.verify_message}): kafka.ca_file names the CA that signed it") from None
        except ssl.SSLError as exc:
            raise AccessRefused(
                f"TLS with Kafka at {host}:{port} failed ({exc.reason or exc}): is "
                f"{connection.security_protocol} the protocol of that listener?") from None
        except (SaslAuthenticationFailed, AuthenticationFailedError) as exc:
            raise AccessRefused(
                f"Kafka at {host}:{port} refused user {connection.username!r} "
                f"({connection.sasl_mechanism}): wrong user name or password? "
                f"({_said(exc)})") from None
        except (OSError, KafkaError, TimeoutError, EOFError):
            continue  # this server does not answer: the next
        finally:
            if conn is not None:
                conn.close()
    return False


def _said(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def ensure_access(bootstrap: str | None = None) -> None:
    """Before a service starts: raise ``AccessRefused`` if the cluster refuses this process's
    certificate or credentials (only asked when the connection is secured; a PLAINTEXT
    listener has nothing to refuse)."""
    if current().security_protocol != "PLAINTEXT":
        asyncio.run(check_access(bootstrap))
