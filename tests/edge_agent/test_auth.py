"""CommandVerifier: every rejection reason, both algorithms, bounded replay memory, key loading."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.auth import CommandVerifier, Principal, canonical, sign_command
from edge_agent.config.commands import CommandKey, CommandsConfig
from edge_agent.errors import CommandRejected, ConfigError

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


class FixedClock:
    """UTC that the test sets; monotonic follows it."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now.timestamp()

    def utcnow(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Keys:
    def __init__(self, tmp: Path) -> None:
        self.secret = secrets.token_bytes(32)
        self.secret_file = tmp / "lane.hmac"
        self.secret_file.write_bytes(self.secret)
        self.private = Ed25519PrivateKey.generate()
        self.private_pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        pub = self.private.public_key()
        self.public_file = tmp / "officer.pub"
        self.public_file.write_bytes(
            pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_b64 = base64.b64encode(raw).decode()


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


def config(keys: Keys, **kw: Any) -> CommandsConfig:
    return CommandsConfig.model_validate(
        {
            "keys": {
                "central-1": {
                    "alg": "hmac-sha256",
                    "secret_file": str(keys.secret_file),
                    "roles": ["central"],
                    "commands": ["reference.snapshot", "reference.delta", "signal.override"],
                },
                "officer-7": {
                    "alg": "ed25519",
                    "public_key_file": str(keys.public_file),
                    "roles": ["officer"],
                    "issuers": ["officer-1234"],
                },
                "officer-8": {"alg": "ed25519", "public_key": keys.public_b64},
            },
            **kw,
        }
    )


def envelope(
    name: str = "signal.override",
    *,
    role: str = "officer",
    issuer: str = "officer-1234",
    issued: datetime = NOW,
    nonce: str | None = None,
) -> dict[str, Any]:
    return {
        "schema": "lane.command/1",
        "command_id": f"0193f1f2-aaaa-7bbb-8ccc-{secrets.token_hex(6)}",  # unique: ids are replay-checked
        "name": name,
        "issued_at": issued.isoformat().replace("+00:00", "Z"),
        "nonce": nonce or secrets.token_hex(12),
        "issuer": {"id": issuer, "role": role},
        "body": {"action": "hold", "reason": "inspection"},
    }


def officer(keys: Keys, env: dict[str, Any] | None = None, key_id: str = "officer-7") -> dict[str, Any]:
    return sign_command(env or envelope(), alg="ed25519", key_id=key_id, key=keys.private_pem)


def central(keys: Keys, env: dict[str, Any] | None = None) -> dict[str, Any]:
    env = env or envelope("reference.delta", role="central", issuer="central")
    return sign_command(env, alg="hmac-sha256", key_id="central-1", key=keys.secret)


def rejected(verifier: CommandVerifier, env: Any) -> str:
    with pytest.raises(CommandRejected) as err:
        verifier.verify(env)
    return err.value.reason


def test_valid_commands_of_both_algorithms_are_accepted(keys: Keys) -> None:
    v = CommandVerifier(config(keys), FixedClock())
    p = v.verify(officer(keys))
    expected = Principal(
        "officer-1234",
        "officer",
        "officer-7",
        p.command_id,
        "signal.override",
        p.issued_at,
        p.nonce,
        p.issued_ts,
    )
    assert p == expected
    assert p.command_id.startswith("0193")
    assert v.verify(central(keys)).role == "central"
    raw_seed = keys.private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    signed = sign_command(envelope(), alg="ed25519", key_id="officer-8", key=raw_seed)
    assert v.verify(signed).key_id == "officer-8"
    assert v.counters["accepted"] == 3


def test_base64url_signatures_are_accepted(keys: Keys) -> None:
    v = CommandVerifier(config(keys), FixedClock())
    signed = central(keys)
    sig = base64.b64decode(signed["auth"]["sig"])
    signed["auth"]["sig"] = base64.urlsafe_b64encode(sig).decode().rstrip("=")
    assert v.verify(signed).key_id == "central-1"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.pop("schema"), "malformed"),
        (lambda e: e.update(name="signal.explode"), "malformed"),
        (lambda e: e.update(issued_at="yesterday"), "malformed"),
        (lambda e: e.update(issued_at="2026-11-28T12:00:00+01:00"), "malformed"),
        (lambda e: e.update(nonce="not-hex!"), "malformed"),
        (lambda e: e.update(body=[1, 2]), "malformed"),
        (lambda e: e.update(issuer={"id": "x", "role": "admin"}), "malformed"),
        (lambda e: e.update(command_id=""), "malformed"),
        (lambda e: e.pop("auth"), "unsigned"),
        (lambda e: e.update(auth="sig"), "malformed"),
        (lambda e: e["auth"].update(alg="rsa"), "malformed"),
        (lambda e: e["auth"].update(key_id="officer-99"), "unknown_key"),
        (lambda e: e["auth"].update(alg="hmac-sha256"), "bad_signature"),
        (lambda e: e["auth"].update(sig="%%%"), "bad_signature"),
        (lambda e: e["body"].update(action="release"), "bad_signature"),
    ],
)
def test_each_defect_has_its_reason(keys: Keys, mutate: Any, reason: str) -> None:
    v = CommandVerifier(config(keys), FixedClock())
    env = officer(keys)
    mutate(env)
    assert rejected(v, env) == reason
    assert v.counters[reason] == 1


def test_not_a_dict_is_malformed(keys: Keys) -> None:
    assert rejected(CommandVerifier(config(keys), FixedClock()), ["schema"]) == "malformed"


def test_signature_by_another_key_does_not_verify(keys: Keys) -> None:
    v = CommandVerifier(config(keys), FixedClock())
    stranger = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    other = sign_command(envelope(), alg="ed25519", key_id="officer-7", key=stranger)
    assert rejected(v, other) == "bad_signature"
    forged = sign_command(
        envelope("reference.delta", role="central", issuer="central"),
        alg="hmac-sha256",
        key_id="central-1",
        key=b"x" * 32,
    )
    assert rejected(v, forged) == "bad_signature"


def test_authority_of_each_key(keys: Keys) -> None:
    v = CommandVerifier(config(keys), FixedClock())
    assert rejected(v, officer(keys, envelope(role="central"))) == "unauthorised"  # role
    assert rejected(v, officer(keys, envelope("reference.delta"))) == "unauthorised"  # command
    assert rejected(v, officer(keys, envelope(issuer="officer-9"))) == "unauthorised"  # issuer list
    assert v.verify(officer(keys, envelope(issuer="officer-9"), key_id="officer-8")).issuer_id == "officer-9"


def test_freshness_window(keys: Keys) -> None:
    clock = FixedClock()
    v = CommandVerifier(config(keys, max_age_s=60, clock_skew_s=5), clock)
    assert rejected(v, officer(keys, envelope(issued=NOW - timedelta(seconds=61)))) == "expired"
    assert rejected(v, officer(keys, envelope(issued=NOW + timedelta(seconds=6)))) == "expired"
    assert v.verify(officer(keys, envelope(issued=NOW + timedelta(seconds=4))))
    assert v.verify(officer(keys, envelope(issued=NOW - timedelta(seconds=59))))


def test_replay_is_refused_and_a_rejected_command_does_not_burn_its_nonce(keys: Keys) -> None:
    v = CommandVerifier(config(keys), FixedClock())
    env = envelope(nonce="abcdef0123456789")
    tampered = officer(keys, env)
    tampered["body"]["reason"] = "changed"
    assert rejected(v, tampered) == "bad_signature"
    signed = officer(keys, env)
    v.verify(signed)
    assert rejected(v, signed) == "replayed"
    upper = officer(keys, envelope(nonce="ABCDEF0123456789"))
    assert rejected(v, upper) == "replayed"  # nonces compare case-insensitively
    assert v.verify(
        central(keys, envelope("reference.delta", role="central", issuer="central", nonce="abcdef0123456789"))
    )  # per key


def test_replay_memory_is_bounded_and_stays_safe(keys: Keys) -> None:
    clock = FixedClock()
    v = CommandVerifier(config(keys, replay_cache=16, max_age_s=600), clock)
    sent = []
    for i in range(40):
        env = officer(keys, envelope(issued=NOW - timedelta(seconds=100 - i)))
        v.verify(env)
        sent.append(env)
    assert len(v._seen) == 16
    for env in sent:  # forgotten or not, none can be replayed
        assert rejected(v, env) == "replayed"
    assert v.verify(officer(keys, envelope(issued=NOW)))  # newer commands still pass


def test_old_nonces_are_forgotten_after_the_window(keys: Keys) -> None:
    clock = FixedClock()
    v = CommandVerifier(config(keys, max_age_s=60, clock_skew_s=5), clock)
    first = officer(keys)
    v.verify(first)
    clock.now += timedelta(seconds=120)
    v.verify(officer(keys, envelope(issued=clock.now)))
    assert len(v._seen) == 1
    assert rejected(v, first) == "expired"


def test_key_files_are_read_when_the_verifier_is_built(keys: Keys, tmp_path: Path) -> None:
    cfg = config(keys)
    keys.secret_file.unlink()
    with pytest.raises(ConfigError, match=r"commands\.keys\.central-1: cannot read"):
        CommandVerifier(cfg, FixedClock())
    keys.secret_file.write_bytes(b"short")
    with pytest.raises(ConfigError, match="at least 16"):
        CommandVerifier(cfg, FixedClock())
    bad = CommandsConfig.model_validate({"keys": {"k": {"alg": "ed25519", "public_key": "AAAA"}}})
    with pytest.raises(ConfigError, match=r"commands\.keys\.k: a raw Ed25519 public key has 32 bytes"):
        CommandVerifier(bad, FixedClock())


def test_relative_secret_files_are_systemd_credentials(keys: Keys, tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "lane-hmac").write_bytes(keys.secret)
    spec = {"alg": "hmac-sha256", "secret_file": "lane-hmac", "roles": ["central"]}
    spec["commands"] = ["reference.delta"]
    cfg = CommandsConfig.model_validate({"keys": {"central-1": spec}})
    v = CommandVerifier(cfg, FixedClock(), credentials_dir=str(creds))
    assert v.verify(central(keys)).key_id == "central-1"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"alg": "hmac-sha256"}, "needs secret_file"),
        ({"alg": "hmac-sha256", "secret_file": "/x", "public_key": "AAAA"}, "not public_key"),
        ({"alg": "ed25519"}, "exactly one"),
        ({"alg": "ed25519", "public_key": "A", "public_key_file": "/x"}, "exactly one"),
        ({"alg": "ed25519", "public_key": "A", "secret_file": "/x"}, "secret_file is not used"),
        ({"alg": "hmac-sha256", "secret_file": "/x", "commands": ["signal.explode"]}, "signal.override"),
    ],
)
def test_key_config_is_checked(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CommandKey.model_validate(spec)


def test_sign_command_refuses_unknown_algorithms() -> None:
    with pytest.raises(ValueError, match="unknown alg"):
        sign_command(envelope(), alg="md5", key_id="k", key=b"k" * 32)


def test_canonical_form_ignores_auth_and_key_order() -> None:
    a = {"b": 1, "a": "é", "auth": {"sig": "x"}}
    assert canonical(a) == '{"a":"é","b":1}'.encode()


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(["command_id", "name", "issued_at", "nonce", "issuer", "body"]), value=st.text())
def test_changing_any_signed_field_is_never_accepted(
    tmp_path_factory: pytest.TempPathFactory, field: str, value: str
) -> None:
    keys = Keys(tmp_path_factory.mktemp("k"))
    v = CommandVerifier(config(keys), FixedClock())
    signed = officer(keys)
    if signed[field] == value:
        return
    signed[field] = value
    with pytest.raises(CommandRejected):
        v.verify(signed)
