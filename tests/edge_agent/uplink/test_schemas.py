"""The contract: every schema is valid draft 2020-12 and matches what the agent builds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from edge_agent.domain import (
    ContainerRead,
    DecidedPassage,
    Decision,
    Passage,
    PlateRead,
    Reason,
    TagKind,
    TagSummary,
    Verdict,
    WimRecord,
)
from edge_agent.schemas import NAMES, PayloadSchemaError, load_schema, schema_id, validate


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_and_versioned(name: str) -> None:
    doc = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == f"urn:lane-schema:{name}"
    assert schema_id(name) == f"lane.{name}/1"


def test_passage_reasons_are_the_domain_reasons() -> None:
    assert load_schema("passage")["properties"]["reasons"]["items"]["enum"] == [r.value for r in Reason]


def _domain_passage() -> DecidedPassage:
    p = Passage(
        passage_id="01a22181-1f8c-7000-bdff-6d77924b1147",
        entered_mono=10.0,
        entered_utc=datetime.now(UTC),
        tags=(
            TagSummary(
                "300833B2DDD9014000000001", TagKind.CONVEYANCE, 11.0, 12.0, 5, -51.0, frozenset({1, 2})
            ),
            TagSummary("350000000000000000000042", TagKind.FAST_CARD, 11.0, 12.0, 3, -60.0, frozenset({1})),
            TagSummary(
                "3A0000000000000000000007",
                TagKind.ESEAL,
                11.5,
                12.0,
                2,
                -63.0,
                frozenset({2}),
                seal_id="SEAL0007",
            ),
        ),
        plates=(PlateRead("ABC1234", 0.93, "plate", 10.5),),
        containers=(ContainerRead("CSQU3054383", True, 0.9, "container", 12.0),),
        wim=WimRecord(17, 9.1, (6000.0, 12000.0), (0.0, 4.2), 18000.0, 0, 12.5),
        speed_kmh=9.2,
    )
    return DecidedPassage(
        p, Decision.refer(Reason.WEIGHT_MISMATCH, Reason.SEAL_MISMATCH, matched_record="PA-1")
    )


def test_the_journals_passage_payload_matches_the_schema() -> None:
    from edge_agent.journal import passage_payload

    payload = passage_payload(
        _domain_passage(), site_id="pe-blaine", lane_id="c3", decided_at=datetime.now(UTC), latency_ms=42.1
    )
    validate("passage", payload)
    released = replace(_domain_passage(), decision=Decision(Verdict.RELEASE, (), "PA-1"))
    validate(
        "passage",
        passage_payload(
            released, site_id="pe-blaine", lane_id="c3", decided_at=datetime.now(UTC), latency_ms=1
        ),
    )


def test_a_release_with_reasons_is_invalid() -> None:
    from edge_agent.journal import passage_payload

    payload: dict[str, Any] = passage_payload(
        _domain_passage(), site_id="pe-blaine", lane_id="c3", decided_at=datetime.now(UTC), latency_ms=1
    )
    payload["decision"] = "release"
    with pytest.raises(PayloadSchemaError, match="reasons"):
        validate("passage", payload)
    payload["reasons"] = ["not_a_reason"]
    with pytest.raises(PayloadSchemaError):
        validate("passage", payload)


def _envelope(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": "lane.command/1",
        "command_id": "c-1",
        "name": name,
        "issued_at": "2026-11-28T12:00:00.000Z",
        "nonce": "00ff00ff00ff00ff",
        "issuer": {"id": "central", "role": "central"},
        "body": body,
        "auth": {"alg": "ed25519", "key_id": "central-2026", "sig": "c2ln"},
    }


RECORD = {
    "record_id": "PA-1",
    "carrier_id": "CARRIER-9",
    "transponder": "300833B2DDD9014000000001",
    "plate": "ABC1234",
    "driver_fast_card": "350000000000000000000042",
    "container": "CSQU3054383",
    "seals": ["SEAL0007"],
    "declared_gross_kg": 18100,
    "releasable": True,
}


def test_reference_commands_validate_their_bodies() -> None:
    snapshot = {
        "version": 4,
        "prearrivals": [RECORD],
        "trusted_traders": [{"carrier_id": "CARRIER-9", "program": "FAST", "valid_until": "2027-01-31"}],
    }
    validate("reference_snapshot", snapshot)
    validate("command", _envelope("reference.snapshot", snapshot))
    delta = {
        "base_version": 4,
        "version": 5,
        "upsert_prearrivals": [{**RECORD, "container": None}],
        "delete_prearrivals": ["PA-0"],
    }
    validate("reference_delta", delta)
    validate("command", _envelope("reference.delta", delta))
    bad = {**snapshot, "prearrivals": [{**RECORD, "container": "NOT-A-CODE"}]}
    with pytest.raises(PayloadSchemaError, match="container"):
        validate("command", _envelope("reference.snapshot", bad))
    with pytest.raises(PayloadSchemaError):
        validate("command", _envelope("lane.explode", {}))


def test_reference_schema_agrees_with_the_reference_module() -> None:
    from edge_agent.reference import Delta, Snapshot

    Snapshot.model_validate({"version": 1, "prearrivals": [RECORD], "trusted_traders": []})
    Delta.model_validate({"base_version": 1, "version": 2, "upsert_prearrivals": [RECORD]})
