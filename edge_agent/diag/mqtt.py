"""``edge-agent diag mqtt``: reach the broker as the agent does, step by step, naming the step that fails.

    edge-agent diag mqtt --config /etc/edge-agent/lane.toml [--broker N]

Steps, each printed as it runs (what was tried, what answered, what to check next): name lookup,
TCP connect, TLS handshake (``mqtts://``: the configured CA, client certificate and key), MQTT CONNECT
with the configured credentials (the agent's own session code), SUBSCRIBE to a private diagnostic
topic under the lane's tree, PUBLISH there at QoS 1 and receive it back (the round trip through the
broker, in milliseconds). It connects with its own client id, so the running agent's session is not
disturbed. Exit 0 when every step passed, 1 at the first that failed, 2 for a bad config.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import socket
import ssl
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from edge_agent.config import LaneConfig
from edge_agent.config.control import DEFAULT_CONFIG
from edge_agent.diag.common import load_lane

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class StepFailed(Exception):
    """A step failed; the message says what answered, ``check`` what to look at next."""

    def __init__(self, answered: str, check: str) -> None:
        super().__init__(answered)
        self.check = check


class Steps:
    """Prints each step in the one diag style: tried / answered (ms) / check next."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def tried(self, what: str) -> float:
        """Announce a step; its start time."""
        print(f"tried: {what}", file=self.out, flush=True)
        return time.perf_counter()

    def answered(self, started: float, what: str) -> None:
        """The step passed."""
        print(
            f"  answered: {what} ({(time.perf_counter() - started) * 1000:.0f} ms)", file=self.out, flush=True
        )

    def failed(self, exc: StepFailed) -> None:
        """The step failed."""
        print(f"  answered: {exc}", file=self.out, flush=True)
        print(f"  check next: {exc.check}", file=self.out, flush=True)


def _tls_context(cfg: LaneConfig) -> ssl.SSLContext:
    from edge_agent.uplink.link import credential_path

    tls = cfg.mqtt.tls
    ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls and tls.ca_file else None)
    if tls and tls.cert_file:
        key = str(credential_path(tls.key_file)) if tls.key_file else None
        ctx.load_cert_chain(str(tls.cert_file), key)
    return ctx


async def _network(steps: Steps, cfg: LaneConfig, host: str, port: int, tls: bool, limit_s: float) -> None:
    t = steps.tried(f"name lookup of {host}")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StepFailed(
            f"name lookup failed: {exc.strerror}", "the broker's name in mqtt.urls, DNS"
        ) from None
    steps.answered(t, ", ".join(sorted({str(i[4][0]) for i in infos})))
    t = steps.tried(f"TCP connect to {host}:{port}")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), limit_s)
    except ConnectionRefusedError:
        raise StepFailed("connection refused", "the broker runs and listens on that port") from None
    except (TimeoutError, OSError) as exc:
        raise StepFailed(f"no connection: {exc or 'timed out'}", "network cable, address, firewall") from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    steps.answered(t, "connected")
    if not tls:
        return
    t = steps.tried("TLS handshake (mqtt.tls: CA, client certificate and key)")
    try:
        ctx = _tls_context(cfg)
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname=host), limit_s
        )
    except ssl.SSLCertVerificationError as exc:
        raise StepFailed(
            f"the broker's certificate was not accepted: {exc.verify_message}",
            "mqtt.tls.ca_file is the CA that signed the broker's certificate; the URL's host is in its names",
        ) from None
    except (ssl.SSLError, OSError, TimeoutError) as exc:
        raise StepFailed(
            f"handshake failed: {exc or 'timed out'}",
            "mqtt.tls.cert_file and key_file (a client certificate the broker trusts), TLS version",
        ) from None
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    steps.answered(t, "certificate verified")


async def _mqtt(steps: Steps, cfg: LaneConfig, url: str, limit_s: float) -> None:
    from edge_agent.uplink.link import Broker, LinkError, LinkRefusedError, Session
    from edge_agent.uplink.topics import Topics

    broker = Broker.parse(url)
    topics = Topics(cfg.mqtt.topic_prefix, cfg.site_id, cfg.lane_id)
    topic = f"{topics('command').rsplit('/', 1)[0]}/diag/{secrets.token_hex(6)}"
    received: asyncio.Queue[bytes] = asyncio.Queue()
    acks: asyncio.Queue[bool] = asyncio.Queue()
    client_id = f"{cfg.mqtt.client_id or f'edge-{cfg.site_id}-{cfg.lane_id}'}-diag-{secrets.token_hex(3)}"
    t = steps.tried(
        f"MQTT {cfg.mqtt.protocol} CONNECT as {client_id}"
        + (f" user {cfg.mqtt.username}" if cfg.mqtt.username else "")
    )
    try:
        session = Session(
            cfg.mqtt,
            broker,
            client_id=client_id,
            will=(topic, b""),
            on_message=lambda msg: received.put_nowait(bytes(msg.payload)),
            on_ack=lambda token, ok, reason: acks.put_nowait(ok),
        )
    except (OSError, ValueError) as exc:
        raise StepFailed(
            f"cannot set the client up: {exc}", "mqtt.username / password_file / tls files"
        ) from None
    try:
        try:
            await asyncio.wait_for(session.connect(), limit_s + cfg.mqtt.connect_timeout_s)
        except LinkRefusedError as exc:
            raise StepFailed(
                str(exc), "mqtt.username and password_file; the broker's ACL for this client"
            ) from None
        except (LinkError, TimeoutError) as exc:
            raise StepFailed(
                f"no CONNACK: {exc or 'timed out'}", "the broker's log; MQTT protocol version"
            ) from None
        steps.answered(t, "CONNACK accepted")
        t = steps.tried(f"SUBSCRIBE {topic}")
        granted, why = await session.subscribe(topic, limit_s)
        if not granted:
            raise StepFailed(f"not granted: {why}", "the broker's ACL lets this user read the lane's topics")
        steps.answered(t, "granted QoS 1")
        t = steps.tried(f"PUBLISH to {topic} at QoS 1 and receive it back")
        payload = secrets.token_bytes(8).hex().encode()
        if not session.publish(1, topic, payload):
            raise StepFailed("the client could not send", "the connection dropped: the broker's log")
        try:
            ok = await asyncio.wait_for(acks.get(), limit_s)
            back = await asyncio.wait_for(received.get(), limit_s)
        except TimeoutError:
            raise StepFailed(
                f"nothing came back within {limit_s:g} s",
                "the broker's ACL lets this user write the lane's topics",
            ) from None
        if not ok or back != payload:
            raise StepFailed("the broker refused or changed the message", "the broker's log and ACL")
        steps.answered(t, "round trip through the broker")
    finally:
        await session.close()


async def diagnose(cfg: LaneConfig, broker_index: int, limit_s: float, out: TextIO) -> int:
    """Run every step against ``mqtt.urls[broker_index]``; the exit status."""
    from edge_agent.uplink.link import Broker

    steps = Steps(out)
    url = cfg.mqtt.urls[broker_index]
    broker = Broker.parse(url)
    print(f"broker {url} (mqtt.urls[{broker_index}])", file=out)
    try:
        await _network(steps, cfg, broker.host, broker.port, broker.tls, limit_s)
        await _mqtt(steps, cfg, url, limit_s)
    except StepFailed as exc:
        steps.failed(exc)
        return EXIT_FAILED
    print("every step passed", file=out)
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """``edge-agent diag mqtt``."""
    cfg = load_lane(args.config)
    if cfg is None:
        return EXIT_USAGE
    if not 0 <= args.broker < len(cfg.mqtt.urls):
        print(f"--broker {args.broker}: mqtt.urls has {len(cfg.mqtt.urls)} broker(s)", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(diagnose(cfg, args.broker, args.timeout, sys.stdout))


def register(subparsers: Any) -> None:
    """Add the ``mqtt`` diagnostic to ``edge-agent diag``."""
    p = subparsers.add_parser(
        "mqtt",
        help="reach the broker step by step (DNS, TCP, TLS, CONNECT, subscribe, round trip)",
        description=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        epilog="example: edge-agent diag mqtt --config /etc/edge-agent/lane.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, default=None, help=f"lane TOML (default {DEFAULT_CONFIG})")
    p.add_argument("--broker", type=int, default=0, help="which of mqtt.urls to try (default 0, the first)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds each step may take (default 5)")
    p.set_defaults(func=run)
