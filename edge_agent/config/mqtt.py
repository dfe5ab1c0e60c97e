"""The MQTT uplink: brokers, identity, TLS, pacing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from edge_agent.config.base import Floor, Model

HEALTH_FLOOR = Floor(1.0, "each health report is a store write and a publish")
RECONNECT_FLOOR = Floor(0.1, "reconnecting more than 10 times a second is a storm, not a recovery")


class TlsConfig(Model):
    """TLS with server verification and an optional client certificate (used for ``mqtts://`` URLs)."""

    ca_file: Path | None = Field(
        None, description="CA bundle that signs the broker's certificate (None = system trust store)."
    )
    cert_file: Path | None = Field(None, description="Client certificate (PEM).")
    key_file: Path | None = Field(None, description="Client key (PEM).")

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self


class MqttConfig(Model):
    """Broker(s), identity, topics and delivery pacing."""

    urls: tuple[str, ...] = Field(
        ("mqtt://127.0.0.1:1883",), min_length=1, description="Brokers, in failover order."
    )
    client_id: str | None = Field(None, description="Defaults to edge-{site}-{lane}.")
    topic_prefix: str = Field("lanes", min_length=1, description="First level of every topic.")
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    keepalive_s: int = Field(30, ge=5, le=3600)
    username: str | None = None
    password_file: Path | None = Field(
        None,
        description="File holding the password; a relative path is looked up in $CREDENTIALS_DIRECTORY "
        "(systemd LoadCredential=) when set.",
    )
    tls: TlsConfig | None = Field(None, description="TLS settings for mqtts:// URLs.")
    health_interval_s: Annotated[float, HEALTH_FLOOR] = Field(
        30.0,
        gt=0,
        le=3600,
        description="Period of the health message. Floor 1 s: each report is a store write and a "
        "publish; faster ones crowd out passages and burn the board's CPU.",
    )
    inflight: int = Field(20, ge=1, le=1000, description="QoS 1 messages awaiting PUBACK at once.")
    replay_rate_per_s: float = Field(
        200.0,
        ge=0,
        le=10_000,
        description="Most messages sent per second (token bucket; 0 = unpaced). Bites only "
        "when a backlog is replayed after an outage.",
    )
    replay_burst: int = Field(
        50, ge=1, le=10_000, description="Messages that may go at once before pacing applies."
    )
    connect_timeout_s: float = Field(10.0, gt=0, le=120, description="TCP + TLS + CONNACK time limit.")
    reconnect_min_s: Annotated[float, RECONNECT_FLOOR] = Field(
        0.5, gt=0, le=60, description="First reconnect delay. Floor 0.1 s: faster retries are a storm."
    )
    reconnect_max_s: float = Field(30.0, gt=0, le=3600, description="Cap of the exponential reconnect delay.")
    close_grace_s: float = Field(2.0, ge=0, le=60, description="On shutdown, wait this long for PUBACKs.")

    @field_validator("urls")
    @classmethod
    def _urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
                raise ValueError(f"{url!r} is not mqtt://host[:port] or mqtts://host[:port]")
            try:
                parts.port  # noqa: B018 - raises ValueError for a bad port
            except ValueError:
                raise ValueError(f"{url!r} has an invalid port") from None
        return urls

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        bad_char = any(c in prefix for c in "+#\0")
        if bad_char or prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
            raise ValueError(f"{prefix!r} is not a topic prefix (no '+', '#', empty levels or edge '/')")
        return prefix

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file needs a username")
        return self
