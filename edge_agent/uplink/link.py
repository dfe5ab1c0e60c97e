"""One MQTT connection, bridged from paho's network thread to the asyncio loop.

A :class:`Session` wraps one ``paho.mqtt.client.Client`` (``CallbackAPIVersion.VERSION2``) for one
connection only: no paho auto-reconnect and no paho-side resend, because the outbox is the source of
truth and the uplink re-sends from it, in order, on the next session. paho's callbacks run on its
network thread; they never block and hand everything to the loop with ``call_soon_threadsafe``.

PUBACKs are matched to messages by ``mid`` under a lock; a PUBACK that arrives before ``publish()``
has returned its ``mid`` (it happens) is parked and matched when the ``mid`` is registered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.config.mqtt import MqttConfig
from edge_agent.errors import EdgeAgentError
from edge_agent.uplink.commands import MAX_COMMAND_BYTES

log = logging.getLogger(__name__)


class _QuietTeardown(logging.Filter):
    """Drop paho's "Client is not connected" error, logged after every disconnect.

    The uplink logs each loss itself, with its reason; paho's line would only repeat it as an error.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


paho_log = logging.getLogger("edge_agent.uplink.paho")
paho_log.addFilter(_QuietTeardown())

AckCallback = Callable[[int, bool, str], None]
"""``on_ack(token, ok, reason)`` on the loop when the broker acknowledged a publish."""
MessageCallback = Callable[[mqtt.MQTTMessage], None]


class LinkError(EdgeAgentError, ConnectionError):
    """The broker could not be reached or the connection failed."""


class LinkRefusedError(LinkError):
    """The broker answered CONNACK with a refusal (bad credentials, not authorised, ...)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url} refused the connection: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Broker:
    """One entry of the failover list."""

    url: str
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> Broker:
        """``mqtt://host[:1883]`` or ``mqtts://host[:8883]``."""
        parts = urlsplit(url)
        tls = parts.scheme == "mqtts"
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"{url!r} is not an mqtt:// or mqtts:// URL")
        return cls(url, parts.hostname, parts.port or (8883 if tls else 1883), tls)


def credential_path(path: Path) -> Path:
    """``path``, or for a relative one its place in ``$CREDENTIALS_DIRECTORY`` when that is set."""
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    return path if path.is_absolute() or not cred_dir else Path(cred_dir) / path


def read_password(path: Path) -> str:
    """Read a password file; a relative path is looked up in ``$CREDENTIALS_DIRECTORY`` when set."""
    full = credential_path(path)
    try:
        text = full.read_text(encoding="utf-8")
    except OSError as exc:
        raise LinkError(f"cannot read MQTT password file {full}: {exc.strerror or exc}") from None
    return text.rstrip("\r\n")


def _reason_text(rc: ReasonCode | int) -> str:
    return str(getattr(rc, "getName", lambda: rc)())


def release_sockets(client: mqtt.Client) -> None:
    """Close a stopped paho client's sockets now rather than whenever it is garbage-collected.

    paho opens a wake-up socket pair in ``loop_start`` and closes it only in ``__del__`` (through the
    private ``_reset_sockets`` called here); a session that fails or is cancelled mid-connect can stay
    referenced by a traceback for a while, and a lane that reconnects all day must not hold descriptors
    that long. Does nothing while paho's network thread still runs.
    """
    thread = getattr(client, "_thread", None)
    reset = getattr(client, "_reset_sockets", None)
    if reset is not None and (thread is None or not thread.is_alive()):
        reset()


class Session:
    """One connection to one broker; close is idempotent."""

    def __init__(
        self,
        cfg: MqttConfig,
        broker: Broker,
        *,
        client_id: str,
        will: tuple[str, bytes],
        on_message: MessageCallback,
        on_ack: AckCallback,
    ) -> None:
        self.cfg = cfg
        self.broker = broker
        self.v5 = cfg.protocol == "5"
        self._loop = asyncio.get_running_loop()
        self._on_message = on_message
        self._on_ack = on_ack
        self._lock = threading.Lock()
        self._tokens: dict[int, int] = {}  # mid -> token
        self._early: dict[int, tuple[bool, str]] = {}  # mid acked before publish() returned
        self._subacks: dict[int, asyncio.Future[tuple[bool, str]]] = {}
        self._early_subacks: dict[int, tuple[bool, str]] = {}
        self._connack: asyncio.Future[tuple[str, str]] = self._loop.create_future()  # (outcome, reason)
        self.lost = asyncio.Event()
        self.lost_reason = ""
        self._closed = False
        self._started = False
        self.client = self._make_client(client_id, will)

    # -- construction --------------------------------------------------------------------------
    def _make_client(self, client_id: str, will: tuple[str, bytes]) -> mqtt.Client:
        cfg = self.cfg
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self.v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if self.v5 else True,
            reconnect_on_failure=False,
        )
        client.enable_logger(paho_log)
        client.connect_timeout = cfg.connect_timeout_s
        client.max_inflight_messages_set(cfg.inflight + 4)  # + availability and slack
        client.max_queued_messages_set(0)
        client.will_set(will[0], will[1], qos=1, retain=True)
        if cfg.username is not None:
            password = read_password(cfg.password_file) if cfg.password_file is not None else None
            client.username_pw_set(cfg.username, password)
        if self.broker.tls:
            tls = cfg.tls
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls and tls.ca_file else None,
                certfile=str(tls.cert_file) if tls and tls.cert_file else None,
                keyfile=str(credential_path(tls.key_file)) if tls and tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
            client.tls_insecure_set(False)  # verify the broker's host name too
        client.on_connect = self._cb_connect
        client.on_disconnect = self._cb_disconnect
        client.on_publish = self._cb_publish
        client.on_message = self._cb_message
        client.on_subscribe = self._cb_subscribe
        return client

    # -- lifecycle -------------------------------------------------------------------------------
    async def connect(self) -> None:
        """TCP (+TLS) connect, send CONNECT, await CONNACK; raise LinkError or LinkRefusedError."""
        done: Future[None] = Future()

        def work() -> None:
            try:
                props = None
                if self.v5:
                    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                    props.SessionExpiryInterval = 0
                    # the broker must not send us anything larger than the largest command
                    props.MaximumPacketSize = MAX_COMMAND_BYTES + 64 * 1024
                self.client.connect(
                    self.broker.host,
                    self.broker.port,
                    self.cfg.keepalive_s,
                    clean_start=True if self.v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                    properties=props,
                )
                with contextlib.suppress(InvalidStateError):  # the waiter was cancelled meanwhile
                    done.set_result(None)
            except BaseException as exc:
                with contextlib.suppress(InvalidStateError):
                    done.set_exception(exc)

        threading.Thread(target=work, name=f"mqtt-connect:{self.broker.host}", daemon=True).start()
        try:
            await asyncio.wrap_future(done)
        except asyncio.CancelledError:
            done.add_done_callback(lambda _: self._force_close())
            raise
        except (OSError, ValueError) as exc:
            self._force_close()
            # paho's frames in the traceback still hold the half-open (e.g. failed TLS) socket: let it go
            traceback.clear_frames(exc.__traceback__)
            raise LinkError(f"cannot connect to {self.broker.url}: {exc}") from None
        self._started = True
        self.client.loop_start()
        try:
            outcome, reason = await asyncio.wait_for(
                asyncio.shield(self._connack), self.cfg.connect_timeout_s
            )
        except TimeoutError:
            await self.close()
            raise LinkError(f"{self.broker.url}: no CONNACK within {self.cfg.connect_timeout_s} s") from None
        except asyncio.CancelledError:
            await self.close()
            raise
        if outcome == "refused":
            await self.close()
            raise LinkRefusedError(self.broker.url, reason)
        if outcome == "lost":
            await self.close()
            raise LinkError(f"{self.broker.url} closed the connection before CONNACK ({reason})")

    async def close(self) -> None:
        """Disconnect cleanly (no last will) and stop paho's thread; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if not self._started:
            self._force_close()
            return
        self.client.disconnect()
        stopper = asyncio.to_thread(self.client.loop_stop)
        try:
            await asyncio.wait_for(stopper, 5.0)
        except TimeoutError:
            log.warning("uplink: paho thread for %s did not stop within 5 s", self.broker.url)
            self._force_close()
        self._release()
        self.lost.set()

    def _force_close(self) -> None:
        sock = self.client.socket()
        if sock is not None:
            try:
                sock.close()
            except OSError as exc:  # pragma: no cover - closing a dead socket
                log.debug("uplink: socket close: %s", exc)
        self._release()

    def _release(self) -> None:
        release_sockets(self.client)

    # -- loop-side API ----------------------------------------------------------------------------
    async def subscribe(self, topic: str, limit_s: float) -> tuple[bool, str]:
        """Subscribe at QoS 1 and wait for the SUBACK: ``(granted, reason)``."""
        rc, mid = self.client.subscribe(topic, qos=1)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            return False, f"not sent ({rc})"
        fut: asyncio.Future[tuple[bool, str]] = self._loop.create_future()
        with self._lock:
            early = self._early_subacks.pop(mid, None)
            if early is None:
                self._subacks[mid] = fut
        if early is not None:
            return early
        try:
            return await asyncio.wait_for(fut, limit_s)
        except TimeoutError:
            return False, f"no SUBACK within {limit_s} s"
        finally:
            with self._lock:
                self._subacks.pop(mid, None)

    def publish(
        self,
        token: int,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        correlation: bytes | None = None,
    ) -> bool:
        """Send one message; ``on_ack(token, ...)`` follows on the loop. False = not sent (link gone)."""
        props = None
        if self.v5 and correlation is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = correlation
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._tokens[info.mid] = token
        if early is not None:
            self._loop.call_soon(self._on_ack, token, *early)
        return True

    @property
    def inflight_mids(self) -> int:
        """Publishes still awaiting their PUBACK."""
        with self._lock:
            return len(self._tokens)

    # -- paho thread -------------------------------------------------------------------------------
    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nothing is listening any more
            self._loop.call_soon_threadsafe(fn, *args)

    def _cb_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Properties | None
    ) -> None:
        self._post(self._set_connack, "refused" if rc.is_failure else "accepted", _reason_text(rc))

    def _set_connack(self, outcome: str, reason: str) -> None:
        if not self._connack.done():
            self._connack.set_result((outcome, reason))

    def _cb_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Properties | None
    ) -> None:
        self._post(self._set_lost, _reason_text(rc))

    def _set_lost(self, reason: str) -> None:
        if not self.lost_reason:
            self.lost_reason = reason
        self._set_connack("lost", reason)
        self.lost.set()

    def _cb_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Properties | None
    ) -> None:
        ok = not rc.is_failure
        reason = "" if ok else _reason_text(rc)
        with self._lock:
            token = self._tokens.pop(mid, None)
            if token is None:
                self._early[mid] = (ok, reason)
                return
        self._post(self._on_ack, token, ok, reason)

    def _cb_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, rcs: list[ReasonCode], props: Properties | None
    ) -> None:
        bad = [r for r in rcs if r.is_failure]
        result = (not bad, _reason_text(bad[0]) if bad else "granted")
        with self._lock:
            fut = self._subacks.pop(mid, None)
            if fut is None:
                self._early_subacks[mid] = result
                return
        self._post(self._set_suback, fut, result)

    @staticmethod
    def _set_suback(fut: asyncio.Future[tuple[bool, str]], result: tuple[bool, str]) -> None:
        if not fut.done():
            fut.set_result(result)

    def _cb_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._post(self._on_message, msg)
