"""The MQTT uplink."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from edge_agent.config.base import Model


class TlsConfig(Model):
    """TLS with server verification and an optional client certificate."""

    ca_file: Path = Field(description="CA bundle that signs the broker's certificate.")
    cert_file: Path | None = Field(None, description="Client certificate (PEM).")
    key_file: Path | None = Field(None, description="Client key (PEM).")


class MqttConfig(Model):
    """Broker(s), identity and topics."""

    urls: tuple[str, ...] = Field(("mqtt://127.0.0.1:1883",), min_length=1, description="Brokers, in failover order.")
    client_id: str | None = Field(None, description="Defaults to edge-{site}-{lane}.")
    topic_prefix: str = Field("lanes", min_length=1, description="First level of every topic.")
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    keepalive_s: int = Field(30, ge=5, le=3600)
    username: str | None = None
    password_file: Path | None = Field(None, description="File holding the password (systemd credential).")
    tls: TlsConfig | None = None
    health_interval_s: float = Field(30.0, gt=0)
    inflight: int = Field(20, ge=1, le=1000, description="QoS 1 messages awaiting PUBACK at once.")

    @field_validator("urls")
    @classmethod
    def _urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
                raise ValueError(f"{url!r} is not mqtt://host[:port] or mqtts://host[:port]")
        return urls
