"""Pytest plugin: a REAL Mosquitto broker on a free loopback port, and a "central" that records.

Fixtures:
    ``mosquitto``       a started :class:`Mosquitto` (anonymous, MQTT 3.1.1 and 5, persistence in
                        tmp so central's session survives a restart); ``stop()``/``start()``/``restart()``
                        keep the same port.
    ``mosquitto_factory``  build more brokers with options (password file, TLS listener...).
    ``central``         a factory of :class:`Central` subscribers (stopped at teardown).

Helpers: :func:`async_test` runs an ``async def`` test under ``asyncio.run`` with a time limit.
Load with ``pytest_plugins = ["tests.mosquitto"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.uplink.link import release_sockets

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"

P = ParamSpec("P")


def async_test(fn: Callable[P, Awaitable[None]], timeout: float = 60.0) -> Callable[P, None]:
    """Run an ``async def`` test function in a fresh event loop, failing after ``timeout`` s."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        async def main() -> None:
            await asyncio.wait_for(fn(*args, **kwargs), timeout)

        asyncio.run(main())

    return wrapper


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0, alive: Callable[[], bool] = lambda: True) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:``port`` (while ``alive()``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if not alive():
                raise TimeoutError(f"the process meant to listen on {port} exited") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s") from None
            time.sleep(0.02)


class Mosquitto:
    """One mosquitto process with a generated config in a temp directory."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        users: dict[str, str] | None = None,
        tls: dict[str, Path] | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.users = users
        self.tls = tls
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "mosquitto.log"
        self.conf_path = workdir / "mosquitto.conf"
        self._write_conf()

    @property
    def url(self) -> str:
        """``mqtt://`` (or ``mqtts://`` with TLS) URL of the listener."""
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def _write_conf(self) -> None:
        lines = [
            # Started as root, mosquitto would switch to user "mosquitto" and lose access to tmp files.
            f"user {getpass.getuser()}",
            "per_listener_settings false",
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 0",
            "max_queued_messages 0",
            "max_inflight_messages 100",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if self.users is not None:
            pw = self.workdir / "passwd"
            pw.write_text("")
            for user, password in self.users.items():
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", str(pw), user, password], check=True, capture_output=True
                )
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls['ca']}",
                f"certfile {self.tls['cert']}",
                f"keyfile {self.tls['key']}",
                "require_certificate true",
                "tls_version tlsv1.2",
            ]
        lines += list(self.extra)
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        """Start (or restart) the broker on its port and wait until it accepts connections."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        proc = self.proc
        try:
            wait_port(self.port, alive=lambda: proc.poll() is None)
        except TimeoutError:
            err = (
                proc.stderr.read().decode(errors="replace") if proc.poll() is not None and proc.stderr else ""
            )
            self.stop()
            raise RuntimeError(f"mosquitto did not start: {err} {self.log()}") from None

    def stop(self) -> None:
        """Stop the broker cleanly (SIGTERM: it saves its persistent sessions)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        """The broker's log so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@dataclass(slots=True)
class Received:
    """One message central received."""

    topic: str
    payload: bytes
    retain: bool
    properties: Properties | None
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.payload)


class Central:
    """A test subscriber standing in for central: records every message it receives.

    It uses a persistent session (fixed client id, clean session off, QoS 1) so messages published
    while it is reconnecting after a broker restart are queued for it by the broker, as a real
    central's would be.
    """

    def __init__(
        self,
        broker: Mosquitto,
        topics: tuple[str, ...] = ("#",),
        *,
        client_id: str = "central",
        protocol: str = "3.1.1",
        tls_files: dict[str, Path] | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.broker = broker
        self.topics = topics
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._subscribed = threading.Event()
        v5 = protocol == "5"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
        )
        self._v5 = v5
        if tls_files is not None:
            self.client.tls_set(
                ca_certs=str(tls_files["ca"]), certfile=str(tls_files["cert"]), keyfile=str(tls_files["key"])
            )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]  # paho takes floats too
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect

    def start(self) -> Central:
        """Connect, subscribe and wait for SUBACK."""
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 3600
            self.client.connect("127.0.0.1", self.broker.port, 10, clean_start=False, properties=props)
        else:
            self.client.connect("127.0.0.1", self.broker.port, 10)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("central did not subscribe")
        return self

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()
        release_sockets(self.client)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        if not rc.is_failure:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self._subscribed.clear()

    def wait_subscribed(self, limit_s: float = 10.0) -> None:
        """Block until central is (re)connected and subscribed."""
        if not self._subscribed.wait(limit_s):
            raise TimeoutError("central is not subscribed")

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        rec = Received(msg.topic, bytes(msg.payload), bool(msg.retain), getattr(msg, "properties", None))
        with self._cond:
            self.messages.append(rec)
            self._cond.notify_all()

    def on(self, suffix: str) -> list[Received]:
        """Messages whose topic ends with ``suffix``."""
        with self._lock:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0) -> list[Received]:
        """Block until ``predicate(messages)`` holds; return a copy of the messages."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"central: condition not met; {len(self.messages)} messages received")
                self._cond.wait(left)
            return list(self.messages)

    async def await_for(
        self, predicate: Callable[[list[Received]], bool], limit_s: float = 10.0
    ) -> list[Received]:
        """:meth:`wait_for` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for, predicate, limit_s)

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, properties: Properties | None = None
    ) -> None:
        """Publish as central (commands) and wait for the PUBACK."""
        info = self.client.publish(topic, payload, qos=qos, properties=properties)
        info.wait_for_publish(10)


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Build and start brokers (``mosquitto_factory(users={...}, tls={...})``); all stopped at teardown."""
    brokers: list[Mosquitto] = []

    def make(**kwargs: Any) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"broker{len(brokers)}", **kwargs)
        brokers.append(broker)
        broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[..., Mosquitto]) -> Mosquitto:
    """A running anonymous Mosquitto on a free loopback port."""
    return mosquitto_factory()


@pytest.fixture
def central() -> Iterator[Callable[..., Central]]:
    """Factory of started :class:`Central` subscribers: ``central(broker, ("lanes/#",))``."""
    made: list[Central] = []

    def make(broker: Mosquitto, topics: tuple[str, ...] = ("#",), **kwargs: Any) -> Central:
        c = Central(broker, topics, **kwargs)
        made.append(c)
        return c.start()

    yield make
    for c in made:
        c.stop()
