"""Authentication of commands: signatures (HMAC-SHA256 or Ed25519), freshness, replay, authority.

The signature covers the canonical JSON of the envelope without ``auth``:
``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()``.
Checks run in this order, and the first failure is the reason: ``malformed``, ``unsigned``,
``unknown_key``, ``bad_signature``, ``unauthorised``, ``expired``, ``replayed`` (a nonce, or a
``command_id``, seen before). :meth:`CommandVerifier.check` runs every check and remembers nothing
(the uplink screens untrusted input with it); :meth:`CommandVerifier.remember` records a command that
is about to run. What is remembered survives restarts through :mod:`edge_agent.replay`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import heapq
import hmac
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_agent.clock import Clock
from edge_agent.config.commands import CommandKey, CommandName, CommandsConfig, Role
from edge_agent.errors import CommandRejected, ConfigError

log = logging.getLogger(__name__)

SCHEMA = "lane.command/1"
ALGS = ("hmac-sha256", "ed25519")
NAMES = frozenset(get_args(CommandName))
ROLES = frozenset(get_args(Role))
MIN_HMAC_SECRET = 16
_NONCE = re.compile(r"^[0-9a-fA-F]{8,256}$")
_ISSUED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who signed an accepted command, and which command it was (for audit records)."""

    issuer_id: str
    role: str
    key_id: str
    command_id: str = ""
    name: str = ""
    issued_at: str = ""
    nonce: str = ""
    issued_ts: float = 0.0


def canonical(envelope: Mapping[str, Any]) -> bytes:
    """Return the signed bytes: the envelope without ``auth`` as canonical JSON."""
    body = {k: v for k, v in envelope.items() if k != "auth"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _private_key(key: bytes) -> Ed25519PrivateKey:
    if key.lstrip().startswith(b"-----BEGIN"):
        loaded = serialization.load_pem_private_key(key, password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ValueError("the PEM private key is not an Ed25519 key")
        return loaded
    if len(key) == 32:
        return Ed25519PrivateKey.from_private_bytes(key)
    raise ValueError("an Ed25519 private key is PEM or 32 raw bytes")


def sign_command(envelope: Mapping[str, Any], *, alg: str, key_id: str, key: bytes) -> dict[str, Any]:
    """Return a copy of ``envelope`` with ``auth`` added (HMAC secret, or Ed25519 private key)."""
    payload = canonical(envelope)
    if alg == "hmac-sha256":
        sig = hmac.new(key, payload, hashlib.sha256).digest()
    elif alg == "ed25519":
        sig = _private_key(key).sign(payload)
    else:
        raise ValueError(f"unknown alg {alg!r}; choose one of {ALGS}")
    signed = {k: v for k, v in envelope.items() if k != "auth"}
    signed["auth"] = {"alg": alg, "key_id": key_id, "sig": base64.b64encode(sig).decode()}
    return signed


@dataclass(frozen=True, slots=True)
class _Key:
    alg: str
    secret: bytes | None
    public: Ed25519PublicKey | None
    roles: frozenset[str]
    commands: frozenset[str]
    issuers: frozenset[str]


def _resolve(path: Path, credentials_dir: str | None) -> Path:
    """Relative paths name systemd credentials (``$CREDENTIALS_DIRECTORY``) when that is set."""
    return Path(credentials_dir) / path if credentials_dir and not path.is_absolute() else path


def _load_key(key_id: str, spec: CommandKey, credentials_dir: str | None) -> _Key:
    where = f"commands.keys.{key_id}"
    secret: bytes | None = None
    public: Ed25519PublicKey | None = None
    try:
        if spec.alg == "hmac-sha256":
            assert spec.secret_file is not None
            secret = _resolve(spec.secret_file, credentials_dir).read_bytes()
            if len(secret) < MIN_HMAC_SECRET:
                raise ConfigError(
                    f"{where}.secret_file: secret of {len(secret)} bytes; at least {MIN_HMAC_SECRET}"
                )
        else:
            if spec.public_key_file is not None:
                material = _resolve(spec.public_key_file, credentials_dir).read_bytes()
            else:
                assert spec.public_key is not None
                material = spec.public_key.encode()
            public = _public_key(material)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read key material: {exc}") from None
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from None
    return _Key(
        spec.alg, secret, public, frozenset(spec.roles), frozenset(spec.commands), frozenset(spec.issuers)
    )


def _public_key(material: bytes) -> Ed25519PublicKey:
    text = material.strip()
    if text.startswith(b"-----BEGIN"):
        loaded = serialization.load_pem_public_key(text)
        if not isinstance(loaded, Ed25519PublicKey):
            raise ValueError("the PEM public key is not an Ed25519 key")
        return loaded
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("public key is neither PEM nor base64") from None
    if len(raw) != 32:
        raise ValueError(f"a raw Ed25519 public key has 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def _text(obj: Mapping[str, Any], key: str, max_len: int = 256) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise CommandRejected("malformed", f"'{key}' must be a string of 1-{max_len} characters")
    return value


def _decode_sig(sig: str) -> bytes:
    text = sig.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CommandRejected("bad_signature", "signature is not base64") from None


@dataclass(frozen=True, slots=True)
class _Claims:
    """What an envelope says about itself (checked for shape, not yet for truth)."""

    command_id: str
    name: str
    issued_text: str
    issued: datetime
    nonce: str
    issuer_id: str
    role: str


def _claims(envelope: Mapping[str, Any]) -> _Claims:
    """The envelope's fields, each checked for shape; ``malformed`` names the first bad one."""
    if not isinstance(envelope, Mapping):
        raise CommandRejected("malformed", "a command must be a JSON object")
    if envelope.get("schema") != SCHEMA:
        raise CommandRejected("malformed", f"'schema' must be {SCHEMA!r}")
    command_id = _text(envelope, "command_id", 64)
    name = _text(envelope, "name")
    if name not in NAMES:
        raise CommandRejected("malformed", f"'name' {name!r} is not one of {sorted(NAMES)}")
    issued_text = _text(envelope, "issued_at", 40)
    if not _ISSUED.match(issued_text):
        raise CommandRejected("malformed", "'issued_at' must be UTC ISO 8601 (…Z or …+00:00)")
    nonce = _text(envelope, "nonce")
    if not _NONCE.match(nonce):
        raise CommandRejected("malformed", "'nonce' must be 8-256 hex digits")
    issuer = envelope.get("issuer")
    if not isinstance(issuer, Mapping):
        raise CommandRejected("malformed", "'issuer' must be an object")
    issuer_id = _text(issuer, "id", 128)
    role = issuer.get("role")
    if role not in ROLES:
        raise CommandRejected("malformed", f"'issuer.role' must be one of {sorted(ROLES)}")
    if not isinstance(envelope.get("body"), Mapping):
        raise CommandRejected("malformed", "'body' must be an object")
    issued = datetime.fromisoformat(issued_text.replace("Z", "+00:00"))
    return _Claims(command_id, name, issued_text, issued, nonce, issuer_id, str(role))


def _auth_fields(envelope: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(alg, key_id, sig)``; ``unsigned`` without ``auth``."""
    auth = envelope.get("auth")
    if auth is None:
        raise CommandRejected("unsigned", "the command carries no 'auth'")
    if not isinstance(auth, Mapping):
        raise CommandRejected("malformed", "'auth' must be an object")
    alg = auth.get("alg")
    if alg not in ALGS:
        raise CommandRejected("malformed", f"'auth.alg' must be one of {ALGS}")
    return str(alg), _text(auth, "key_id", 64), _text(auth, "sig", 1024)


def _check_authority(key_id: str, key: _Key, c: _Claims) -> None:
    if c.role not in key.roles:
        raise CommandRejected("unauthorised", f"key {key_id!r} may not sign for role {c.role!r}")
    if c.name not in key.commands:
        raise CommandRejected("unauthorised", f"key {key_id!r} may not sign {c.name!r}")
    if key.issuers and c.issuer_id not in key.issuers:
        raise CommandRejected("unauthorised", f"key {key_id!r} may not sign for issuer {c.issuer_id!r}")


class CommandVerifier:
    """Verifies command envelopes against the configured keys; reads key files once, here."""

    def __init__(self, cfg: CommandsConfig, clock: Clock, *, credentials_dir: str | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.counters: Counter[str] = Counter()
        creds = credentials_dir if credentials_dir is not None else os.environ.get("CREDENTIALS_DIRECTORY")
        self._keys = {key_id: _load_key(key_id, spec, creds) for key_id, spec in cfg.keys.items()}
        self._seen: set[tuple[str, str]] = set()
        self._ids: set[str] = set()
        self._order: list[tuple[float, str, str, str]] = []  # heap of (issued, key_id, nonce, command_id)
        self._floor = float("-inf")  # commands issued at or before this can no longer be checked

    def verify(self, envelope: Mapping[str, Any]) -> Principal:
        """Return who signed ``envelope`` and remember it, or raise :class:`CommandRejected`."""
        principal = self.check(envelope)
        self.remember(principal)
        return principal

    def check(self, envelope: Mapping[str, Any]) -> Principal:
        """Every check (a replay included) without remembering anything: cheap screening of input."""
        try:
            principal = self._verify(envelope)
            self._check_replay(principal.key_id, principal.nonce, principal.command_id, principal.issued_ts)
        except CommandRejected as exc:
            self.counters[exc.reason] += 1
            log.debug("command rejected (%s): %s", exc.reason, exc.detail)
            raise
        return principal

    def remember(self, principal: Principal) -> None:
        """Record an accepted command's nonce and id; raise ``replayed`` if it was seen meanwhile."""
        try:
            self._remember(
                principal.key_id, principal.nonce, principal.command_id, principal.issued_ts, self._now()
            )
        except CommandRejected as exc:
            self.counters[exc.reason] += 1
            raise
        self.counters["accepted"] += 1

    def preload(self, seen: Iterable[tuple[str, str, str, float]]) -> int:
        """Remember ``(key_id, nonce, command_id, issued_ts)`` recorded before a restart; return how many."""
        now, n = self._now(), 0
        for key_id, nonce, command_id, at in seen:
            with contextlib.suppress(CommandRejected):
                self._remember(key_id, nonce, command_id, at, now)
                n += 1
        return n

    @property
    def horizon_s(self) -> float:
        """How far back a command can still be accepted (older ones are expired anyway)."""
        return self.cfg.max_age_s + self.cfg.clock_skew_s

    def _now(self) -> float:
        return self.clock.utcnow().timestamp()

    def _verify(self, envelope: Mapping[str, Any]) -> Principal:
        claims = _claims(envelope)
        alg, key_id, sig = _auth_fields(envelope)
        key = self._keys.get(key_id)
        if key is None:
            raise CommandRejected("unknown_key", f"key {key_id!r} is not trusted on this lane")
        if alg != key.alg:
            raise CommandRejected("bad_signature", f"key {key_id!r} is {key.alg}, the command says {alg}")
        self._check_signature(key, canonical(envelope), _decode_sig(sig))
        _check_authority(key_id, key, claims)
        self._check_fresh(claims.issued.timestamp())
        return Principal(
            claims.issuer_id,
            claims.role,
            key_id,
            claims.command_id,
            claims.name,
            claims.issued_text,
            claims.nonce.lower(),
            claims.issued.timestamp(),
        )

    def _check_fresh(self, at: float) -> None:
        now = self.clock.utcnow().timestamp()
        if at > now + self.cfg.clock_skew_s:
            raise CommandRejected("expired", f"issued {at - now:.1f} s in the future")
        if now - at > self.cfg.max_age_s:
            raise CommandRejected("expired", f"issued {now - at:.1f} s ago (max {self.cfg.max_age_s:g} s)")

    @staticmethod
    def _check_signature(key: _Key, payload: bytes, sig: bytes) -> None:
        if key.secret is not None:
            expected = hmac.new(key.secret, payload, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, sig):
                raise CommandRejected("bad_signature", "HMAC does not match")
            return
        assert key.public is not None
        try:
            key.public.verify(sig, payload)
        except InvalidSignature:
            raise CommandRejected("bad_signature", "Ed25519 signature does not verify") from None

    def _check_replay(self, key_id: str, nonce: str, command_id: str, at: float) -> None:
        if (key_id, nonce.lower()) in self._seen:
            raise CommandRejected("replayed", f"nonce {nonce} was already used")
        if command_id in self._ids:
            raise CommandRejected("replayed", f"command_id {command_id} was already used")
        if at <= self._floor:
            raise CommandRejected("replayed", "issued before the oldest nonce still remembered; resend")

    def _remember(self, key_id: str, nonce: str, command_id: str, at: float, now: float) -> None:
        """Record a nonce and command id; memory is bounded by forgetting the oldest, refusing older."""
        horizon = now - self.horizon_s
        while self._order and self._order[0][0] < horizon:
            self._forget()
        self._check_replay(key_id, nonce, command_id, at)
        entry = (key_id, nonce.lower())
        self._seen.add(entry)
        self._ids.add(command_id)
        heapq.heappush(self._order, (at, *entry, command_id))
        while len(self._order) > self.cfg.replay_cache:
            self._floor = max(self._floor, self._forget())

    def _forget(self) -> float:
        oldest, k, n, cid = heapq.heappop(self._order)
        self._seen.discard((k, n))
        self._ids.discard(cid)
        return oldest
